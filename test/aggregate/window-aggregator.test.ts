// Window aggregation driven by an injected clock and vitest fake timers: windows close
// deterministically, and the sink collects what would go to the outbox.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { counterDelta, WindowAggregator, type AggregatedPoint } from '../../src/aggregate/window-aggregator.js';
import { PointSchema, type Point } from '../../src/config/profile-schema.js';
import { silentLogger } from '../../src/log.js';
import { ClockWatch } from '../../src/time/clock-watch.js';
import type { OutboxItem } from '../../src/store/outbox.js';
import type { Facility, Quality, Reading } from '../../src/types.js';
import { liveHeap, promotedPerRound } from '../helpers/retention.js';
import { openDatabase } from '../../src/store/database.js';
import { Outbox } from '../../src/store/outbox.js';
import { tmpDir } from '../helpers/peers.js';
import path from 'node:path';

const W = 60; // windowSeconds
const WMS = W * 1000;
const DELAY = 2000; // closeDelayMs
/** A window boundary (and an hour boundary). */
const T0 = Date.UTC(2025, 4, 1, 8, 0, 0);

const pt = (over: Record<string, unknown>): Point =>
  PointSchema.parse({ id: 'x', name: { zh: 'x', en: 'x' }, register: 'holding', address: 0, type: 'int16', privacy: 'public', ...over });

const temperature = pt({ id: 'temperature', type: 'int16', scale: 0.1, unit: '°C', kind: 'gauge' });
const meals = pt({ id: 'meals', type: 'uint16', kind: 'counter' });
const energy = pt({ id: 'energy', type: 'float32', kind: 'counter', unit: 'kWh' });
const signedCount = pt({ id: 'signed_count', type: 'int16', kind: 'counter' });
const door = pt({ id: 'door', register: 'coil', type: 'bool', kind: 'state' });

const DEVICES: { id: string; facility: Facility }[] = [
  { id: 'fridge-1', facility: 'canteen' },
  { id: 'fridge-2', facility: 'canteen' },
  { id: 'kiosk-1', facility: 'health' },
];

interface Body {
  type: 'point' | 'facility';
  windowStart: number;
  windowSeconds: number;
  facility: Facility;
  device?: string;
  point?: string;
  [k: string]: unknown;
}

/** Extra milliseconds the injected clock runs ahead of the fake timers (a stalled event loop). */
let stall = 0;
const now = () => Date.now() + stall;
let batches: OutboxItem[][] = [];
let agg: WindowAggregator | null = null;

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
  stall = 0;
  batches = [];
});
afterEach(() => {
  agg?.stop();
  agg = null;
  vi.useRealTimers();
});

function make(points: AggregatedPoint[], devices = DEVICES, opts = { windowSeconds: W, closeDelayMs: DELAY }, sink?: (items: OutboxItem[]) => void): WindowAggregator {
  // The sink's items are made as they are read and valid during the call only: read them now.
  const take = sink ?? ((items: OutboxItem[]) => batches.push(items));
  agg = new WindowAggregator(opts, points, devices, (items) => take([...items]), silentLogger(), now);
  return agg;
}

/** Moves the clock and fires due timers (each at its own time). */
function advance(ms: number): void {
  vi.advanceTimersByTime(ms);
}
/** Moves to an absolute time. */
function advanceTo(t: number): void {
  const d = t - now();
  expect(d).toBeGreaterThanOrEqual(0);
  vi.advanceTimersByTime(d);
}

function reading(device: string, p: Point, ts: number, value: number | boolean | null, quality: Quality = 'good'): Reading {
  return {
    device,
    facility: DEVICES.find((d) => d.id === device)?.facility ?? 'canteen',
    point: p.id,
    ts,
    value,
    quality,
    unit: p.unit,
    privacy: p.privacy,
    kind: p.kind,
  };
}

const bodies = (items: OutboxItem[]): Body[] => items.map((i) => JSON.parse(i.body) as Body);
const pointBody = (items: OutboxItem[], device: string, point: string): Body => {
  const b = bodies(items).find((x) => x.type === 'point' && x.device === device && x.point === point);
  expect(b, `${device}/${point}`).toBeDefined();
  return b!;
};
const facilityBody = (items: OutboxItem[], facility: Facility): Body => {
  const b = bodies(items).find((x) => x.type === 'facility' && x.facility === facility);
  expect(b, facility).toBeDefined();
  return b!;
};

