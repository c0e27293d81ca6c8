// Learning a firmware's holes against a real pymodbus server (test/peers/modbus_server.py:
// only the listed addresses exist, any other answers exception 2 ILLEGAL DATA ADDRESS). Requests
// are counted at the server, scan by scan, and set against an oracle that knows the holes.
import { afterEach, describe, expect, it } from 'vitest';
import { PymodbusServer, waitFor, type RequestLine } from '../../helpers/peers.js';
import { ModbusBus } from '../../../src/io/modbus/bus.js';
import { ModbusTcpTransport } from '../../../src/io/modbus/tcp-transport.js';
import { DevicePoller, type PollSink } from '../../../src/io/modbus/device-poller.js';
import { planReads, pointSpan } from '../../../src/io/modbus/read-plan.js';
import { ProfileSchema, type Point } from '../../../src/config/profile-schema.js';
import { silentLogger } from '../../../src/log.js';

const MAX_GAP = 10;
let server: PymodbusServer | null = null;
let bus: ModbusBus | null = null;
afterEach(async () => {
  await bus?.stop();
  await server?.stop();
  server = bus = null;
});

type PointSpec = [id: string, address: number, type?: string, bit?: number];
const points = (specs: PointSpec[]): Point[] =>
  ProfileSchema.parse({
    id: 'test-learn-holes',
    manufacturer: 'test',
    model: 'learn holes',
    name: { zh: '学习空洞', en: 'Learn holes' },
    source: 'own, test fixture',
    facilities: ['canteen'],
    transports: ['modbus-tcp'],
    points: specs.map(([id, address, type = 'uint16', bit]) => ({ id, name: { zh: id, en: id }, register: 'holding', address, type, ...(bit === undefined ? {} : { bit }), privacy: 'public' })),
  }).points;

/** Holding registers 0..last, less `missing`; each holds its address plus 100 unless `values` says. */
function registerMap(last: number, missing: number[], values: Record<number, number> = {}): Record<string, number> {
  const hr: Record<string, number> = {};
  for (let a = 0; a <= last; a++) if (!missing.includes(a)) hr[a] = values[a] ?? a + 100;
  return hr;
}

const present = (hr: Record<string, number>, from: number, to: number) => {
  for (let a = from; a <= to; a++) if (!(a in hr)) return false;
  return true;
};

/** Requests an oracle that knew the holes would send: the planner with every missing address
 * as a hole, over the points the device has. */
function oracleRequests(pts: Point[], hr: Record<string, number>): number {
  const supported = pts.filter((p) => present(hr, pointSpan(p).from, pointSpan(p).to));
  const last = Math.max(...pts.map((p) => pointSpan(p).to));
  const holes = [];
  for (let a = 0; a <= last; a++) if (!(a in hr)) holes.push({ register: 'holding' as const, from: a, to: a });
  return planReads(supported, holes, { maxGap: MAX_GAP, maxRegisters: 125 }).length;
}

interface Delivery {
  point: string;
  raw: number;
  read: string;
}

/** A poller of unit 1 on a pymodbus server serving `hr`; `scan()` runs one scan and returns
 * what the server saw and what the sink got. */
async function setup(pts: Point[], hr: Record<string, number>) {
  server = await PymodbusServer.start({ units: { '1': { hr } } });
  const log = silentLogger();
  // No retries: every request the poller makes is one the server sees.
  bus = new ModbusBus({ id: 'plc', timeoutMs: 1000, retries: 0, reconnectMinMs: 100, reconnectMaxMs: 400 }, new ModbusTcpTransport({ host: '127.0.0.1', port: server.port, connectTimeoutMs: 1000 }), log);
  await bus.start();
  let delivered: Delivery[] = [];
  let failed: { point: string; detail: string }[] = [];
  const sink: PollSink = {
    block: (_d, b, values) => {
      for (const p of b.points) delivered.push({ point: p.id, raw: values[p.address - b.start]!, read: `${b.start}+${b.count}` });
    },
    failed: (_d, ps, _q, detail) => {
      for (const p of ps) failed.push({ point: p.id, detail });
    },
    availability: () => {},
    scanDone: () => {},
  };
  const profile = ProfileSchema.parse({ id: 'test-learn-holes', manufacturer: 'test', model: 'm', name: { zh: 'x', en: 'x' }, source: 'own', facilities: ['canteen'], transports: ['modbus-tcp'], points: pts });
  const poller = new DevicePoller({ id: 'dev', facility: 'canteen', unitId: 1, pollMs: 60_000, maxGap: MAX_GAP, profile }, bus, sink, { offlineBackoffMaxMs: 1000 }, log);
  const s = server;
  const scan = async () => {
    delivered = [];
    failed = [];
    const seen = s.requests.length;
    const made = poller.stats.requests;
    await poller.pollOnce();
    // The server logs each request on its stdout, which may arrive after the reply.
    await waitFor(() => s.requests.length - seen === poller.stats.requests - made, 5000, 'the server log');
    const requests = s.requests.slice(seen);
    return { requests, refused: requests.filter((r) => !present(hr, r.address, r.address + r.count - 1)), delivered, failed };
  };
  return { poller, scan };
}

const fmt = (rs: RequestLine[]) => rs.map((r) => `${r.address}+${r.count}`);

