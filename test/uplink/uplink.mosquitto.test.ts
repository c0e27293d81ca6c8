// Store-and-forward against a real Mosquitto as the platform broker, with the reference
// platform consumer as the witness: steady state, a 30 s outage, the outbox cap, mutual TLS.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { datedServerCert, makeCerts } from '../helpers/certs.js';
import { freePort, sleep, tmpDir, waitFor } from '../helpers/peers.js';
import { baseConfig, capturingLogger, makeGateway } from '../helpers/gateway.js';
import { PlatformConsumer } from '../../src/platform/consumer.js';
import { silentLogger } from '../../src/log.js';
import type { Gateway } from '../../src/main.js';
import mqttPacket from 'mqtt-packet';

let gateways: Gateway[] = [];
let consumers: PlatformConsumer[] = [];
afterEach(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await Promise.all(consumers.map((c) => c.stop()));
  gateways = [];
  consumers = [];
});
afterAll(() => stopAll('SIGKILL'));

async function consumer(url: string, group?: string): Promise<PlatformConsumer> {
  const c = new PlatformConsumer({ url, db: path.join(tmpDir('cgw-platform-'), 'platform.db'), group }, silentLogger());
  await c.start();
  consumers.push(c);
  await sleep(200); // let the subscription settle
  return c;
}

/** A simulated site: a fridge collector, a kitchen sensor and an I/O module. */
async function site(uplink: Record<string, unknown>, over: Record<string, unknown> = {}, log?: ReturnType<typeof capturingLogger>['log']) {
  const simPort = await freePort();
  const g = makeGateway(
    baseConfig({
      site: { communityCode: '330106001001', gatewayId: (over.gatewayId as string) ?? 'gw-up' },
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
      devices: [
        { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 500 },
        { id: 'kitchen-th', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 2, pollMs: 500 },
        { id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 3, pollMs: 500 },
      ],
      simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 11 },
      uplink: { windowSeconds: 5, statusIntervalSeconds: 5, reconnectMinMs: 500, reconnectMaxMs: 2000, ...uplink },
      ...(over.storage ? { storage: over.storage } : {}),
      ...(over.alarms ? { alarms: over.alarms } : {}),
    }),
    [],
    log,
  );
  gateways.push(g);
  await g.start();
  return g;
}

const POINTS_PER_WINDOW = 4 + 2 + 6 + 2; // public points of the three profiles + two facilities

function expectDense(seqs: number[], upTo: number): void {
  expect(seqs[0]).toBe(1);
  expect(seqs.length).toBe(upTo);
  expect(seqs.at(-1)).toBe(upTo);
}