describe('WindowAggregator windows', () => {
  it('are wall-clock aligned and close windowSeconds + closeDelayMs after their start', () => {
    vi.setSystemTime(T0 + 25_000);
    const a = make([{ device: 'fridge-1', facility: 'canteen', point: temperature }]);
    a.start();
    a.onReading(reading('fridge-1', temperature, T0 + 26_000, 4.5));
    advanceTo(T0 + WMS + DELAY - 1);
    expect(batches).toHaveLength(0);
    advance(1);
    expect(batches).toHaveLength(1);
    const items = batches[0]!;
    expect(items.every((i) => i.kind === 'agg')).toBe(true);
    expect(items.every((i) => i.ts === T0 + WMS)).toBe(true);
    for (const b of bodies(items)) {
      expect(b.windowStart).toBe(T0);
      expect(b.windowStart % WMS).toBe(0);
      expect(b.windowSeconds).toBe(W);
    }
    expect(pointBody(items, 'fridge-1', 'temperature')).toMatchObject({ count: 1, last: 4.5, unit: '°C', kind: 'gauge' });

    // The next one: exactly one window later.
    advanceTo(T0 + 2 * WMS + DELAY - 1);
    expect(batches).toHaveLength(1);
    advance(1);
    expect(batches).toHaveLength(2);
    expect(bodies(batches[1]!).every((b) => b.windowStart === T0 + WMS)).toBe(true);
    expect(a.windowsClosed).toBe(2);
  });

  it('align to multiples of windowSeconds for a 15-minute window too', () => {
    vi.setSystemTime(T0 + 17 * 60_000 + 123);
    make([{ device: 'fridge-1', facility: 'canteen', point: temperature }], DEVICES, { windowSeconds: 900, closeDelayMs: 500 }).start();
    advanceTo(T0 + 30 * 60_000 + 499);
    expect(batches).toHaveLength(0);
    advance(1);
    expect(batches).toHaveLength(1);
    const b = pointBody(batches[0]!, 'fridge-1', 'temperature');
    expect(b.windowStart).toBe(T0 + 15 * 60_000);
    expect(b.windowStart % 900_000).toBe(0);
    expect(b.windowSeconds).toBe(900);
  });

  it('count/mean/min/max/sum/last over good readings; bad quality only counted in bad', () => {
    const a = make([{ device: 'fridge-1', facility: 'canteen', point: temperature }]);
    a.start();
    const r = (dt: number, v: number | null, q: Quality = 'good') => a.onReading(reading('fridge-1', temperature, T0 + dt, v, q));
    r(1000, 4);
    r(2000, 6.5);
    r(3000, null, 'timeout');
    r(4000, 99, 'out_of_range');
    r(5000, 0.1);
    r(6000, null, 'comm_error');
    r(7000, 0.2);
    r(8000, -3, 'exception');
    // Other devices' and unknown points' readings are not mixed in.
    a.onReading(reading('fridge-2', temperature, T0 + 1000, 100));
    a.onReading(reading('fridge-1', pt({ id: 'humidity' }), T0 + 1000, 100));
    advanceTo(T0 + WMS + DELAY);
    expect(batches).toHaveLength(1);
    const b = pointBody(batches[0]!, 'fridge-1', 'temperature');
    expect(b).toEqual({
      type: 'point',
      windowStart: T0,
      windowSeconds: W,
      facility: 'canteen',
      device: 'fridge-1',
      point: 'temperature',
      unit: '°C',
      kind: 'gauge',
      count: 4,
      bad: 4,
      mean: 2.7, // (4 + 6.5 + 0.1 + 0.2) / 4, without binary noise
      min: 0.1,
      max: 6.5,
      sum: 10.8,
      last: 0.2,
    });
    // Only the configured point: one point item plus the facility items.
    expect(bodies(batches[0]!).filter((x) => x.type === 'point')).toHaveLength(1);
  });

  it('a silent point still yields an item with count 0 and null stats', () => {
    const a = make([
      { device: 'fridge-1', facility: 'canteen', point: temperature },
      { device: 'fridge-1', facility: 'canteen', point: meals },
      { device: 'fridge-1', facility: 'canteen', point: door },
    ]);
    a.start();
    a.onReading(reading('fridge-1', temperature, T0 + 500, null, 'timeout'));
    advanceTo(T0 + WMS + DELAY);
    const items = batches[0]!;
    expect(pointBody(items, 'fridge-1', 'temperature')).toMatchObject({ count: 0, bad: 1, mean: null, min: null, max: null, sum: null, last: null });
    const m = pointBody(items, 'fridge-1', 'meals');
    expect(m).toMatchObject({ count: 0, bad: 0, mean: null, min: null, max: null, sum: null, last: null, increase: null, kind: 'counter' });
    expect(m).not.toHaveProperty('trueShare');
    expect(pointBody(items, 'fridge-1', 'door')).toMatchObject({ count: 0, bad: 0, mean: null, last: null, trueShare: null, changes: 0 });
    expect(pointBody(items, 'fridge-1', 'temperature')).not.toHaveProperty('increase');
    // Silent in the next window too: it keeps coming.
    advance(WMS);
    expect(batches).toHaveLength(2);
    expect(pointBody(batches[1]!, 'fridge-1', 'temperature')).toMatchObject({ windowStart: T0 + WMS, count: 0, bad: 0, mean: null });
  });

  it('stop() sends no partial window', () => {
    const a = make([{ device: 'fridge-1', facility: 'canteen', point: temperature }]);
    a.start();
    a.onReading(reading('fridge-1', temperature, T0 + 1000, 5));
    advance(30_000);
    a.stop();
    advance(10 * WMS);
    expect(batches).toHaveLength(0);
    expect(a.windowsClosed).toBe(0);
  });
});

