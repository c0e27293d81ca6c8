// Modbus RTU against a real pymodbus serial server on the far end of a socat pty pair (a
// virtual RS-485 line): decoding, two devices taking turns on one line, a dead unit id, and
// the line vanishing and coming back (an unplugged USB adapter).
import { afterEach, describe, expect, it } from 'vitest';
import { PymodbusServer, sleep, waitFor } from '../../helpers/peers.js';
import { SocatLine, type WireChunk } from '../../helpers/socat.js';
import { baseConfig, makeGateway } from '../../helpers/gateway.js';
import { fixtureProfile } from '../../helpers/fixtures.js';
import { allTypesUnit, expectAllTypes } from '../../helpers/all-types.js';
import type { Gateway } from '../../../src/main.js';
import type { Reading, DeviceStatus } from '../../../src/types.js';

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function line(opts: { monitor?: boolean } = {}): Promise<SocatLine> {
  const l = await SocatLine.start(opts);
  cleanups.push(() => l.stop());
  return l;
}

async function server(l: SocatLine, units: Record<string, unknown>): Promise<PymodbusServer> {
  const s = await PymodbusServer.start({ serial: l.b, units: units as never });
  cleanups.push(() => s.stop());
  return s;
}

const rtuBus = (path: string, over: Record<string, unknown> = {}) => ({
  id: 'rs485',
  type: 'modbus-rtu',
  path,
  baudRate: 9600,
  timeoutMs: 200,
  retries: 1,
  reconnectMinMs: 100,
  reconnectMaxMs: 400,
  offlineBackoffMaxMs: 1000,
  ...over,
});

async function run(path: string, devices: Record<string, unknown>[], busOver: Record<string, unknown> = {}) {
  const g = makeGateway(baseConfig({ buses: [rtuBus(path, busOver)], devices }), [fixtureProfile('test-all-types'), fixtureProfile('test-gaps')]);
  const readings: Reading[] = [];
  const status: DeviceStatus[] = [];
  g.events.on('reading', (r) => readings.push(r));
  g.events.on('deviceStatus', (s) => status.push(s));
  cleanups.push(() => g.stop());
  await g.start();
  return { g, readings, status };
}

/** Splits the wire record into frames: consecutive chunks from one side form one frame. */
function frames(chunks: WireChunk[]): { from: 'gw' | 'dev'; bytes: Buffer }[] {
  const out: { from: 'gw' | 'dev'; bytes: Buffer }[] = [];
  for (const c of chunks) {
    const last = out.at(-1);
    if (last && last.from === c.from) last.bytes = Buffer.concat([last.bytes, c.bytes]);
    else out.push({ from: c.from, bytes: c.bytes });
  }
  return out;
}

const scans = (g: Gateway, id: string) => g.pollers.find((p) => p.device.id === id)!.stats.polls;

