// Modbus TCP against a real pymodbus server (test/peers/modbus_server.py): decoding of every
// type and order, requests per scan, exceptions, silent devices, learned holes, reconnects.
import { afterEach, describe, expect, it } from 'vitest';
import { PymodbusServer, sleep, waitFor } from '../../helpers/peers.js';
import { baseConfig, makeGateway } from '../../helpers/gateway.js';
import { fixtureProfile } from '../../helpers/fixtures.js';
import { allTypesUnit, expectAllTypes } from '../../helpers/all-types.js';
import type { Gateway } from '../../../src/main.js';
import type { Reading, DeviceStatus } from '../../../src/types.js';
import path from 'node:path';
import { loadOrCreateSiteSecret, pseudonymiser } from '../../../src/privacy/site-secret.js';

let servers: PymodbusServer[] = [];
let gateways: Gateway[] = [];
afterEach(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await Promise.all(servers.map((s) => s.stop()));
  gateways = [];
  servers = [];
});

function bus(port: number, over: Record<string, unknown> = {}) {
  return { id: 'plc', type: 'modbus-tcp', host: '127.0.0.1', port, timeoutMs: 150, retries: 1, reconnectMinMs: 100, reconnectMaxMs: 400, offlineBackoffMaxMs: 1000, ...over };
}

async function run(port: number, devices: Record<string, unknown>[], busOver: Record<string, unknown> = {}) {
  const g = makeGateway(baseConfig({ buses: [bus(port, busOver)], devices }), [
    fixtureProfile('test-all-types'),
    fixtureProfile('test-gaps'),
    fixtureProfile('test-firmware-hole'),
  ]);
  const readings: Reading[] = [];
  const status: DeviceStatus[] = [];
  g.events.on('reading', (r) => readings.push(r));
  g.events.on('deviceStatus', (s) => status.push(s));
  gateways.push(g);
  await g.start();
  return { g, readings, status };
}

const latest = (rs: Reading[], device: string, point: string) => rs.filter((r) => r.device === device && r.point === point).at(-1);