describe('WindowAggregator counters', () => {
  it('increase across windows, over a uint16 wrap, and over a reset', () => {
    const a = make([
      { device: 'fridge-1', facility: 'canteen', point: meals },
      { device: 'fridge-1', facility: 'canteen', point: energy },
      { device: 'fridge-1', facility: 'canteen', point: signedCount },
    ]);
    a.start();
    const m = (dt: number, v: number | null, q: Quality = 'good') => a.onReading(reading('fridge-1', meals, T0 + dt, v, q));
    const e = (dt: number, v: number) => a.onReading(reading('fridge-1', energy, T0 + dt, v));
    const s = (dt: number, v: number) => a.onReading(reading('fridge-1', signedCount, T0 + dt, v));
    // Window 1: the first reading ever has nothing before it.
    m(1000, 65500);
    m(20_000, 65520);
    m(30_000, null, 'timeout');
    m(40_000, 65530);
    e(1000, 990);
    e(30_000, 1000);
    s(1000, 32000);
    advanceTo(T0 + WMS + DELAY);
    const w1 = batches[0]!;
    expect(pointBody(w1, 'fridge-1', 'meals')).toMatchObject({ count: 3, bad: 1, increase: 30, last: 65530 });
    expect(pointBody(w1, 'fridge-1', 'energy')).toMatchObject({ count: 2, increase: 10 });
    expect(pointBody(w1, 'fridge-1', 'signed_count')).toMatchObject({ count: 1, increase: 0 });

    // Window 2: the first reading counts from window 1's last value; 65530 -> 4 wraps (+10).
    m(WMS + 1000, 4);
    m(WMS + 2000, 10);
    // float32 energy 1000 -> 2: a reset (meter replaced): +2, then +3.
    e(WMS + 1000, 2);
    e(WMS + 2000, 5);
    // int16 32000 -> 5: both in the top (non-negative) half: a reset, +5.
    s(WMS + 1000, 5);
    s(WMS + 2000, 7);
    advanceTo(T0 + 2 * WMS + DELAY);
    const w2 = batches[1]!;
    expect(pointBody(w2, 'fridge-1', 'meals')).toMatchObject({ windowStart: T0 + WMS, count: 2, increase: 16, min: 4, max: 10 });
    expect(pointBody(w2, 'fridge-1', 'energy')).toMatchObject({ count: 2, increase: 5 });
    expect(pointBody(w2, 'fridge-1', 'signed_count')).toMatchObject({ count: 2, increase: 7 });

    // Window 3: silent: null increase; window 4 still counts from the last value (10).
    advanceTo(T0 + 3 * WMS + DELAY);
    expect(pointBody(batches[2]!, 'fridge-1', 'meals')).toMatchObject({ count: 0, increase: null });
    m(3 * WMS + 1000, 25);
    advanceTo(T0 + 4 * WMS + DELAY);
    expect(pointBody(batches[3]!, 'fridge-1', 'meals')).toMatchObject({ count: 1, increase: 15 });
  });

  it('counterDelta: plain increase, wraps at the register range, resets otherwise', () => {
    const u16 = pt({ type: 'uint16', kind: 'counter' });
    const u32 = pt({ type: 'uint32', kind: 'counter' });
    const i16 = pt({ type: 'int16', kind: 'counter' });
    const i32 = pt({ type: 'int32', kind: 'counter' });
    const f32 = pt({ type: 'float32', kind: 'counter' });
    const f64 = pt({ type: 'float64', kind: 'counter' });

    expect(counterDelta(u16, 10, 15)).toBe(5);
    expect(counterDelta(u16, 7, 7)).toBe(0);
    expect(counterDelta(u16, 65530, 4)).toBe(10);
    expect(counterDelta(u16, 65535, 0)).toBe(1);
    expect(counterDelta(u16, 32768, 0)).toBe(32768); // top half -> bottom half: a wrap
    // prev in the bottom half: a reset, not a wrap.
    expect(counterDelta(u16, 100, 5)).toBe(5);
    expect(counterDelta(u16, 32767, 0)).toBe(0);
    // cur in the top half: a reset too.
    expect(counterDelta(u16, 65000, 40000)).toBe(40000);
    expect(counterDelta(u32, 4294967290, 5)).toBe(11);
    expect(counterDelta(u32, 1000, 3)).toBe(3);

    // Signed counters wrap from their maximum to their minimum; a drop within the
    // non-negative half is a reset. A reset never gives a negative increase.
    expect(counterDelta(i16, 32000, 5)).toBe(5);
    expect(counterDelta(i16, 32767, -32768)).toBe(1);
    expect(counterDelta(i16, 32760, -32760)).toBe(16);
    expect(counterDelta(i16, -5, -10)).toBe(0);
    expect(counterDelta(i32, 2147483000, 5)).toBe(5);
    expect(counterDelta(i32, 2147483647, -2147483648)).toBe(1);
    // Floating-point counters never wrap.
    expect(counterDelta(f32, 1000, 2)).toBe(2);
    expect(counterDelta(f64, 65530, 4)).toBe(4);
    expect(counterDelta(f32, 1000.5, 1000.75)).toBe(0.25);
  });

  it('counterDelta with scale 0.1: the uint16 wrap span is 6553.6 engineering units', () => {
    const c = pt({ type: 'uint16', kind: 'counter', scale: 0.1 });
    expect(65536 * c.scale).toBeCloseTo(6553.6, 9);
    // raw 65530 -> 4 is still +10 raw = +1.0
    expect(counterDelta(c, 6553.0, 0.4)).toBeCloseTo(1.0, 9);
    expect(counterDelta(c, 6553.5, 0)).toBeCloseTo(0.1, 9);
    // Half the span is 3276.8: from below it, a drop is a reset.
    expect(counterDelta(c, 3276.7, 0.5)).toBeCloseTo(0.5, 9);
    expect(counterDelta(c, 3276.8, 0.5)).toBeCloseTo(6553.6 - 3276.8 + 0.5, 9);
    expect(counterDelta(c, 100.2, 100.5)).toBeCloseTo(0.3, 9);
  });

  it('counterDelta with an offset: wrap and reset measured from the offset', () => {
    const c = pt({ type: 'uint16', kind: 'counter', offset: 100 });
    // raw 65530 -> 4 is value 65630 -> 104: +10
    expect(counterDelta(c, 65630, 104)).toBe(10);
    // raw 1000 -> 3 (a reset) is value 1100 -> 103: +3 since the reset
    expect(counterDelta(c, 1100, 103)).toBe(3);
  });

  it('the aggregated increase over a scaled wrap has no binary noise', () => {
    const c = pt({ id: 'water', type: 'uint16', kind: 'counter', scale: 0.1 });
    const a = make([{ device: 'fridge-1', facility: 'canteen', point: c }]);
    a.start();
    a.onReading(reading('fridge-1', c, T0 + 1000, 6552.9));
    a.onReading(reading('fridge-1', c, T0 + 2000, 6553.5));
    a.onReading(reading('fridge-1', c, T0 + 3000, 0.3));
    advanceTo(T0 + WMS + DELAY);
    expect(pointBody(batches[0]!, 'fridge-1', 'water').increase).toBe(1);
  });
});