describe('uplink to Mosquitto', () => {
  it('steady state: inventory, then aggregates with consecutive seq, valid against the schema', async () => {
    const broker = await Mosquitto.start();
    const platform = await consumer(`mqtt://127.0.0.1:${broker.port}`);
    const g = await site({ url: `mqtt://127.0.0.1:${broker.port}` });
    await waitFor(async () => (await platform.items('gw-up', 'agg')).length >= 2 * POINTS_PER_WINDOW, 20000, 'two windows of aggregates');
    expect(platform.stats.rejected).toBe(0);
    expect(platform.stats.conflicts).toBe(0);
    // The uplink's client switched mqtt-packet's 6 MB number cache off for the process.
    expect((mqttPacket as unknown as { writeToStream: { cacheNumbers: boolean } }).writeToStream.cacheNumbers).toBe(false);
    const seqs = await platform.seqs('gw-up');
    expectDense(seqs, seqs.length);
    const inv = await platform.items('gw-up', 'inventory');
    expect(inv[0]!.seq).toBe(1);
    expect((inv[0]!.body.devices as { id: string }[]).map((d) => d.id)).toEqual(['fridge-1', 'kitchen-th', 'io-1']);
    const agg = (await platform.items('gw-up', 'agg')).map((i) => i.body);
    // The first window after start may end before the first poll; the last one is whole.
    const fridge = agg.filter((a) => a.device === 'fridge-1' && a.point === 'fridge_1_temperature').at(-1)!;
    expect(fridge).toMatchObject({ type: 'point', windowSeconds: 5, unit: '°C', kind: 'gauge' });
    expect(fridge.count as number).toBeGreaterThan(0);
    expect(fridge.min as number).toBeLessThanOrEqual(fridge.mean as number);
    expect((fridge.windowStart as number) % 5000).toBe(0);
    const canteen = agg.filter((a) => a.type === 'facility' && a.facility === 'canteen').at(-1)!;
    expect(canteen.devices).toBe(2);
    expect(canteen.availability as number).toBeGreaterThan(0.5);
    const status = await waitFor(() => platform.lastStatus('gw-up'), 5000, 'status');
    expect(status).toMatchObject({ kind: 'status', state: 'online', gatewayId: 'gw-up' });
    expect(g.outbox!.stats().lastSeq).toBeGreaterThanOrEqual(seqs.at(-1)!);
    // Field health rides on the periodic status: per bus attempts, per device last success.
    const health = await waitFor(async () => {
      const h = (await platform.lastStatus('gw-up'))?.health as { buses: { requests: number }[]; devices: { id: string; lastSuccess: number | null }[] } | undefined;
      return h && h.buses[0]!.requests > 0 && h.devices.every((d) => d.lastSuccess) ? h : undefined;
    }, 10000, 'a status with health');
    expect(health.buses).toEqual([expect.objectContaining({ id: 'lan', type: 'modbus-tcp', state: 'up', crcErrors: 0, timeouts: 0 })]);
    expect(health.devices.map((d) => d.id)).toEqual(['fridge-1', 'kitchen-th', 'io-1']);
    expect(platform.stats.rejected).toBe(0);
  });

  it('outage: Mosquitto down for 30 s, then every seq arrives, duplicates only identical', async () => {
    const broker = await Mosquitto.start();
    // A plain (not shared) persistent subscription: Mosquitto 2.0.11 restores it after the
    // restart and queues for it, whichever of gateway and consumer reconnects first. (It does
    // not restore a shared one: a gateway reconnecting first would publish into the void;
    // docs/UPLINK.md.)
    const platform = await consumer(`mqtt://127.0.0.1:${broker.port}`, 'none');
    const g = await site({ url: `mqtt://127.0.0.1:${broker.port}`, reconnectMinMs: 3000, reconnectMaxMs: 5000 });
    await waitFor(async () => (await platform.items('gw-up', 'agg')).length >= POINTS_PER_WINDOW, 15000, 'first window');
    await broker.stop('SIGTERM');
    const before = g.outbox!.stats().lastSeq;
    await sleep(30_000);
    const during = g.outbox!.stats();
    expect(during.lastSeq).toBeGreaterThan(before + 4 * POINTS_PER_WINDOW); // windows kept closing
    expect(during.rows).toBeGreaterThan(4 * POINTS_PER_WINDOW); // and stayed in the outbox
    await broker.restart();
    await waitFor(() => g.outbox!.stats().rows === 0 && g.uplink!.inFlight === 0, 30000, 'backlog drained');
    const last = g.outbox!.stats().lastSeq;
    await waitFor(async () => (await platform.seqs('gw-up')).length >= last, 10000, 'every seq at the platform').catch(async (e: Error) => {
      const got = new Set(await platform.seqs('gw-up'));
      const missing = Array.from({ length: last }, (_, i) => i + 1).filter((x) => !got.has(x));
      throw new Error(`${e.message}: missing seq ${missing.join(',')}; broker log:\n${broker.log().slice(-3000)}`);
    });
    expectDense(await platform.seqs('gw-up'), last);
    expect(platform.stats.conflicts).toBe(0);
    expect(platform.stats.rejected).toBe(0);
    expect(g.uplink!.stats.connects).toBeGreaterThanOrEqual(2);
  }, 120_000);

  it('cap: a small cap under a long outage sheds oldest aggregates, keeps every alarm, reports the shed count', async () => {
    // The platform subscribes first (a plain persistent subscription, kept by Mosquitto across
    // the outage), so that the gateway reconnecting before the consumer cannot publish the
    // alarms into the void.
    const broker = await Mosquitto.start();
    const platform = await consumer(`mqtt://127.0.0.1:${broker.port}`, 'none');
    await broker.stop('SIGTERM'); // the outage
    const g = await site(
      { url: `mqtt://127.0.0.1:${broker.port}`, reconnectMinMs: 2000, reconnectMaxMs: 3000 },
      {
        storage: { path: path.join(tmpDir('cgw-cap-'), 'gw.db'), outbox: { maxRows: 20, maxBytes: 1024 * 1024 } },
        // Always-true rules, so each raises exactly one alarm early in the run.
        alarms: [
          { id: 'probe-a', device: 'fridge-1', point: 'fridge_1_temperature', above: -1000 },
          { id: 'probe-b', device: 'fridge-1', point: 'fridge_2_temperature', above: -1000 },
          { id: 'probe-c', device: 'kitchen-th', point: 'temperature', above: -1000, severity: 'critical' },
        ],
      },
    );
    await waitFor(() => g.outbox!.stats().shedRows > 2 * POINTS_PER_WINDOW, 30000, 'rows shed');
    const s = g.outbox!.stats();
    expect(s.rows).toBeLessThanOrEqual(20);
    await broker.restart();
    await waitFor(async () => (await platform.items('gw-up', 'alarm')).length === 3 && ((await platform.lastStatus('gw-up'))?.shed as { rows: number } | undefined)?.rows, 20000, 'alarms and status');
    const alarms = (await platform.items('gw-up', 'alarm')).map((a) => a.body);
    expect(alarms.map((a) => a.alarm).sort()).toEqual(['probe-a', 'probe-b', 'probe-c']);
    expect(alarms.every((a) => a.state === 'raised')).toBe(true);
    // The alarms were raised before most aggregates and still came first.
    const status = (await platform.lastStatus('gw-up'))!;
    expect((status.shed as { rows: number }).rows).toBeGreaterThanOrEqual(s.shedRows);
    expect((await platform.items('gw-up', 'agg')).length).toBeLessThanOrEqual(20);
  }, 90_000);

  it('mutual TLS: the right client certificate connects; a wrong one is refused with a clear log line and data stays buffered', async () => {
    const certs = makeCerts();
    const broker = await Mosquitto.start({ tls: { caFile: certs.caCert, certFile: certs.serverCert, keyFile: certs.serverKey } });
    const platform = await consumer(`mqtt://127.0.0.1:${broker.port}`);
    const url = `mqtts://127.0.0.1:${broker.tlsPort}`;
    // This one speaks MQTT 5; the others MQTT 3.1.1 (the default).
    const good = await site({ url, protocolVersion: 5, caFile: certs.caCert, certFile: certs.clientCert, keyFile: certs.clientKey }, { gatewayId: 'gw-tls' });
    const captured = capturingLogger();
    const bad = await site({ url, caFile: certs.caCert, certFile: certs.rogueClientCert, keyFile: certs.rogueClientKey }, { gatewayId: 'gw-rogue' }, captured.log);
    await waitFor(async () => (await platform.items('gw-tls', 'agg')).length >= POINTS_PER_WINDOW, 20000, 'aggregates over TLS');
    expect(good.uplink!.state).toBe('connected');
    expect(bad.uplink!.state).not.toBe('connected');
    expect(await platform.seqs('gw-rogue')).toEqual([]);
    expect(bad.outbox!.stats().rows).toBeGreaterThan(POINTS_PER_WINDOW); // inventory and aggregates kept
    const refused = captured.lines().find((l) => l.msg === 'uplink cannot connect; data stays in the outbox');
    expect(refused, JSON.stringify(captured.lines().slice(-5))).toBeDefined();
    expect(String(refused!.err)).toMatch(/TLS handshake refused by the broker \(alert: unknown ca\): the platform does not accept this gateway.s client certificate/);
  }, 60_000);
  // A box without RTC that has not synced yet, or a clock far ahead: the broker's certificate
  // is fine but outside this box's time. The log names the clock, not uplink.caFile.
  for (const c of [
    { code: 'not yet valid', start: '2030-01-01T00:00:00Z', end: '2030-02-01T00:00:00Z', probed: /^TLS: the broker's certificate is not valid until 2030-01-01T00:00:00Z but this box's clock says \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; the clock may be wrong \(not synchronised yet: check NTP\), not uplink\.caFile$/, first: /^TLS: the broker's certificate is not yet valid but this box's clock says / },
    { code: 'expired', start: '2020-01-01T00:00:00Z', end: '2020-02-01T00:00:00Z', probed: /^TLS: the broker's certificate expired at 2020-02-01T00:00:00Z and this box's clock says \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; the clock may be wrong \(check NTP\); if it is right, the platform must renew its certificate \(not uplink\.caFile\)$/, first: /^TLS: the broker's certificate has expired and this box's clock says / },
  ]) {
    it(`TLS: a broker certificate ${c.code} for this box's clock is reported as a clock problem with the box's time`, async () => {
      const certs = makeCerts();
      const server = datedServerCert(certs, `server-${c.code.replace(/ /g, '-')}`, new Date(c.start), new Date(c.end));
      const broker = await Mosquitto.start({ tls: { caFile: certs.caCert, certFile: server.cert, keyFile: server.key } });
      const captured = capturingLogger();
      const before = Date.now();
      const g = await site({ url: `mqtts://127.0.0.1:${broker.tlsPort}`, caFile: certs.caCert, certFile: certs.clientCert, keyFile: certs.clientKey }, { gatewayId: 'gw-clock' }, captured.log);
      const refused = await waitFor(() => captured.lines().find((l) => l.msg === 'uplink cannot connect; data stays in the outbox'), 10000, 'the refusal');
      expect(String(refused.err)).toMatch(c.first);
      const probed = await waitFor(() => captured.lines().find((l) => l.msg === "uplink: the broker's certificate does not cover this box's time; data stays in the outbox"), 10000, 'the validity read');
      expect(String(probed.err)).toMatch(c.probed);
      // The box's time shown is the clock's reading, to the second.
      const shown = Date.parse(/clock says (\S+);/.exec(String(probed.err))![1]!);
      expect(shown).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
      expect(shown).toBeLessThanOrEqual(Date.now());
      expect(g.uplink!.lastError).toMatch(c.probed);
      expect(g.uplink!.state).not.toBe('connected');
    }, 30_000);
  }
});
