// Bus scan against pymodbus serving several unit ids, over Modbus TCP and over RTU on a socat
// pty line: exactly the units served are found, each with the shipped profile its register map
// matches; a unit answering exceptions to everything answers but fits nothing; Read Device
// Identification where the unit supports it. And a scan on a bus with a polled device: the
// device's polls go on, and none waits behind more than the one scan request on the link.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PymodbusServer, waitFor, type ModbusMap } from '../helpers/peers.js';
import { SocatLine } from '../helpers/socat.js';
import { baseConfig, makeGateway } from '../helpers/gateway.js';
import { ModbusBus } from '../../src/io/modbus/bus.js';
import { ModbusTcpTransport } from '../../src/io/modbus/tcp-transport.js';
import { ModbusRtuTransport } from '../../src/io/modbus/rtu-transport.js';
import type { ModbusTransport, ReadRequest } from '../../src/io/modbus/transport.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { ProfileSchema } from '../../src/config/profile-schema.js';
import { scanBus, type ScanProgress, type ScannedUnit } from '../../src/scan/bus-scan.js';
import { parseUnits } from '../../src/scan/units.js';
import { silentLogger } from '../../src/log.js';

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const shipped = loadProfiles(DRIVERS_DIR);
const identity = { VendorName: 'Shanghai XY', ProductCode: 'XY-MD02', MajorMinorRevision: '1.3' };

/** Register maps of shipped profiles: an R4DCB08 (4.5, 5.2, -18.0, 3.0 °C), an XY-MD02
 * (21.5 °C, 48 %RH, the one that identifies itself), an R4DCB08 with channel 2 unplugged
 * (0x8000), and a unit whose every answer is exception 4. */
const units: ModbusMap['units'] = {
  '1': { hr: { '0': 45, '1': 52, '2': 0x10000 - 180, '3': 30 }, noIdentity: true },
  '2': { ir: { '1': 215, '2': 480 } },
  '3': { hr: { '0': 45, '1': 0x8000, '2': 0x10000 - 180, '3': 30 }, noIdentity: true },
  '5': { failing: true },
};

async function busOn(t: ModbusTransport, timeoutMs = 300): Promise<ModbusBus> {
  const bus = new ModbusBus({ id: 'b', timeoutMs, retries: 1, reconnectMinMs: 100, reconnectMaxMs: 400 }, t, silentLogger());
  cleanups.push(() => bus.stop());
  await bus.start();
  return bus;
}

const fitting = (u: ScannedUnit | undefined) => u!.profiles.filter((p) => p.fits).map((p) => p.id);

