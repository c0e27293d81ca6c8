// Learning holes on many register maps: a scripted device behind the poller's bus (refuses a
// read with exception 2 when any address of it is missing, times out where told), so hundreds
// of seeded maps run in a second. The pymodbus tests (learn-holes.pymodbus.test.ts) check the
// same on the wire; here, the properties that hold on every map.
import { describe, expect, it } from 'vitest';
import type { ModbusBus } from '../../../src/io/modbus/bus.js';
import { DevicePoller, type PollSink } from '../../../src/io/modbus/device-poller.js';
import { ModbusExceptionError, ModbusTimeoutError } from '../../../src/io/modbus/errors.js';
import { planReads, pointSpan, registerGroups } from '../../../src/io/modbus/read-plan.js';
import { ProfileSchema, type Point, type Profile } from '../../../src/config/profile-schema.js';
import type { Quality } from '../../../src/types.js';
import { silentLogger } from '../../../src/log.js';

interface Req {
  start: number;
  count: number;
  refused: boolean;
}

/** A device with holding registers `present`; a read touching `timesOut` gets no answer. */
class ScriptedDevice {
  readonly requests: Req[] = [];
  constructor(
    readonly present: Set<number>,
    readonly timesOut: (start: number, count: number) => boolean = () => false,
    readonly bug: (start: number, count: number) => boolean = () => false,
  ) {}

  readonly bus = {
    onUp: () => {},
    read: async (req: { register: string; start: number; count: number }) => {
      expect(req.register).toBe('holding');
      if (this.bug(req.start, req.count)) throw new TypeError('a bug, not a Modbus error');
      let refused = false;
      for (let a = req.start; a < req.start + req.count; a++) if (!this.present.has(a)) refused = true;
      this.requests.push({ start: req.start, count: req.count, refused });
      if (this.timesOut(req.start, req.count)) throw new ModbusTimeoutError(100);
      if (refused) throw new ModbusExceptionError(2);
      return Array.from({ length: req.count }, (_, i) => req.start + i + 100);
    },
  } as unknown as ModbusBus;
}

function profileOf(points: unknown[]): Profile {
  return ProfileSchema.parse({ id: 'test-learn', manufacturer: 't', model: 't', name: { zh: 't', en: 't' }, source: 'own', facilities: ['canteen'], transports: ['modbus-tcp'], points });
}

