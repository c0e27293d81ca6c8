// The reference consumer and remote configuration, against a real Mosquitto: the platform's own
// bundles on config/set come back on fc/v1/# and are ignored (not rejected, not stored as a
// gateway's message); every config/result is validated and kept per gateway; status.config is
// kept with the status.
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { sleep, tmpDir, waitFor } from '../helpers/peers.js';
import { PlatformConsumer } from '../../src/platform/consumer.js';
import { silentLogger } from '../../src/log.js';
import { BUNDLE_FORMAT, configHash, generateKeyPair, signBundle } from '../../src/remote/bundle.js';
import { ConfigResultMessage, diagnosticsTopic, remoteTopic, uplinkTopic } from '../../src/uplink/contract.js';
import Database from 'better-sqlite3';

const CC = '330106001001';
const GW = 'gw-c';

let broker: Mosquitto;
let consumers: PlatformConsumer[] = [];
let clients: MqttClient[] = [];
beforeAll(async () => {
  broker = await Mosquitto.start({ persistence: false });
});
afterEach(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await Promise.all(consumers.map((c) => c.stop()));
  clients = [];
  consumers = [];
});
afterAll(() => stopAll('SIGKILL'));

async function consumer(group?: string): Promise<{ c: PlatformConsumer; db: string }> {
  const db = path.join(tmpDir('cgw-platform-'), 'platform.db');
  const c = new PlatformConsumer({ url: `mqtt://127.0.0.1:${broker.port}`, db, group }, silentLogger());
  await c.start();
  consumers.push(c);
  await sleep(200); // let the subscription settle
  return { c, db };
}

async function publisher(): Promise<MqttClient> {
  const p = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { protocolVersion: 5, reconnectPeriod: 0 });
  clients.push(p);
  return p;
}

const config = { hash: configHash('site: {}\n'), version: 4, remoteVersion: 7, remote: true };
const result = (over: Record<string, unknown> = {}) => JSON.stringify({ v: 1, gatewayId: GW, communityCode: CC, kind: 'config-result', ts: 1795719600000, version: 7, outcome: 'applied', applied: 'reload', config, ...over });
const bundle = () =>
  JSON.stringify(
    signBundle(
      { format: BUNDLE_FORMAT, kind: 'config', gatewayId: GW, version: 7, base: null, override: true, issuedAt: '2026-12-02T06:00:00Z', expiresAt: '2026-12-03T06:00:00Z', note: '', config: 'site: {}\n', profiles: {} },
      generateKeyPair().privatePem,
    ),
  );

describe('reference consumer: remote configuration topics', () => {
  it('ignores config/set, stores config/result per gateway (a resend once), rejects a bad one, keeps status.config', async () => {
    const { c, db } = await consumer();
    const p = await publisher();
    const pub = (topic: string, payload: string) => p.publishAsync(topic, payload, { qos: 1 });
    await pub(remoteTopic(CC, GW, 'set'), bundle());
    await pub(remoteTopic(CC, GW, 'set'), '');
    await pub(remoteTopic(CC, GW, 'result'), result());
    await pub(remoteTopic(CC, GW, 'result'), result()); // a QoS 1 resend: same body
    await pub(remoteTopic(CC, GW, 'result'), result({ ts: 1795719660000, version: 6, outcome: 'refused', reason: 'replay', applied: undefined, config: { ...config, remoteVersion: 7 } }));
    await pub(remoteTopic(CC, GW, 'result'), result({ outcome: 'maybe' }));
    await pub(remoteTopic(CC, 'gw-other', 'result'), result());
    const status = { v: 1, gatewayId: GW, communityCode: CC, kind: 'status', state: 'online', seq: 0, ts: 1795719600000, reason: 'connected', config };
    await pub(uplinkTopic(CC, GW, 'status'), JSON.stringify(status));
    // A diagnostics command's answer: checked and counted, not stored; a malformed part rejected.
    const part = { v: 1, gatewayId: GW, communityCode: CC, kind: 'diagnostics', ts: 1795719600000, version: 9, name: 'diag.json', part: 1, parts: 1, bytes: 2, trimmed: 0, data: '{}' };
    await pub(diagnosticsTopic(CC, GW), JSON.stringify(part));
    await pub(diagnosticsTopic(CC, GW), JSON.stringify({ ...part, parts: 0 }));
    await waitFor(() => c.stats.messages === 10, 10_000, 'ten messages');
    expect(c.stats).toMatchObject({ ignored: 2, configResults: 2, rejected: 3, statuses: 1, diagnostics: 1 });
    const stored = await c.configResults(GW);
    expect(stored.map((r) => [r.version, r.outcome, r.reason])).toEqual([
      [7, 'applied', null],
      [6, 'refused', 'replay'],
    ]);
    expect(ConfigResultMessage.parse(stored[0]!.body)).toEqual(JSON.parse(result()));
    expect(await c.configResults('gw-other')).toEqual([]);
    expect(await c.lastStatus(GW)).toMatchObject({ config });
    // Rejected: the bad outcome by its field, the topic that names another gateway.
    const rej = new Database(db, { readonly: true }).prepare('SELECT topic, reason FROM rejected ORDER BY id').all() as { topic: string; reason: string }[];
    expect(rej).toHaveLength(3);
    expect(rej[0]!.reason).toMatch(/^outcome: /);
    expect(rej[1]).toMatchObject({ topic: remoteTopic(CC, 'gw-other', 'result') });
    expect(rej[1]!.reason).toMatch(/topic does not match the payload/);
    expect(rej[2]).toMatchObject({ topic: diagnosticsTopic(CC, GW) });
    expect(rej[2]!.reason).toMatch(/^parts: /);
    // Nothing of config/set went into the items or the rejected table.
    expect(await c.items(GW)).toEqual([]);
  });

  it('without sharing (--group none) a retained bundle on config/set reaches the consumer and is ignored too', async () => {
    const p = await publisher();
    await p.publishAsync(remoteTopic(CC, GW, 'set'), bundle(), { qos: 1, retain: true });
    const { c } = await consumer('none');
    await waitFor(() => c.stats.messages >= 1, 10_000, 'the retained bundle');
    expect(c.stats).toMatchObject({ ignored: 1, rejected: 0 });
    await p.publishAsync(remoteTopic(CC, GW, 'set'), '', { qos: 1, retain: true });
    await waitFor(() => c.stats.ignored === 2, 10_000, 'the clearing message');
    expect(c.stats.rejected).toBe(0);
  });
});