describe('WindowAggregator booleans', () => {
  it('trueShare and changes, also across the window boundary', () => {
    const a = make([{ device: 'fridge-1', facility: 'canteen', point: door }]);
    a.start();
    const d = (dt: number, v: boolean | null, q: Quality = 'good') => a.onReading(reading('fridge-1', door, T0 + dt, v, q));
    d(1000, false);
    d(2000, true);
    d(3000, true);
    d(3500, null, 'timeout');
    d(4000, false);
    advanceTo(T0 + WMS + DELAY);
    expect(pointBody(batches[0]!, 'fridge-1', 'door')).toMatchObject({ count: 4, bad: 1, trueShare: 0.5, changes: 2, min: 0, max: 1, last: 0, kind: 'state' });
    // The first reading of the next window is compared with the last one of this window.
    d(WMS + 1000, true);
    d(WMS + 2000, true);
    d(WMS + 3000, true);
    advanceTo(T0 + 2 * WMS + DELAY);
    expect(pointBody(batches[1]!, 'fridge-1', 'door')).toMatchObject({ count: 3, trueShare: 1, changes: 1 });
    d(2 * WMS + 1000, true);
    d(2 * WMS + 2000, false);
    d(2 * WMS + 3000, false);
    advanceTo(T0 + 3 * WMS + DELAY);
    expect(pointBody(batches[2]!, 'fridge-1', 'door')).toMatchObject({ count: 3, trueShare: 0.333333333333, changes: 1 });
  });
});

describe('WindowAggregator facility availability', () => {
  it('is the time-weighted share of devices online; never reported -> 0', () => {
    const a = make([{ device: 'fridge-1', facility: 'canteen', point: temperature }]);
    a.start();
    a.onStatus({ device: 'fridge-1', facility: 'canteen', online: true });
    a.onStatus({ device: 'fridge-2', facility: 'canteen', online: true });
    advance(30_000);
    a.onStatus({ device: 'fridge-2', facility: 'canteen', online: false, reason: 'timeout' });
    // Repeated status is not a change.
    a.onStatus({ device: 'fridge-2', facility: 'canteen', online: false });
    a.onStatus({ device: 'fridge-1', facility: 'canteen', online: true });
    // Unknown devices are ignored.
    a.onStatus({ device: 'nobody', facility: 'security', online: true });
    advanceTo(T0 + WMS + DELAY);
    const items = batches[0]!;
    expect(facilityBody(items, 'canteen')).toEqual({ type: 'facility', windowStart: T0, windowSeconds: W, facility: 'canteen', devices: 2, availability: 0.75, observedSeconds: 60 });
    expect(facilityBody(items, 'health')).toMatchObject({ devices: 1, availability: 0, observedSeconds: 60 });
    expect(bodies(items).filter((b) => b.type === 'facility').map((b) => b.facility).sort()).toEqual(['canteen', 'health']);

    // Window 2: fridge-1 online throughout, fridge-2 back for the last 15 s.
    advanceTo(T0 + WMS + 45_000);
    a.onStatus({ device: 'fridge-2', facility: 'canteen', online: true });
    advanceTo(T0 + 2 * WMS + DELAY);
    expect(facilityBody(batches[1]!, 'canteen')).toMatchObject({ windowStart: T0 + WMS, availability: 0.625, observedSeconds: 60 });

    // Window 3: both online throughout.
    advanceTo(T0 + 3 * WMS + DELAY);
    expect(facilityBody(batches[2]!, 'canteen')).toMatchObject({ availability: 1 });
    expect(facilityBody(batches[2]!, 'health')).toMatchObject({ availability: 0 });
  });

  it('a device that flaps within a window accumulates each online stretch', () => {
    const a = make([], [{ id: 'cam-1', facility: 'security' }]);
    a.start();
    const s = (online: boolean) => a.onStatus({ device: 'cam-1', facility: 'security', online });
    advanceTo(T0 + 6000);
    s(true);
    advanceTo(T0 + 12_000);
    s(false); // 6 s
    advanceTo(T0 + 30_000);
    s(true);
    advanceTo(T0 + 42_000);
    s(false); // 12 s
    advanceTo(T0 + 54_000);
    s(true); // 6 s to the end
    advanceTo(T0 + WMS + DELAY);
    expect(batches[0]!).toHaveLength(1); // no points: only the facility item
    expect(facilityBody(batches[0]!, 'security')).toMatchObject({ devices: 1, availability: 0.4 });
  });

  it('observedSeconds is the part of the window after start()', () => {
    vi.setSystemTime(T0 + 15_000);
    const a = make([{ device: 'fridge-1', facility: 'canteen', point: temperature }]);
    a.start();
    a.onStatus({ device: 'fridge-1', facility: 'canteen', online: true });
    advanceTo(T0 + 30_000);
    a.onStatus({ device: 'fridge-2', facility: 'canteen', online: true });
    advanceTo(T0 + WMS + DELAY);
    // fridge-1 45 of 45 s, fridge-2 30 of 45 s: 75 / 90
    expect(facilityBody(batches[0]!, 'canteen')).toMatchObject({ windowStart: T0, observedSeconds: 45, availability: 0.833333333333 });
    expect(facilityBody(batches[0]!, 'health')).toMatchObject({ observedSeconds: 45, availability: 0 });
    advanceTo(T0 + 2 * WMS + DELAY);
    expect(facilityBody(batches[1]!, 'canteen')).toMatchObject({ windowStart: T0 + WMS, observedSeconds: 60, availability: 1 });
  });

  // Regression: a status change in the close delay belongs to the next window, split at the boundary.
  it('a device going offline during the close delay keeps its online time in the next window', () => {
    const a = make([], [{ id: 'fridge-1', facility: 'canteen' }], { windowSeconds: W, closeDelayMs: 5000 });
    a.start();
    a.onStatus({ device: 'fridge-1', facility: 'canteen', online: true });
    advanceTo(T0 + WMS + 2000); // window 1 has ended but is not closed yet
    a.onStatus({ device: 'fridge-1', facility: 'canteen', online: false });
    advanceTo(T0 + 2 * WMS + 5000);
    expect(facilityBody(batches[0]!, 'canteen').availability).toBe(1);
    // Online from T0+60 s to T0+62 s: 2 of 60 s.
    expect(facilityBody(batches[1]!, 'canteen').availability).toBe(0.0333333333333);
  });

  // Regression: a status change in the close delay belongs to the next window, split at the boundary.
  it('a device coming online during the close delay is not booked to the old window', () => {
    const a = make([], [{ id: 'fridge-1', facility: 'canteen' }], { windowSeconds: W, closeDelayMs: 5000 });
    a.start();
    a.onStatus({ device: 'fridge-1', facility: 'canteen', online: true });
    advanceTo(T0 + 30_000);
    a.onStatus({ device: 'fridge-1', facility: 'canteen', online: false });
    advanceTo(T0 + WMS + 2000); // window 1 has ended but is not closed yet
    a.onStatus({ device: 'fridge-1', facility: 'canteen', online: true });
    advanceTo(T0 + 2 * WMS + 5000);
    expect(facilityBody(batches[0]!, 'canteen').availability).toBe(0.5);
    // Online from T0+62 s on: 58 of 60 s.
    expect(facilityBody(batches[1]!, 'canteen').availability).toBe(0.966666666667);
  });
});

