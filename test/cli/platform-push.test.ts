// `community-gateway platform push` (the built CLI) against a real Mosquitto, with a test
// responder that answers on config/result as a gateway does: applied -> exit 0, refused ->
// exit 1 with the reason, silent -> exit 3 after the timeout. The bundle is not retained: a
// gateway offline at the push gets it from its persistent session when it is back, unless the
// bundle expired first (MQTT 5 message expiry).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, assertBuilt } from '../helpers/cli.js';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { sleep, tmpDir, waitFor } from '../helpers/peers.js';
import { TEXT } from '../helpers/config-text.js';
import { Bundle, BUNDLE_FORMAT, configHash, generateKeyPair, signBundle, verifySignature, type BundlePayload } from '../../src/remote/bundle.js';
import { ConfigResultMessage, remoteTopic } from '../../src/uplink/contract.js';

const CC = '330106001001';
const GW = 'gw-t';
const KEY = generateKeyPair();

let broker: Mosquitto;
let clients: MqttClient[] = [];
beforeAll(async () => {
  assertBuilt();
  broker = await Mosquitto.start({ persistence: false });
});
afterEach(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  clients = [];
});
afterAll(() => stopAll('SIGKILL'));

const url = () => `mqtt://127.0.0.1:${broker.port}`;

async function connect(): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url(), { protocolVersion: 5, reconnectPeriod: 0 });
  clients.push(c);
  return c;
}

let nextVersion = 10;
function bundleFile(over: Partial<BundlePayload> = {}): { file: string; bundle: Bundle } {
  const now = Date.now();
  const payload: BundlePayload = {
    format: BUNDLE_FORMAT,
    kind: 'config',
    gatewayId: GW,
    version: nextVersion++,
    base: configHash(TEXT),
    override: false,
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 3600_000).toISOString(),
    note: 'test',
    config: TEXT,
    profiles: {},
    ...over,
  };
  const bundle = signBundle(payload, KEY.privatePem);
  const file = path.join(tmpDir('cgw-push-'), 'bundle.json');
  fs.writeFileSync(file, JSON.stringify(bundle, null, 2));
  return { file, bundle };
}

type Mode = 'apply' | 'refuse' | 'silent' | 'busy-then-apply';

/** Answers like a gateway: reads config/set, checks the signature, answers on config/result.
 * With `session`, connects as the gateway does with remote on: a persistent session (clean:
 * false, MQTT 5 session expiry) under that client id, handlers in place before the CONNACK. */