describe('Modbus TCP against pymodbus', () => {
  it('decodes every data type and byte/word order to the value pymodbus packed', async () => {
    const s = await PymodbusServer.start({
      units: { '1': allTypesUnit() },
    });
    servers.push(s);
    const { readings, g } = await run(s.port, [{ id: 'dev', facility: 'canteen', profile: 'test-all-types', bus: 'plc', unitId: 1, pollMs: 60000 }]);
    const all = fixtureProfile('test-all-types').points.map((p) => p.id);
    await waitFor(() => all.every((p) => latest(readings, 'dev', p)), 5000, 'a reading of every point');
    expectAllTypes(readings, 'dev');
    const v = (p: string) => latest(readings, 'dev', p)!.value;
    expect(v('input_i16')).toBe(42);
    // Identifiers leave the pipeline only as the keyed pseudonym under this site's secret.
    const secret = loadOrCreateSiteSecret(path.join(path.dirname(g.config.storage.path), 'site-secret'));
    expect(v('card')).toBe(pseudonymiser(secret)(12345678));
    expect(v('card')).toMatch(/^[0-9a-f]{16}$/);
    expect(v('coil0')).toBe(true);
    expect(v('coil5')).toBe(true);
    expect(v('di2')).toBe(true);
    // One request per register kind is the minimum for this map, and that is what the server saw.
    expect(s.requests.map((r) => `${r.fc}:${r.address}+${r.count}`).sort()).toEqual(['1:0+6', '2:2+1', '3:0+40', '4:0+3']);
  });

  it('reads each scan with the minimum number of requests (gaps, holes, 125-register limit)', async () => {
    const hr: Record<string, number> = {};
    for (const a of [0, 1, 20, 100, 101, 150, 160]) hr[a] = a;
    for (let a = 400; a <= 525; a++) hr[a] = a;
    const s = await PymodbusServer.start({ units: { '7': { hr } } });
    servers.push(s);
    const { g, readings } = await run(s.port, [{ id: 'gaps', facility: 'canteen', profile: 'test-gaps', bus: 'plc', unitId: 7, pollMs: 300 }], { maxGap: 10 });
    await waitFor(() => readings.filter((r) => r.point === 'a525').length >= 3, 5000, 'three scans');
    await g.stop();
    const scans = readings.filter((r) => r.point === 'a525').length;
    expect(g.pollers[0]!.readPlan.map((b) => `${b.start}+${b.count}`)).toEqual(['0+2', '20+1', '100+2', '150+1', '160+1', '400+125', '525+1']);
    // Counted at the server: 7 requests per scan, no refused or repeated request.
    expect(s.requests.length).toBe(7 * scans);
    expect(latest(readings, 'gaps', 'a524')!.value).toBe(524);
  });

  it('maps an exception reply and a silent device to quality and availability while a live device keeps its rate', async () => {
    const s = await PymodbusServer.start({ units: { '1': { hr: { '0': 5 } }, '2': { failing: true, hr: { '0': 1 } } } });
    servers.push(s);
    const profile = 'fc-health-kiosk-v1'; // any shipped profile; units 2 and 3 never answer with data
    const { readings, status, g } = await run(s.port, [
      { id: 'live', facility: 'canteen', profile: 'test-gaps', bus: 'plc', unitId: 1, pollMs: 200 },
      { id: 'broken', facility: 'canteen', profile, bus: 'plc', unitId: 2, pollMs: 200 },
      { id: 'silent', facility: 'canteen', profile, bus: 'plc', unitId: 3, pollMs: 200 },
    ], { maxGap: 0 });
    await waitFor(() => status.find((x) => x.device === 'silent' && !x.online), 5000, 'silent device offline');
    const before = s.countFor(1);
    const t0 = Date.now();
    await sleep(3000);
    const polls = (s.countFor(1) - before) / g.pollers[0]!.readPlan.length;
    const expected = (Date.now() - t0) / 200;
    // The silent device backs off (2^n x pollMs, at most 1 s between 150 ms probes), so the live one keeps >= 75 % of its rate.
    expect(polls).toBeGreaterThanOrEqual(expected * 0.75);

    const broken = latest(readings, 'broken', 'systolic_bp')!;
    expect(broken.quality).toBe('exception');
    expect(broken.detail).toMatch(/exception 4 SERVER DEVICE FAILURE/);
    expect(status.filter((x) => x.device === 'broken').at(-1)!.online).toBe(true); // it answers: online, but bad data

    const silent = latest(readings, 'silent', 'systolic_bp')!;
    expect(silent).toMatchObject({ value: null, quality: 'timeout' });
    expect(status.filter((x) => x.device === 'silent').map((x) => x.online)).toEqual([false]);
    expect(g.pollers[2]!.stats.online).toBe(false);
    // Probes of the silent device are spaced out by the backoff, not every 200 ms.
    expect(g.pollers[2]!.stats.polls).toBeLessThan(10);
    expect(latest(readings, 'live', 'a0')).toMatchObject({ value: 5, quality: 'good' });
  });

  it('splits a refused merged read, learns the holes, and reads with the smaller plan from then on', async () => {
    const s = await PymodbusServer.start({ units: { '3': { ir: { '0': 11, '4': 44, '7': 77 } } } });
    servers.push(s);
    const { readings, g } = await run(s.port, [{ id: 'fw', facility: 'canteen', profile: 'test-firmware-hole', bus: 'plc', unitId: 3, pollMs: 250 }]);
    await waitFor(() => readings.filter((r) => r.point === 'd' && r.quality === 'good').length >= 4, 5000, 'four scans');
    await g.stop();
    expect(latest(readings, 'fw', 'a')).toMatchObject({ value: 11, quality: 'good' });
    expect(latest(readings, 'fw', 'b')).toMatchObject({ value: 44, quality: 'good' });
    expect(latest(readings, 'fw', 'd')).toMatchObject({ value: 77, quality: 'good' });
    expect(latest(readings, 'fw', 'c')).toMatchObject({ value: null, quality: 'exception' });
    expect(latest(readings, 'fw', 'c')!.detail).toMatch(/not supported/);
    expect(g.pollers[0]!.stats.unsupportedPoints).toEqual(['c']);
    expect(g.pollers[0]!.readPlan.map((b) => `${b.start}+${b.count}`)).toEqual(['0+1', '4+1', '7+1']);
    // First scan: the refused 8-register read, then bisection, cut at the widest gap (1..3):
    // a accepted; b..d refused, cut before c: b accepted, c..d refused, c refused alone (point
    // not supported), d accepted. No accepted read spanned 1..3, which the new plan would merge
    // across: probed alone, refused, a hole. Every later scan: 3, none refused.
    const reqs = s.requests.map((r) => `${r.address}+${r.count}`);
    expect(reqs.slice(0, 8)).toEqual(['0+8', '0+1', '4+4', '4+1', '6+2', '6+1', '7+1', '1+3']);
    expect(g.pollers[0]!.stats.learnedHoles.map((h) => `${h.from}-${h.to}`)).toEqual(['6-6', '1-3']);
    expect(reqs.slice(8).every((x) => ['0+1', '4+1', '7+1'].includes(x))).toBe(true);
    expect((reqs.length - 8) % 3).toBe(0);
  });

  it('marks devices offline when the server goes away and reconnects when it is back', async () => {
    const s = await PymodbusServer.start({ units: { '1': { hr: { '0': 5, '1': 6 } } } });
    servers.push(s);
    const { readings, status, g } = await run(s.port, [{ id: 'dev', facility: 'canteen', profile: 'test-gaps', bus: 'plc', unitId: 1, pollMs: 200 }], { maxGap: 0 });
    await waitFor(() => status.find((x) => x.online), 5000, 'online');
    await s.stop();
    await waitFor(() => status.filter((x) => !x.online).length > 0, 5000, 'offline after server stop');
    expect(g.buses.get('plc')!.status).not.toBe('up');
    const n = readings.length;
    await s.start();
    await waitFor(() => status.at(-1)!.online, 8000, 'online again');
    await waitFor(() => readings.slice(n).some((r) => r.point === 'a0' && r.quality === 'good'), 5000, 'fresh readings');
    expect(status.map((x) => x.online)).toEqual([true, false, true]);
  });
});