describe('WindowAggregator late and early readings', () => {
  it('readings before the open window are late and ignored; readings for the next window wait for it', () => {
    const a = make([{ device: 'fridge-1', facility: 'canteen', point: temperature }]);
    a.start();
    a.onReading(reading('fridge-1', temperature, T0 + 10_000, 1));
    // In the close delay: the boundary passed but window 1 is still open.
    advanceTo(T0 + WMS + 1000);
    a.onReading(reading('fridge-1', temperature, T0 + 59_900, 2)); // taken just before the boundary: still counts
    a.onReading(reading('fridge-1', temperature, T0 + WMS + 500, 50)); // belongs to window 2
    a.onReading(reading('fridge-1', temperature, T0 + 2 * WMS + 5, 70)); // even window 3
    expect(a.late).toBe(0);
    advanceTo(T0 + WMS + DELAY);
    expect(batches).toHaveLength(1);
    expect(pointBody(batches[0]!, 'fridge-1', 'temperature')).toMatchObject({ count: 2, sum: 3, last: 2, max: 2 });

    // Window 1 is closed: anything before T0 + 60 s is late now.
    a.onReading(reading('fridge-1', temperature, T0 + 59_999, 1000));
    a.onReading(reading('fridge-1', temperature, T0 - 5000, 1000));
    a.onReading(reading('fridge-1', temperature, T0 + 59_000, null, 'timeout'));
    expect(a.late).toBe(3);
    a.onReading(reading('fridge-1', temperature, T0 + WMS + 30_000, 60));
    advanceTo(T0 + 2 * WMS + DELAY);
    expect(pointBody(batches[1]!, 'fridge-1', 'temperature')).toMatchObject({ windowStart: T0 + WMS, count: 2, bad: 0, min: 50, max: 60, sum: 110, last: 60 });
    advanceTo(T0 + 3 * WMS + DELAY);
    expect(pointBody(batches[2]!, 'fridge-1', 'temperature')).toMatchObject({ windowStart: T0 + 2 * WMS, count: 1, last: 70 });
    expect(a.late).toBe(3);
  });

  it('several windows elapsed at once (timers delayed) all close, in order', () => {
    const a = make([{ device: 'fridge-1', facility: 'canteen', point: temperature }]);
    a.start();
    a.onStatus({ device: 'fridge-1', facility: 'canteen', online: true });
    for (let w = 0; w < 4; w++) a.onReading(reading('fridge-1', temperature, T0 + w * WMS + 1000, 10 + w));
    // The event loop stalls: by the time the close timer runs, three more windows have ended.
    stall = 3 * WMS;
    advanceTo(T0 + 3 * WMS + WMS + DELAY);
    expect(batches).toHaveLength(4);
    expect(a.windowsClosed).toBe(4);
    expect(batches.map((b) => pointBody(b, 'fridge-1', 'temperature').windowStart)).toEqual([T0, T0 + WMS, T0 + 2 * WMS, T0 + 3 * WMS]);
    expect(batches.map((b) => pointBody(b, 'fridge-1', 'temperature').last)).toEqual([10, 11, 12, 13]);
    expect(batches.map((b) => b[0]!.ts)).toEqual([T0 + WMS, T0 + 2 * WMS, T0 + 3 * WMS, T0 + 4 * WMS]);
    expect(batches.map((b) => facilityBody(b, 'canteen').availability)).toEqual([0.5, 0.5, 0.5, 0.5]);
    // And the schedule carries on normally.
    advance(WMS);
    expect(batches).toHaveLength(5);
    expect(pointBody(batches[4]!, 'fridge-1', 'temperature')).toMatchObject({ windowStart: T0 + 4 * WMS, count: 0 });
  });

  it('a sink that throws loses that window only; the next ones still close', () => {
    let calls = 0;
    const got: OutboxItem[][] = [];
    const a = make([{ device: 'fridge-1', facility: 'canteen', point: temperature }], DEVICES, { windowSeconds: W, closeDelayMs: DELAY }, (items) => {
      calls++;
      if (calls === 1) throw new Error('disk on fire');
      got.push(items);
    });
    a.start();
    a.onReading(reading('fridge-1', temperature, T0 + 1000, 1));
    a.onReading(reading('fridge-1', temperature, T0 + WMS + 1000, 2));
    advanceTo(T0 + 2 * WMS + DELAY);
    expect(calls).toBe(2);
    expect(a.windowsClosed).toBe(2);
    expect(got).toHaveLength(1);
    expect(pointBody(got[0]!, 'fridge-1', 'temperature')).toMatchObject({ windowStart: T0 + WMS, last: 2, count: 1 });
  });
});