describe('Modbus RTU over a socat pty pair against pymodbus', () => {
  it('decodes every data type and byte/word order over RTU', async () => {
    const l = await line();
    await server(l, { '1': allTypesUnit() });
    const { readings } = await run(l.a, [{ id: 'dev', facility: 'canteen', profile: 'test-all-types', bus: 'rs485', unitId: 1, pollMs: 60000 }]);
    const all = fixtureProfile('test-all-types').points.map((p) => p.id);
    await waitFor(() => all.every((p) => readings.some((r) => r.device === 'dev' && r.point === p)), 8000, 'a reading of every point');
    expectAllTypes(readings, 'dev');
    expect(readings.filter((r) => r.device === 'dev').every((r) => r.quality === 'good' || r.point === 'out_of_range')).toBe(true);
  });

  it('serves two devices on one line in turn: every request is answered before the next is sent', async () => {
    const l = await line({ monitor: true });
    const s = await server(l, { '1': { ir: { '1': 215, '2': 480 } }, '2': { ir: { '1': 199, '2': 510 } } });
    const { g, readings } = await run(l.a, [
      { id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'rs485', unitId: 1, pollMs: 100 },
      { id: 'th-2', facility: 'canteen', profile: 'xy-md02', bus: 'rs485', unitId: 2, pollMs: 100 },
    ]);
    await waitFor(() => scans(g, 'th-1') >= 10 && scans(g, 'th-2') >= 10, 10000, 'ten scans of each');
    await g.stop();
    expect(readings.filter((r) => r.device === 'th-1' && r.point === 'temperature').at(-1)!.value).toBe(21.5);
    expect(readings.filter((r) => r.device === 'th-2' && r.point === 'humidity').at(-1)!.value).toBe(51);
    // On the wire: strictly request, reply, request, reply...; each reply from the unit asked.
    const f = frames(l.chunks());
    expect(f.length).toBeGreaterThanOrEqual(40);
    for (let i = 0; i + 1 < f.length; i += 2) {
      expect(f[i]!.from).toBe('gw');
      expect(f[i + 1]!.from).toBe('dev');
      expect(f[i]!.bytes.length).toBe(8); // one read request, not two run together
      expect(f[i + 1]!.bytes[0]).toBe(f[i]!.bytes[0]);
    }
    expect(new Set(f.filter((x) => x.from === 'gw').map((x) => x.bytes[0]))).toEqual(new Set([1, 2]));
    expect(s.countFor(1)).toBeGreaterThan(0);
    expect(g.buses.get('rs485')!.transport.stats).toMatchObject({ crcErrors: 0, shortFrames: 0, badFrames: 0 });
  });

  it('a dead unit id on the line costs the live device no more than its backoff share', async () => {
    const l = await line();
    await server(l, { '1': { ir: { '1': 215, '2': 480 } } });
    const live = { id: 'live', facility: 'canteen', profile: 'xy-md02', bus: 'rs485', unitId: 1, pollMs: 100 };
    const alone = await run(l.a, [live]);
    await waitFor(() => scans(alone.g, 'live') >= 1, 5000, 'first scan');
    const a0 = scans(alone.g, 'live');
    await sleep(3000);
    const aloneRate = (scans(alone.g, 'live') - a0) / 3;
    await alone.g.stop();

    const both = await run(l.a, [live, { id: 'dead', facility: 'canteen', profile: 'xy-md02', bus: 'rs485', unitId: 9, pollMs: 100 }]);
    await waitFor(() => both.status.some((s) => s.device === 'dead' && !s.online), 5000, 'dead unit marked offline');
    const b0 = scans(both.g, 'live');
    await sleep(3000);
    const withDeadRate = (scans(both.g, 'live') - b0) / 3;
    // The dead unit is probed once per backoff (at most offlineBackoffMaxMs = 1 s, no retries
    // when offline), each probe holding the line for one 200 ms timeout: a share of about
    // 20 % once backed off. Allow 35 % for the backoff still growing at the start.
    expect(withDeadRate).toBeGreaterThan(aloneRate * 0.65);
    const deadPoller = both.g.pollers.find((p) => p.device.id === 'dead')!;
    expect(deadPoller.stats.online).toBe(false);
    expect(deadPoller.stats.errors.timeouts).toBeGreaterThan(0);
    expect(both.g.pollers.find((p) => p.device.id === 'live')!.stats.online).toBe(true);
  });

  it('survives the line vanishing (adapter unplugged) and reopens it when it is back', async () => {
    const l = await line();
    let s = await server(l, { '1': { ir: { '1': 215, '2': 480 } } });
    const { g, status, readings } = await run(l.a, [{ id: 'th', facility: 'canteen', profile: 'xy-md02', bus: 'rs485', unitId: 1, pollMs: 100 }]);
    await waitFor(() => status.some((x) => x.device === 'th' && x.online), 5000, 'online');
    await s.stop();
    await l.stop();
    await waitFor(() => g.buses.get('rs485')!.status === 'down', 5000, 'bus down');
    await waitFor(() => status.at(-1)?.online === false, 5000, 'device offline');
    expect(g.buses.get('rs485')!.lastError).toMatch(/serial port .* (disconnected|closed)|open serial port/);
    // Plugged back in: same path, a new pty behind it, and a device with a new value.
    await l.start();
    s = await server(l, { '1': { ir: { '1': 230, '2': 480 } } });
    await waitFor(() => g.buses.get('rs485')!.status === 'up', 8000, 'bus up again');
    await waitFor(() => readings.some((r) => r.device === 'th' && r.point === 'temperature' && r.value === 23), 8000, 'fresh reading');
    expect(status.at(-1)).toMatchObject({ device: 'th', online: true });
  });
});