function pollerOn(dev: ScriptedDevice, profile: Profile, maxGap: number) {
  let delivered: { point: string; raw: number; from: number; to: number }[] = [];
  let failed: { point: string; quality: Quality; detail: string }[] = [];
  const sink: PollSink = {
    block: (_d, b, values) => {
      for (const p of b.points) delivered.push({ point: p.id, raw: values[p.address - b.start]!, from: b.start, to: b.start + b.count - 1 });
    },
    failed: (_d, ps, quality, detail) => {
      for (const p of ps) failed.push({ point: p.id, quality, detail });
    },
    availability: () => {},
    scanDone: () => {},
  };
  const poller = new DevicePoller({ id: 'dev', facility: 'canteen', unitId: 1, pollMs: 1000, maxGap, profile }, dev.bus, sink, { offlineBackoffMaxMs: 1000 }, silentLogger());
  const scan = async () => {
    delivered = [];
    failed = [];
    const seen = dev.requests.length;
    await poller.pollOnce();
    return { requests: dev.requests.slice(seen), delivered, failed };
  };
  return { poller, scan };
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const pt = (id: string, address: number, type = 'uint16', bit?: number) => ({ id, name: { zh: id, en: id }, register: 'holding', address, type, ...(bit === undefined ? {} : { bit }), privacy: 'public' });

/** A random map: register groups (a word, a float, or two or three bit points of one word)
 * with random gaps, and 1 to 4 missing addresses in gaps or under points. */
function randomMap(r: () => number) {
  const points = [];
  let a = 0;
  const n = 2 + Math.floor(r() * 40);
  for (let i = 0; i < n; i++) {
    const kind = r();
    if (kind < 0.6) points.push(pt(`w${a}`, a));
    else if (kind < 0.8) points.push(pt(`f${a}`, a++, 'float32'));
    else for (let b = 0, k = 2 + Math.floor(r() * 2); b < k; b++) points.push(pt(`b${a}_${b}`, a, 'bit', b * 5));
    a += 1 + Math.floor(r() * r() * 9);
  }
  const last = a + 5;
  const present = new Set<number>();
  for (let x = 0; x <= last; x++) present.add(x);
  for (let k = 0, h = 1 + Math.floor(r() * 4); k < h; k++) present.delete(Math.floor(r() * last));
  return { profile: profileOf(points), present, last };
}

/** What an oracle that knew the holes would send each scan. */
function oracle(profile: Profile, present: Set<number>, last: number, maxGap: number) {
  const ok = (p: Point) => {
    const s = pointSpan(p);
    for (let x = s.from; x <= s.to; x++) if (!present.has(x)) return false;
    return true;
  };
  const holes = [];
  for (let x = 0; x <= last; x++) if (!present.has(x)) holes.push({ register: 'holding' as const, from: x, to: x });
  const supported = profile.points.filter(ok);
  return { supported, unsupported: profile.points.filter((p) => !ok(p)), requests: planReads(supported, holes, { maxGap, maxRegisters: 125 }).length };
}

describe('learning holes by bisection, on many maps', () => {
  it('on every map: each point delivered or unsupported once, holes only where proven, and the next scan is the oracle plan with none refused', async () => {
    const r = rng(15);
    let maps = 0;
    for (let t = 0; t < 400; t++) {
      const { profile, present, last } = randomMap(r);
      const maxGap = Math.floor(r() * 12);
      const dev = new ScriptedDevice(present);
      const { poller, scan } = pollerOn(dev, profile, maxGap);
      const want = oracle(profile, present, last, maxGap);
      const ctx = JSON.stringify({ t, maxGap, points: profile.points.map((p) => `${p.id}@${p.address}`), missing: [...Array(last + 1).keys()].filter((x) => !present.has(x)) });
      const learning = await scan();
      if (!learning.requests.some((q) => q.refused)) continue;
      maps++;
      // Every point the device has is delivered exactly once, with its own register's value.
      expect(learning.delivered.map((d) => d.point).sort(), ctx).toEqual(want.supported.map((p) => p.id).sort());
      for (const d of learning.delivered) expect(d.raw, ctx).toBe(profile.points.find((p) => p.id === d.point)!.address + 100);
      // Every point it lacks is found, and only those.
      expect([...poller.stats.unsupportedPoints].sort(), ctx).toEqual(want.unsupported.map((p) => p.id).sort());
      expect(learning.failed.every((f) => f.quality === 'exception' && /not supported/.test(f.detail)), ctx).toBe(true);
      // Points of one register are read together: no register is in two accepted reads.
      const groups = registerGroups(profile.points);
      for (const d of learning.delivered) {
        const g = groups.find((x) => x.points.some((p) => p.id === d.point))!;
        expect(d.from <= g.from && d.to >= g.to, ctx).toBe(true);
      }
      const used = new Map<number, number>();
      for (const q of learning.requests.filter((x) => !x.refused)) for (let x = q.start; x < q.start + q.count; x++) used.set(x, (used.get(x) ?? 0) + 1);
      expect([...used.values()].every((c) => c === 1), ctx).toBe(true);
      // A learned hole holds at least one missing address: recorded only where proven.
      for (const h of poller.stats.learnedHoles) expect([...Array(h.to - h.from + 1).keys()].some((i) => !present.has(h.from + i)), ctx).toBe(true);
      // Learning ends in its scan: the next is what the oracle sends, none refused, every point read.
      const next = await scan();
      expect(next.requests.filter((q) => q.refused), ctx).toEqual([]);
      expect(next.requests.length, ctx).toBe(want.requests);
      expect(next.delivered.map((d) => d.point).sort(), ctx).toEqual(want.supported.map((p) => p.id).sort());
    }
    expect(maps).toBeGreaterThan(200);
  });

  it('finds a hole when the learned split lets a block reach its neighbour within the size limit', async () => {
    // 0..124 fill one request; 125 starts the next. The firmware lacks 60: after learning, the
    // block from 61 may take in 125, across 125's boundary, which no read had spanned yet.
    const points = [pt('a0', 0), pt('a59', 59), pt('a61', 61), pt('a124', 124), pt('a130', 130)];
    const present = new Set([...Array(140).keys()].filter((x) => x !== 60 && x !== 127));
    const dev = new ScriptedDevice(present);
    const { poller, scan } = pollerOn(dev, profileOf(points), 100);
    const learning = await scan();
    // Bisection finds 60; then 1..58 and 62..123 (beside refused halves, never spanned) are
    // probed and accepted, and so is 125..129, between the two blocks of the scan: refused.
    expect(learning.requests.map((q) => `${q.start}+${q.count}${q.refused ? ' refused' : ''}`)).toEqual([
      '0+125 refused', '0+62 refused', '0+1', '59+3 refused', '59+1', '61+1', '124+1', '1+58', '62+62', '125+5 refused', '130+1',
    ]);
    expect(poller.stats.learnedHoles.map((h) => `${h.from}-${h.to}`)).toEqual(['60-60', '125-129']);
    const next = await scan();
    expect(next.requests.filter((q) => q.refused)).toEqual([]);
    expect(next.requests.map((q) => `${q.start}+${q.count}`)).toEqual(['0+60', '61+64', '130+1']);
  });

  it('marks the points of a read that timed out while learning with their quality, and goes on with the rest', async () => {
    const points = [pt('a0', 0), pt('a2', 2), pt('a4', 4), pt('a6', 6), pt('a8', 8), pt('a10', 10)];
    const present = new Set([...Array(12).keys()].filter((x) => x !== 9));
    // The device never answers a read that includes register 2 unless it is the whole block.
    const dev = new ScriptedDevice(present, (start, count) => start <= 2 && start + count > 2 && count < 11);
    const { poller, scan } = pollerOn(dev, profileOf(points), 10);
    const learning = await scan();
    expect(learning.requests.map((q) => `${q.start}+${q.count}`)).toEqual(['0+11', '0+5', '6+5', '6+1', '8+3', '8+1', '10+1']);
    expect(learning.failed).toEqual([
      { point: 'a0', quality: 'timeout', detail: 'no answer within 100 ms' },
      { point: 'a2', quality: 'timeout', detail: 'no answer within 100 ms' },
      { point: 'a4', quality: 'timeout', detail: 'no answer within 100 ms' },
    ]);
    expect(learning.delivered.map((d) => d.point)).toEqual(['a6', 'a8', 'a10']);
    expect(poller.stats.learnedHoles.map((h) => `${h.from}-${h.to}`)).toEqual(['9-9']);
    expect(poller.stats.unsupportedPoints).toEqual([]);
    expect(poller.stats.errors).toMatchObject({ timeouts: 1, exceptions: 3 });
  });

  it('rethrows an error that is not a Modbus one', async () => {
    const points = [pt('a0', 0), pt('a4', 4)];
    const dev = new ScriptedDevice(new Set([0, 4]), undefined, (start, count) => count === 1 && start === 4);
    const { scan } = pollerOn(dev, profileOf(points), 10);
    await expect(scan()).rejects.toThrow('a bug, not a Modbus error');
  });
});