describe('WindowAggregator and clock steps (a box without RTC)', () => {
  // In these tests the fake Date.now() is the monotonic clock and `now` (Date.now() + stall) is
  // the wall clock: moving `stall` is a step of the wall clock alone.
  const mono = () => Date.now();
  const DAY = 86_400_000;
  let sent: { items: OutboxItem[]; closedUpTo: number }[] = [];
  function makeStepped(closedUpTo?: number): { a: WindowAggregator; watch: ClockWatch } {
    sent = [];
    const watch = new ClockWatch(silentLogger(), { wall: now, mono, everyMs: 1000 });
    agg = new WindowAggregator(
      { windowSeconds: W, closeDelayMs: DELAY, closedUpTo, mono, checkClock: () => void watch.check() },
      [{ device: 'fridge-1', facility: 'canteen', point: temperature }],
      DEVICES,
      (lazy, upTo) => {
        const items = [...lazy];
        sent.push({ items, closedUpTo: upTo });
        batches.push(items);
      },
      silentLogger(),
      now,
    );
    watch.onStep((s) => agg!.onClockStep(s));
    watch.start();
    return { a: agg, watch };
  }
  const starts = () => batches.map((b) => pointBody(b, 'fridge-1', 'temperature').windowStart);

  it('a forward step of two days sends the open window as observed until the step, and nothing for the gap', () => {
    const { a, watch } = makeStepped();
    a.start();
    a.onStatus({ device: 'fridge-1', facility: 'canteen', online: true });
    a.onReading(reading('fridge-1', temperature, now() + 1000, 5));
    advance(30_000); // 30 s into the first window
    stall = 2 * DAY; // NTP: the clock was two days behind
    a.onReading(reading('fridge-1', temperature, now(), 6)); // stamped after the step
    watch.check();
    expect(batches).toHaveLength(1);
    expect(pointBody(batches[0]!, 'fridge-1', 'temperature')).toMatchObject({ windowStart: T0, count: 1, last: 5 });
    expect(facilityBody(batches[0]!, 'canteen')).toMatchObject({ windowStart: T0, observedSeconds: 30, availability: 0.5 }) // fridge-2 never online;
    expect(a.windowsSkipped).toBe(2 * DAY / WMS - 1);
    // The next window is the one the corrected clock is in, with the reading taken after the step.
    advanceTo(T0 + 2 * DAY + WMS + DELAY);
    expect(batches).toHaveLength(2);
    expect(pointBody(batches[1]!, 'fridge-1', 'temperature')).toMatchObject({ windowStart: T0 + 2 * DAY, count: 1, last: 6 });
    // Observed from the step (30 s into its window), not from the window's start.
    expect(facilityBody(batches[1]!, 'canteen')).toMatchObject({ observedSeconds: 30, availability: 0.5 });
    for (const b of batches.flatMap(bodies)) expect(b.windowStart < T0 + WMS || b.windowStart >= T0 + 2 * DAY).toBe(true);
    expect(a.stalled(mono())).toBeNull();
  });

  it('a step found only when the close timer fires is handled before the window closes (no flood)', () => {
    const { a } = makeStepped();
    a.start();
    a.onReading(reading('fridge-1', temperature, now() + 1000, 5));
    advance(20_000);
    stall = 2 * DAY; // no ClockWatch tick yet: the close timer is the first to look
    advanceTo(T0 + 2 * DAY + WMS + DELAY);
    expect(batches.length).toBeLessThanOrEqual(2);
    expect(a.windowsClosed).toBeLessThanOrEqual(2);
    expect(pointBody(batches[0]!, 'fridge-1', 'temperature')).toMatchObject({ windowStart: T0, count: 1 });
  });

  it('a backward step keeps the open window open until the clock is back in it: nothing is sent twice, late readings are counted', () => {
    const { a, watch } = makeStepped();
    a.start();
    a.onReading(reading('fridge-1', temperature, now() + 1000, 1));
    advanceTo(T0 + 2 * WMS + DELAY); // windows T0 and T0+W sent
    expect(sent.at(-1)!.closedUpTo).toBe(T0 + 2 * WMS);
    a.onReading(reading('fridge-1', temperature, now(), 2)); // in window T0+2W, still open
    advance(10_000);
    stall = -2 * WMS; // stepped back two minutes: the wall clock reads T0+12 s
    watch.check();
    expect(starts()).toEqual([T0, T0 + WMS]);
    // Readings stamped in time already sent are not aggregated, and counted.
    const late0 = a.late;
    a.onReading(reading('fridge-1', temperature, now(), 3));
    expect(a.late).toBe(late0 + 1);
    // The timer re-arms at most a minute ahead, so the watchdog never sees a stall.
    advance(60_000);
    expect(a.stalled(mono())).toBeNull();
    expect(starts()).toEqual([T0, T0 + WMS]);
    // Back in the open window, readings count again; it closes once, with both readings.
    advanceTo(T0 + 2 * WMS + 30_000);
    a.onReading(reading('fridge-1', temperature, now(), 4));
    advanceTo(T0 + 4 * WMS + DELAY);
    expect(starts()).toEqual([T0, T0 + WMS, T0 + 2 * WMS, T0 + 3 * WMS]);
    expect(pointBody(batches[2]!, 'fridge-1', 'temperature')).toMatchObject({ count: 2, last: 4 });
    expect(new Set(starts()).size).toBe(starts().length);
  });

  it('started with the clock behind windows already sent (step back, then restart), it resumes after them', () => {
    stall = -2 * WMS;
    const { a } = makeStepped(T0 + WMS); // the previous run sent up to T0+W; the clock reads T0-2W
    a.start();
    a.onReading(reading('fridge-1', temperature, now() + 1000, 9));
    expect(a.late).toBe(1);
    advanceTo(T0 + 2 * WMS + DELAY);
    expect(starts()).toEqual([T0 + WMS]);
    // Observed from where it resumed: the whole window.
    expect(facilityBody(batches[0]!, 'canteen').observedSeconds).toBe(60);
  });

  it('the watchdog sees a close timer that does not fire, on the monotonic clock', () => {
    const { a } = makeStepped();
    a.start();
    expect(a.stalled(mono())).toBeNull();
    expect(a.stalled(mono() + WMS + DELAY + 31_000)).toMatch(/^aggregation: the window timer is \d+ s late$/);
    // A wall-clock step alone is not a stall.
    stall = 3600_000;
    expect(a.stalled(mono())).toBeNull();
  });
});