describe('learning holes by bisection, against pymodbus', () => {
  it('learns two reserved ranges within twice the oracle requests; the next scan reads every point with none refused', async () => {
    // Register clusters with reserved ranges between them, as in a meter's map; this firmware
    // lacks 10..12 and 28. One request per point, as before, was 16 on the learning scan.
    const pts = points([
      ['v0', 0], ['alarm_a', 1, 'bit', 0], ['alarm_b', 1, 'bit', 4], ['v2', 2], ['f3', 3, 'float32'], ['v8', 8],
      ['u16', 16, 'uint32'], ['v18', 18], ['v20', 20], ['flag_a', 21, 'bit', 2], ['flag_b', 21, 'bit', 9], ['v24', 24],
      ['v32', 32], ['v33', 33], ['f34', 34, 'float32'],
    ]);
    const hr = registerMap(40, [10, 11, 12, 28], { 1: 0b10001, 21: 0b100 });
    const { poller, scan } = await setup(pts, hr);
    const minimum = oracleRequests(pts, hr);
    expect(minimum).toBe(3); // 0..8, 16..24, 32..35

    const learning = await scan();
    // The bound: twice what the oracle needs, plus the one refused merged read.
    expect(learning.requests.length).toBeLessThanOrEqual(2 * minimum + 1);
    expect(fmt(learning.requests)[0]).toBe('0+36');
    // Every point delivered once, with its value, and nothing marked failed.
    expect(learning.delivered.map((d) => d.point).sort()).toEqual(pts.map((p) => p.id).sort());
    for (const d of learning.delivered) expect(d.raw).toBe(hr[pts.find((p) => p.id === d.point)!.address]);
    expect(learning.failed).toEqual([]);
    // Learned: exactly the two ranges that hold the missing addresses, nothing inside accepted reads.
    expect(poller.stats.learnedHoles.map((h) => `${h.from}-${h.to}`).sort()).toEqual(['25-31', '9-15']);
    expect(poller.stats.unsupportedPoints).toEqual([]);

    const next = await scan();
    expect(next.refused).toEqual([]);
    expect(next.requests.length).toBe(minimum);
    expect(fmt(next.requests)).toEqual(['0+9', '16+9', '32+4']);
    expect(next.delivered.map((d) => d.point).sort()).toEqual(pts.map((p) => p.id).sort());
  });

  it('reads the bit points of one register in one request while learning', async () => {
    const pts = points([['v0', 0], ['bit_a', 1, 'bit', 0], ['bit_b', 1, 'bit', 3], ['v2', 2]]);
    const hr = registerMap(1, [], { 1: 0b1001 });
    const { poller, scan } = await setup(pts, hr);
    const learning = await scan();
    // 0..2 refused; 0 accepted, so the refusal is in 1..2 (nothing between): register 1 asked
    // once for both bits, 2 refused alone. Read point by point, register 1 was asked twice.
    expect(fmt(learning.requests)).toEqual(['0+3', '0+1', '1+1', '2+1']);
    const bits = learning.delivered.filter((d) => d.point.startsWith('bit_'));
    expect(bits).toEqual([
      { point: 'bit_a', raw: 0b1001, read: '1+1' },
      { point: 'bit_b', raw: 0b1001, read: '1+1' },
    ]);
    expect(poller.stats.unsupportedPoints).toEqual(['v2']);
    expect(fmt((await scan()).requests)).toEqual(['0+2']);
  });

  it('finds a single unsupported point among supported ones and delivers the others', async () => {
    const pts = points([
      ['v0', 0], ['f1', 1, 'float32'], ['s_a', 3, 'bit', 1], ['s_b', 3, 'bit', 15], ['v4', 4], ['v5', 5], ['u6', 6, 'uint32'], ['v8', 8],
    ]);
    const hr = registerMap(8, [4], { 3: 0x8002 });
    const { poller, scan } = await setup(pts, hr);
    const learning = await scan();
    // 0..8 refused, cut in the middle (no gaps to prefer): 0..3 accepted, so 4..8 holds the
    // refusal; 4..5 refused, 4 refused alone, 5 and 6..8 accepted. Six requests; one per point
    // was nine, with s_a and s_b asked apart.
    expect(fmt(learning.requests)).toEqual(['0+9', '0+4', '4+2', '4+1', '5+1', '6+3']);
    expect(poller.stats.unsupportedPoints).toEqual(['v4']);
    expect(learning.failed).toEqual([{ point: 'v4', detail: 'modbus exception 2 ILLEGAL DATA ADDRESS: point not supported by this device' }]);
    expect(learning.delivered.map((d) => d.point).sort()).toEqual(pts.map((p) => p.id).filter((id) => id !== 'v4').sort());
    for (const d of learning.delivered) expect(d.raw).toBe(hr[pts.find((p) => p.id === d.point)!.address]);
    // Only the refused point's register is a hole; the rest are read as the oracle would.
    expect(poller.stats.learnedHoles.map((h) => `${h.from}-${h.to}`)).toEqual(['4-4']);
    const next = await scan();
    expect(next.refused).toEqual([]);
    expect(next.requests.length).toBe(oracleRequests(pts, hr));
    expect(fmt(next.requests)).toEqual(['0+4', '5+4']);
  });
});