async function responder(mode: Mode, session?: { clientId: string; subscribe?: boolean }) {
  const c = mqtt.connect(url(), { protocolVersion: 5, reconnectPeriod: 0, ...(session ? { clientId: session.clientId, clean: false, properties: { sessionExpiryInterval: 3600 } } : {}) });
  clients.push(c);
  const received: { bundle: Bundle; retained: boolean }[] = [];
  const answer = (b: Bundle, fields: Partial<ConfigResultMessage>) =>
    c.publishAsync(
      remoteTopic(CC, GW, 'result'),
      JSON.stringify(
        ConfigResultMessage.parse({
          v: 1,
          gatewayId: GW,
          communityCode: CC,
          kind: 'config-result',
          ts: Date.now(),
          version: b.version,
          config: { hash: configHash(fields.outcome === 'applied' ? b.config : TEXT), version: 3, remoteVersion: fields.outcome === 'applied' ? b.version : null, remote: true },
          ...fields,
        }),
      ),
      { qos: 1 },
    );
  c.on('message', (_topic, payload, packet) => {
    const b = Bundle.parse(JSON.parse(payload.toString('utf8')));
    received.push({ bundle: b, retained: packet.retain });
    if (!verifySignature(b, [KEY.publicText]).ok) return void answer(b, { outcome: 'refused', reason: 'bad-signature' });
    if (mode === 'apply') void answer(b, { outcome: 'applied', applied: 'reload' });
    if (mode === 'refuse') void answer(b, { outcome: 'refused', reason: 'conflict', detail: `base ${b.base} is not the running config` });
    if (mode === 'busy-then-apply') {
      // A result for an older version first (another push's), then busy, then the answer.
      void answer({ ...b, version: b.version - 1 }, { outcome: 'refused', reason: 'replay' })
        .then(() => answer(b, { outcome: 'refused', reason: 'busy' }))
        .then(() => sleep(300))
        .then(() => answer(b, { outcome: 'applied', applied: 'restart' }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  if (session?.subscribe !== false) await c.subscribeAsync(remoteTopic(CC, GW, 'set'), { qos: 1 });
  return { client: c, received };
}

/** Results on config/result, as the platform would see them. */
async function resultWatcher(): Promise<ConfigResultMessage[]> {
  const c = await connect();
  const got: ConfigResultMessage[] = [];
  c.on('message', (_t, payload) => got.push(ConfigResultMessage.parse(JSON.parse(payload.toString('utf8')))));
  await c.subscribeAsync(remoteTopic(CC, GW, 'result'), { qos: 1 });
  return got;
}

/** The built CLI, asynchronously (the responder runs in this process). */
function push(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, 'platform', 'push', ...args], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

/** What a client subscribing now gets retained on config/set (after the SUBACK, a short grace): nothing, as push does not retain. */
async function retainedBundle(): Promise<Buffer[]> {
  const c = await connect();
  const got: Buffer[] = [];
  c.on('message', (_t, payload, packet) => {
    if (packet.retain) got.push(payload);
  });
  await c.subscribeAsync(remoteTopic(CC, GW, 'set'), { qos: 1 });
  await sleep(500);
  await c.endAsync();
  return got;
}

describe('platform push', () => {
  it('applied: prints the result, exit 0; the gateway got the bundle as signed, once; nothing retained', async () => {
    const r = await responder('apply');
    const { file, bundle } = bundleFile();
    const out = await push(['--url', url(), '--community', CC, '--timeout', '20', file]);
    expect(out.status, out.stderr).toBe(0);
    const result = ConfigResultMessage.parse(JSON.parse(out.stdout));
    expect(result).toMatchObject({ gatewayId: GW, version: bundle.version, outcome: 'applied', applied: 'reload' });
    expect(out.stderr).toMatch(new RegExp(`gateway ${GW} applied version ${bundle.version} \\(reload\\)`));
    expect(r.received).toHaveLength(1);
    expect(r.received[0]!.bundle).toEqual(bundle);
    expect(r.received[0]!.retained).toBe(false);
    expect(verifySignature(r.received[0]!.bundle, [KEY.publicText]).ok).toBe(true);
    expect(await retainedBundle()).toEqual([]);
    await sleep(300);
    expect(r.received).toHaveLength(1);
  });

  it('refused: exit 1 with the reason and detail on stderr', async () => {
    await responder('refuse');
    const { file, bundle } = bundleFile();
    const out = await push(['--url', url(), '--community', CC, '--timeout', '20', file]);
    expect(out.status, out.stderr).toBe(1);
    expect(ConfigResultMessage.parse(JSON.parse(out.stdout))).toMatchObject({ version: bundle.version, outcome: 'refused', reason: 'conflict' });
    expect(out.stderr).toMatch(new RegExp(`gateway ${GW} refused version ${bundle.version}: conflict: base sha256:[0-9a-f]{64} is not the running config`));
    expect(await retainedBundle()).toEqual([]);
  });

  it('waits past results for other versions and a busy answer, for its own version', async () => {
    await responder('busy-then-apply');
    const { file, bundle } = bundleFile();
    const out = await push(['--url', url(), '--community', CC, '--timeout', '20', file]);
    expect(out.status, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ version: bundle.version, outcome: 'applied', applied: 'restart' });
    expect(out.stderr).toMatch(new RegExp(`ignored a result for version ${bundle.version - 1}: refused \\(replay\\)`));
    expect(out.stderr).toMatch(/busy with another bundle; waiting/);
  });

  it('silent gateway: exit 3 after the timeout; an old retained result does not count', async () => {
    await responder('silent');
    const { file, bundle } = bundleFile();
    // A retained answer for this very version, from before: not this push's answer.
    const old = await connect();
    const stale = { v: 1, gatewayId: GW, communityCode: CC, kind: 'config-result', ts: Date.now() - 60_000, version: bundle.version, outcome: 'applied', config: { hash: configHash(TEXT), version: 1, remoteVersion: bundle.version, remote: true } };
    await old.publishAsync(remoteTopic(CC, GW, 'result'), JSON.stringify(ConfigResultMessage.parse(stale)), { qos: 1, retain: true });
    const out = await push(['--url', url(), '--community', CC, '--timeout', '2', file]);
    await old.publishAsync(remoteTopic(CC, GW, 'result'), '', { qos: 1, retain: true });
    expect(out.status, out.stderr).toBe(3);
    expect(out.stdout).toBe('');
    expect(out.stderr).toMatch(new RegExp(`no answer from gateway ${GW} within 2 s\\. If it is offline with remote configuration on, the broker keeps the bundle in its session until ${bundle.expiresAt.replace(/[.]/g, '\\.')}`));
    expect(await retainedBundle()).toEqual([]);
  });

  it('a gateway offline at the push (persistent session) gets the bundle when it is back, and its answer reaches the platform', async () => {
    const clientId = `cgw-${GW}-${Date.now()}`;
    const first = await responder('apply', { clientId });
    await first.client.endAsync();
    const { file, bundle } = bundleFile();
    const out = await push(['--url', url(), '--community', CC, '--timeout', '2', file]);
    expect(out.status, out.stderr).toBe(3);
    const results = await resultWatcher();
    // Back, with its session: the broker delivers the queued bundle, the gateway answers.
    const back = await responder('apply', { clientId, subscribe: false });
    await waitFor(() => results.length === 1, 10_000, 'the late answer');
    expect(back.received.map((x) => x.bundle)).toEqual([bundle]);
    expect(results[0]).toMatchObject({ version: bundle.version, outcome: 'applied' });
  });

  it('a queued bundle that expires before the gateway is back is dropped by the broker (MQTT 5 message expiry)', async () => {
    const clientId = `cgw-${GW}-${Date.now()}`;
    const first = await responder('apply', { clientId });
    await first.client.endAsync();
    // Long enough for the CLI to start and publish on a loaded machine, short for the test.
    const { file, bundle } = bundleFile({ expiresAt: new Date(Date.now() + 8000).toISOString() });
    const out = await push(['--url', url(), '--community', CC, '--timeout', '1', file]);
    expect(out.status, out.stderr).toBe(3);
    // Mosquitto keeps expiry times in whole seconds and push rounds the interval up: a margin.
    await waitFor(() => Date.now() > Date.parse(bundle.expiresAt) + 3000, 15_000, 'the expiry');
    const back = await responder('apply', { clientId, subscribe: false });
    await sleep(1000);
    expect(back.received).toEqual([]);
  });

  it('refuses a file that is no valid bundle or has expired (exit 2) before touching the broker; bad options exit 2', async () => {
    const r = await responder('apply');
    const { file, bundle } = bundleFile();
    fs.writeFileSync(file, JSON.stringify({ ...bundle, version: 'five', signature: undefined }));
    const bad = await push(['--url', url(), '--community', CC, file]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/not a bundle:\n {2}version: .*\n {2}signature: /);
    const expired = bundleFile({ issuedAt: '2026-01-01T00:00:00Z', expiresAt: '2026-01-02T00:00:00Z' });
    const e = await push(['--url', url(), '--community', CC, expired.file]);
    expect(e.status).toBe(2);
    expect(e.stderr).toMatch(/expired at 2026-01-02T00:00:00Z/);
    const noCc = await push(['--url', url(), file]);
    expect(noCc.status).toBe(2);
    expect(noCc.stderr).toMatch(/--community: is required/);
    const badUrl = await push(['--url', 'http://x', '--community', CC, file]);
    expect(badUrl.status).toBe(2);
    expect(badUrl.stderr).toMatch(/--url: must be mqtt:\/\/host/);
    await sleep(300);
    expect(r.received).toEqual([]);
  });

  it('an unreachable broker: exit 3 naming it', async () => {
    const { file } = bundleFile();
    const out = await push(['--url', 'mqtt://127.0.0.1:1', '--community', CC, '--timeout', '2', file]);
    expect(out.status).toBe(3);
    expect(out.stderr).toMatch(/could not connect to mqtt:\/\/127\.0\.0\.1:1 within 2 s: .*ECONNREFUSED/);
  });
});