describe('window aggregator memory', () => {
  it('a reading leaves nothing behind in the old generation: its accumulator updates in place (issue 14)', () => {
    // 1,000 points, each read once per round, as a 1 s poll: every accumulator lives through
    // several scavenges between two readings of its point.
    const n = 1000;
    const kinds = [temperature, meals, door];
    const devices = Array.from({ length: n / 10 }, (_, i) => ({ id: `d${i}`, facility: 'canteen' as const }));
    const points = Array.from({ length: n }, (_, i) => ({ device: `d${Math.floor(i / 10)}`, facility: 'canteen' as const, point: { ...kinds[i % 3]!, id: `p${i}` } }));
    const a = make(points, devices);
    a.start();
    const perRound = promotedPerRound((r) => {
      for (let i = 0; i < n; i++) {
        const p = points[i]!.point;
        const v = p.kind === 'state' ? (i + r) % 2 === 0 : p.kind === 'counter' ? 1000 + r * 3 + i : 4.5 + ((i * 7 + r) % 13) / 10;
        a.onReading(reading(points[i]!.device, p, T0 + 1000 + r * 100, v));
      }
    });
    expect(a.late).toBe(0);
    // About 5 B a reading before (a new heap number at each `last` that is not a small
    // integer); the Acc fields now hold numbers only and are updated in place.
    expect(perRound / n).toBeLessThan(2);
  });

  it('a close hands its 10,000 items to the outbox one at a time: they never exist at once (issue 14)', () => {
    const n = 10_000;
    const devices = Array.from({ length: n / 100 }, (_, i) => ({ id: `d${i}`, facility: 'canteen' as const }));
    const points = Array.from({ length: n }, (_, i) => ({ device: `d${Math.floor(i / 100)}`, facility: 'canteen' as const, point: { ...temperature, id: `p${i}` } }));
    const db = openDatabase(path.join(tmpDir(), 'gateway.db'));
    const outbox = new Outbox(db, { maxRows: 1_000_000, maxBytes: 1_000_000_000 }, silentLogger());
    outbox.start();
    // Heap held at the first item and half-way through, above what was held before the close.
    const held: number[] = [];
    let base = 0;
    function* watched(items: Iterable<OutboxItem>): Generator<OutboxItem> {
      let i = 0;
      for (const it of items) {
        if (i === 0 || i === n / 2) held.push(liveHeap() - base);
        i++;
        yield it;
      }
    }
    agg = new WindowAggregator({ windowSeconds: W, closeDelayMs: DELAY }, points, devices, (items, end) => void outbox.append({ [Symbol.iterator]: () => watched(items) }, { marks: { 'agg.closedUpTo': end } }), silentLogger(), now);
    agg.start();
    for (let i = 0; i < n; i++) agg.onReading(reading(points[i]!.device, points[i]!.point, T0 + 1000, 4.5 + (i % 13) / 10));
    advanceTo(T0 + WMS + DELAY - 1);
    base = liveHeap();
    advance(1);
    try {
      expect(agg.windowsClosed).toBe(1);
      expect(outbox.stats().rows).toBe(n + 1);
      expect(outbox.mark('agg.closedUpTo')).toBe(T0 + WMS);
      expect(held).toHaveLength(2);
      // Each item is ~250 B of JSON: all 10,000 at once were ~3 MB. One at a time, what is
      // held is the seqs the append returns (8 B each) and the iteration's own state: 0.1 –
      // 0.5 MB measured (the heap also holds whatever the last GC left, so the bound is a
      // third of the old figure, not a tight one; a CI run saw 472 KB).
      expect(Math.max(...held)).toBeLessThan(1_000_000);
    } finally {
      db.close();
    }
  });

  it('a window reuses the accumulators of the one before: a minute of readings makes no new ones to promote (issue 14)', () => {
    const n = 1000;
    const devices = Array.from({ length: n / 10 }, (_, i) => ({ id: `d${i}`, facility: 'canteen' as const }));
    const points = Array.from({ length: n }, (_, i) => ({ device: `d${Math.floor(i / 10)}`, facility: 'canteen' as const, point: { ...temperature, id: `p${i}` } }));
    let sent = 0;
    agg = new WindowAggregator({ windowSeconds: W, closeDelayMs: DELAY }, points, devices, (items) => {
      for (const _ of items) sent++;
    }, silentLogger(), now);
    agg.start();
    const a = agg;
    // Each round: the previous window closes, then a reading per point opens the next one; its
    // accumulators then live through two scavenges, as through a minute of polling.
    const perRound = promotedPerRound((r) => {
      advanceTo(T0 + r * WMS + DELAY);
      for (let i = 0; i < n; i++) a.onReading(reading(points[i]!.device, points[i]!.point, T0 + r * WMS + DELAY + 1, 4.5 + ((i + r) % 13) / 10));
    }, 10, 5, 3);
    expect(a.windowsClosed).toBe(34); // 35 rounds: 5 warm, 3 batches of 10
    expect(sent).toBe(34 * (n + 1));
    // New accumulators and their map were ~200 B a point every window.
    expect(perRound / n).toBeLessThan(20);
  });
});