/** What a scan of the map above must find, whatever the link. */
function expectFound(found: ScannedUnit[]): void {
  expect(found.map((u) => u.unitId)).toEqual([1, 2, 3, 5]);
  const [u1, u2, u3, u5] = found;
  expect(u1).toMatchObject({ answered: 'yes', reply: 'values' });
  expect(fitting(u1)).toEqual(['r4dcb08']);
  expect(u1!.profiles[0]).toEqual({ id: 'r4dcb08', fits: true, points: 4, rangeChecked: 4 });
  // Exception 1 to FC 43: not supported, which is no error.
  expect(u1!.identification).toBeUndefined();
  expect(u1!.identificationError).toBeUndefined();
  // Holding 0 is not served: the exception still means someone is there.
  expect(u2).toMatchObject({ answered: 'yes', reply: 'modbus exception 2 ILLEGAL DATA ADDRESS' });
  expect(fitting(u2)).toEqual(['xy-md02']);
  expect(u2!.identification).toEqual({ vendorName: 'Shanghai XY', productCode: 'XY-MD02', revision: '1.3' });
  expect(fitting(u3)).toEqual([]);
  expect(u3!.profiles.find((p) => p.id === 'r4dcb08')!.reason).toBe('fridge_2_temperature reads -3276.8 °C, outside -55..125');
  expect(u5).toMatchObject({ answered: 'yes', reply: 'modbus exception 4 SERVER DEVICE FAILURE', identificationError: 'modbus exception 4 SERVER DEVICE FAILURE' });
  expect(fitting(u5)).toEqual([]);
  expect(u5!.profiles.map((p) => p.id).sort()).toEqual([...shipped.keys()].sort());
  for (const p of u5!.profiles) expect(p.reason).toMatch(/^modbus exception 4 SERVER DEVICE FAILURE reading (holding|input|coil|discrete) \d+\.\.\d+ \(/);
}

/** Read-only: every request the server saw is a read or a device identification. */
function expectReadOnly(s: PymodbusServer): void {
  expect(s.requests.length).toBeGreaterThan(0);
  expect(new Set(s.requests.map((r) => r.fc))).toEqual(new Set(s.requests.map((r) => r.fc).filter((fc) => [1, 2, 3, 4, 43].includes(fc))));
}

describe('bus scan against pymodbus', () => {
  it('over Modbus TCP: finds exactly the units served, the profile each fits, identification on the one that has it; read-only', async () => {
    const s = await PymodbusServer.start({ identity, units });
    cleanups.push(() => s.stop());
    const bus = await busOn(new ModbusTcpTransport({ host: '127.0.0.1', port: s.port, connectTimeoutMs: 1000 }));
    // A profile with no ranges that unit 1 also fits: ranked below the one whose ranges all passed.
    const plain = ProfileSchema.parse({
      id: 'aaa-plain',
      manufacturer: 'test',
      model: 'two words',
      name: { zh: '两个寄存器', en: 'two registers' },
      source: 'own',
      facilities: ['canteen'],
      transports: ['modbus-tcp'],
      points: [{ id: 'a', name: { zh: 'a', en: 'a' }, register: 'holding', address: 0, type: 'uint16', privacy: 'public' }],
    });
    const progress: ScanProgress[] = [];
    const before = bus.transport.stats.requests;
    const r = await scanBus(bus, { units: parseUnits('1-8'), timeoutMs: 300, charMs: 0, profiles: new Map([...shipped, ['aaa-plain', plain]]), onProgress: (p) => progress.push(p) });
    expect(r.units.find((u) => u.unitId === 1)!.profiles.slice(0, 2).map((p) => [p.id, p.fits])).toEqual([
      ['r4dcb08', true],
      ['aaa-plain', true],
    ]);
    for (const u of r.units) u.profiles = u.profiles.filter((p) => p.id !== 'aaa-plain');
    expectFound(r.units);
    expect(r).toMatchObject({ probed: 8, total: 8 });
    expect(r.stopped).toBeUndefined();
    // Every request counted once: those the server saw, and one probe per silent unit.
    expect(r.requests).toBe(bus.transport.stats.requests - before);
    expect(r.requests).toBe(s.requests.length + 4);
    expect(bus.transport.stats).toMatchObject({ timeouts: 4, badFrames: 0 });
    expectReadOnly(s);
    expect(progress.map((p) => p.done)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(progress.at(-1)).toEqual({ done: 8, total: 8, found: 4 });
    expect(progress.map((p) => p.found)).toEqual([1, 2, 3, 3, 4, 4, 4, 4]);
  });

  it('over RTU on a socat RS-485 line: the same units and profiles', async () => {
    const line = await SocatLine.start();
    cleanups.push(() => line.stop());
    const s = await PymodbusServer.start({ serial: line.b, identity, units });
    cleanups.push(() => s.stop());
    const t = new ModbusRtuTransport({ path: line.a, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1 });
    const bus = await busOn(t);
    const r = await scanBus(bus, { units: parseUnits('1-6'), timeoutMs: 300, charMs: t.charMs, profiles: shipped });
    expectFound(r.units);
    expect(r).toMatchObject({ probed: 6, total: 6 });
    expect(r.requests).toBe(s.requests.length + 2);
    expect(t.stats).toMatchObject({ timeouts: 2, crcErrors: 0, shortFrames: 0, badFrames: 0 });
    expectReadOnly(s);
  });

  it('cancels between requests, and stops when the link goes down, keeping what it found', async () => {
    const s = await PymodbusServer.start({ units: { '1': units['1']!, '2': units['2']! } });
    cleanups.push(() => s.stop());
    const bus = await busOn(new ModbusTcpTransport({ host: '127.0.0.1', port: s.port, connectTimeoutMs: 1000 }));
    const abort = new AbortController();
    const r = await scanBus(bus, { units: parseUnits('1-20'), timeoutMs: 200, charMs: 0, profiles: shipped, signal: abort.signal, onProgress: (p) => p.done === 3 && abort.abort() });
    expect(r).toMatchObject({ probed: 3, total: 20, stopped: 'cancelled' });
    expect(r.units.map((u) => [u.unitId, fitting(u)])).toEqual([
      [1, ['r4dcb08']],
      [2, ['xy-md02']],
    ]);
    const sent = bus.transport.stats.requests;
    await new Promise((res) => setTimeout(res, 300));
    expect(bus.transport.stats.requests).toBe(sent);

    const down = scanBus(bus, { units: parseUnits('1-20'), timeoutMs: 200, charMs: 0, profiles: shipped, onProgress: (p) => p.done === 4 && void s.stop() });
    const d = await down;
    expect(d.stopped).toMatch(/^the bus went down: /);
    expect(d.probed).toBeLessThan(20);
    expect(d.units.map((u) => u.unitId)).toEqual([1, 2]);
  });

  it('a reason never shows a personal value', async () => {
    // A health kiosk whose systolic reading, 999, is out of range: the profile does not fit.
    const s = await PymodbusServer.start({ units: { '6': { ir: { '0': 3, '1': 0, '2': 4321, '3': 999, '4': 80, '5': 70, '6': 650, '7': 55, '8': 1 } } } });
    cleanups.push(() => s.stop());
    const bus = await busOn(new ModbusTcpTransport({ host: '127.0.0.1', port: s.port, connectTimeoutMs: 1000 }));
    const r = await scanBus(bus, { units: [6], timeoutMs: 300, charMs: 0, profiles: shipped });
    const kiosk = r.units[0]!.profiles.find((p) => p.id === 'fc-health-kiosk-v1')!;
    expect(kiosk).toMatchObject({ fits: false, reason: 'systolic_bp reads a personal value (withheld), outside 50..300' });
    expect(JSON.stringify(r)).not.toMatch(/999|4321/);
  });

  it('a damaged reply is an answer, reported as damaged; exceptions 0x0A/0x0B from a TCP gateway are silence', async () => {
    // A scripted TCP-to-RTU gateway: unit 1 answers one word, units 2 and 3 "gateway path
    // unavailable" and "target device failed to respond", unit 4 a reply whose byte count says 9
    // for one register; unit 5 nothing. (pymodbus drops requests to units it does not serve.)
    const server = net.createServer((sock) => {
      sock.on('data', (d) => {
        for (let o = 0; o + 12 <= d.length; o += 12) {
          const tid = [d[o]!, d[o + 1]!];
          const unit = d[o + 6]!;
          const pdu = unit === 1 ? [3, 2, 0, 7] : unit === 2 ? [0x83, 0x0a] : unit === 3 ? [0x83, 0x0b] : unit === 4 ? [3, 9, 0, 7] : null;
          if (pdu) sock.write(Buffer.from([...tid, 0, 0, 0, pdu.length + 1, unit, ...pdu]));
        }
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
    cleanups.push(() => new Promise<void>((res) => server.close(() => res())));
    const bus = await busOn(new ModbusTcpTransport({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, connectTimeoutMs: 1000 }));
    const r = await scanBus(bus, { units: parseUnits('1-5'), timeoutMs: 100, charMs: 0, profiles: new Map() });
    expect(r.units.map((u) => [u.unitId, u.answered])).toEqual([
      [1, 'yes'],
      [4, 'damaged'],
    ]);
    expect(r.units[1]!.reply).toMatch(/reply carries/);
    // Unit 5, and the identification of units 1 and 4 (never retried): one request each.
    expect(bus.transport.stats).toMatchObject({ requests: r.requests, exceptions: 2, timeouts: 1 + 2 });
    expect(r.requests).toBe(5 + 2);
  });
});

describe('bus scan on a bus with polled devices', () => {
  it('the devices keep polling; no poll, and no whole device scan, waits behind more than the one scan request on the link', async () => {
    // An ADAM-6050 at unit 4: three read blocks per scan (coil, discrete inputs, holding).
    const adam = { di: { '0': 1, '1': 0, '2': 0, '3': 1 }, hr: { '8': 0, '9': 42 }, co: { '16': 0 } };
    const s = await PymodbusServer.start({ units: { '1': units['1']!, '2': units['2']!, '4': adam } });
    cleanups.push(() => s.stop());
    const g = makeGateway(
      baseConfig({
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: s.port, timeoutMs: 300 }],
        // Several poll clocks: a poll often comes due while another device's request is on the link.
        devices: [
          { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 100 },
          { id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 2, pollMs: 130 },
          { id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 4, pollMs: 110 },
        ],
      }),
    );
    cleanups.push(() => g.stop());
    // Every request in order of events (no clock): when it was queued, put on the link, settled.
    const bus = g.buses.get('lan')!;
    let seq = 0;
    type Call = { low: boolean; unit: number; register: string; queued: number; start: number; end: number };
    const queued = new WeakMap<ReadRequest, { low: boolean; at: number }>();
    const calls: Call[] = [];
    const read = bus.read.bind(bus);
    bus.read = (req, opts) => {
      // Told apart by who asks (the scan module or a poller), not by the priority it asks for.
      queued.set(req, { low: new Error().stack!.includes('bus-scan.ts'), at: seq++ });
      return read(req, opts);
    };
    const t = bus.transport;
    const track = <T>(c: Omit<Call, 'start' | 'end'>, p: Promise<T>): Promise<T> => {
      const call = { ...c, start: seq++, end: Infinity };
      calls.push(call);
      const settle = () => void (call.end = seq++);
      p.then(settle, settle);
      return p;
    };
    const tRead = t.read.bind(t);
    t.read = (req, ms) => {
      const q = queued.get(req)!;
      return track({ low: q.low, unit: req.unitId, register: req.register, queued: q.at }, tRead(req, ms));
    };
    const tIdentify = t.identify.bind(t);
    t.identify = (unit, obj, ms) => track({ low: true, unit, register: 'id', queued: NaN }, tIdentify(unit, obj, ms));
    await g.start();
    await waitFor(() => g.pollers.every((p) => p.stats.online), 5000, 'devices online');

    const pollsBefore = g.pollers.map((p) => p.stats.polls);
    const first = calls.length;
    g.startScan('lan', { units: parseUnits('1-10'), timeoutMs: 200 });
    expect(() => g.startScan('lan')).toThrow(/already running/);
    await waitFor(() => g.scanState('lan')!.state !== 'running', 15_000, 'scan end');
    const during = calls.slice(first);
    const st = g.scanState('lan')!;
    expect(st.state).toBe('done');
    expect(st.result!.units.map((u) => [u.unitId, u.device, fitting(u)])).toEqual([
      [1, 'fridge-1', ['r4dcb08']],
      [2, 'th-1', ['xy-md02']],
      [4, 'io-1', ['advantech-adam-6050']],
    ]);
    const low = during.filter((c) => c.low);
    const polls = during.filter((c) => !c.low);
    expect(low.length).toBe(st.result!.requests);
    // Every device's scans went on finishing while the bus was scanned (seven silent ids
    // alone hold the scan for 1.4 s at 200 ms each, against polls every 100-130 ms).
    g.pollers.forEach((p, i) => expect(p.stats.polls - pollsBefore[i]!).toBeGreaterThanOrEqual(5));
    const launchedWithin = (from: number, to: number) => low.filter((l) => l.start > from && l.start < to);
    for (const p of polls) {
      // No scan request was put on the link while this poll request waited...
      expect(launchedWithin(p.queued, p.start)).toEqual([]);
      // ...so it waited at most for the one already there.
      expect(low.filter((l) => l.start < p.queued && l.end > p.queued).length).toBeLessThanOrEqual(1);
    }
    // A device's whole scan (the ADAM's three blocks, one after the other) is not cut either.
    const io = polls.filter((c) => c.unit === 4);
    const cycles = io.filter((c) => c.register === 'coil').map((c) => [c, ...io.filter((x) => x.queued > c.queued).slice(0, 2)]);
    expect(cycles.length).toBeGreaterThanOrEqual(4);
    for (const [c, d, h] of cycles.filter((x) => x.length === 3)) {
      expect([c!.register, d!.register, h!.register]).toEqual(['coil', 'discrete', 'holding']);
      expect(launchedWithin(c!.queued, h!.start)).toEqual([]);
    }
    // Scan requests never overlap on the link (one at a time, low priority).
    for (let i = 1; i < low.length; i++) expect(low[i]!.start).toBeGreaterThan(low[i - 1]!.end);
  });
});