describe('WindowAggregator facilities', () => {
  it('sends one availability item per facility id (two canteens: two items), with its house code; point items carry the facility id', () => {
    vi.setSystemTime(T0 + 1000);
    const devices = [
      { id: 'fridge-1', facility: 'canteen', facilityId: 'canteen-north', houseCode: 'H-1' },
      { id: 'fridge-2', facility: 'canteen', facilityId: 'canteen-south' },
      { id: 'kiosk-1', facility: 'health', facilityId: 'health' },
    ];
    const a = make([{ device: 'fridge-1', facility: 'canteen', facilityId: 'canteen-north', houseCode: 'H-1', point: temperature }, { device: 'fridge-2', facility: 'canteen', facilityId: 'canteen-south', point: temperature }], devices);
    a.start();
    a.onStatus({ device: 'fridge-1', facility: 'canteen', online: true });
    a.onReading(reading('fridge-1', temperature, T0 + 2000, 4.5));
    advanceTo(T0 + WMS + DELAY);
    const items = bodies(batches[0]!);
    const fac = items.filter((b) => b.type === 'facility');
    expect(fac.map((b) => [b.facility, b.facilityId, b.houseCode, b.devices])).toEqual([
      ['canteen', 'canteen-north', 'H-1', 1],
      ['canteen', 'canteen-south', undefined, 1],
      ['health', 'health', undefined, 1],
    ]);
    expect(fac.find((b) => b.facilityId === 'canteen-north')!.availability).toBeGreaterThan(0.9);
    expect(fac.find((b) => b.facilityId === 'canteen-south')!.availability).toBe(0);
    // Point items: the facility id where it is not the type id, no house code (bytes per reading).
    expect(pointBody(batches[0]!, 'fridge-1', 'temperature')).toMatchObject({ facility: 'canteen', facilityId: 'canteen-north' });
    expect(pointBody(batches[0]!, 'fridge-1', 'temperature')).not.toHaveProperty('houseCode');
    expect(pointBody(batches[0]!, 'fridge-2', 'temperature')).toMatchObject({ facilityId: 'canteen-south' });
    // A reload that moves fridge-2 to the north canteen: one canteen item from then on.
    a.reconfigure([{ device: 'fridge-2', facility: 'canteen', facilityId: 'canteen-north', houseCode: 'H-1', point: temperature }], [{ ...devices[0]!, houseCode: 'H-2' }, { id: 'fridge-2', facility: 'canteen', facilityId: 'canteen-north', houseCode: 'H-2' }]);
    advanceTo(T0 + 2 * WMS + DELAY);
    const next = bodies(batches[1]!).filter((b) => b.type === 'facility');
    expect(next.map((b) => [b.facilityId, b.houseCode, b.devices])).toEqual([['canteen-north', 'H-2', 2]]);
  });
});
