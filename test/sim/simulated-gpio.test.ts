// SimulatedGpio under fake timers: hours of door, button and pulse activity run in milliseconds,
// and every duration can be checked against the behaviour's bounds.
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GpioInput } from '../../src/io/gpio/gpio-input.js';
import type { GpioLine, Level } from '../../src/io/gpio/line.js';
import { BUTTON_QUIET_MS, MAX_PULSES_PER_MINUTE, PULSE_MS, SimulatedGpio, type GpioBehaviour } from '../../src/sim/simulated-gpio.js';

const T0 = 1_700_000_000_000;
const S = 1000;
const MIN = 60 * S;
const H = 60 * MIN;

const opened: GpioLine[] = [];

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  for (const l of opened.splice(0)) l.close();
  vi.useRealTimers();
});

/** Opens `line` on a backend with that behaviour and records every edge with its time. */
function watched(seed: number, behaviour: GpioBehaviour | undefined, line = 17) {
  const gpio = new SimulatedGpio(seed, { now: () => Date.now(), lines: behaviour ? { [line]: behaviour } : {} });
  const l = gpio.open(line, { activeLow: false, edges: true });
  opened.push(l);
  const edges: { ts: number; level: Level }[] = [];
  l.watch((level) => edges.push({ ts: Date.now(), level }));
  return { gpio, line: l, edges };
}

/** Durations of the active and inactive spans between consecutive edges (the line starts inactive at T0). */
function spans(edges: { ts: number; level: Level }[]) {
  const active: number[] = [];
  const quiet: number[] = [];
  let prev = { ts: T0, level: 0 as Level };
  for (const e of edges) {
    (prev.level === 1 ? active : quiet).push(e.ts - prev.ts);
    prev = e;
  }
  return { active, quiet };
}

const alternates = (edges: { level: Level }[]) => edges.every((e, i) => e.level === (i % 2 === 0 ? 1 : 0));

describe('SimulatedGpio backend', () => {
  it('is always available, named "simulated", and resolves a line to itself', () => {
    const g = new SimulatedGpio(1);
    expect(g.name).toBe('simulated');
    expect(g.unavailable()).toBeNull();
    expect(g.resolve(17, undefined)).toBe(17);
    expect(g.resolve(529, 'gpiochip0')).toBe(529);
  });

  it('refuses a line that is already open, and opens it again once closed', () => {
    const g = new SimulatedGpio(1);
    const a = g.open(5, { activeLow: false, edges: true });
    expect(() => g.open(5, { activeLow: true, edges: true })).toThrow('simulated GPIO line 5 is already open');
    a.close();
    const b = g.open(5, { activeLow: false, edges: true });
    expect(b.number).toBe(5);
    b.close();
  });

  it('refuses a pulse rate it cannot draw', () => {
    expect(() => new SimulatedGpio(1, { lines: { 3: { kind: 'pulses', perMinute: 0 } } })).toThrow(RangeError);
    expect(() => new SimulatedGpio(1, { lines: { 3: { kind: 'pulses', perMinute: MAX_PULSES_PER_MINUTE + 1 } } })).toThrow(/line 3: perMinute must be above 0 and at most 300/);
    expect(() => new SimulatedGpio(1, { lines: new Map([[3, { kind: 'pulses', perMinute: Number.NaN }]]) })).toThrow(RangeError);
    expect(() => new SimulatedGpio(1, { lines: { 3: { kind: 'pulses', perMinute: MAX_PULSES_PER_MINUTE } } })).not.toThrow();
  });
});

describe('door (the default)', () => {
  it('is closed at open, then opens for 5..30 s every 2..10 min; edges and read() agree', () => {
    const { line, edges, gpio } = watched(42, undefined);
    expect(line.read()).toBe(0);
    const seen: Level[] = [];
    for (let t = 0; t < 6 * H; t += S) {
      vi.advanceTimersByTime(S);
      seen.push(line.read());
    }
    // 6 h at one opening per ~6.5 min: about 55; the bounds say 36 (every 10 min) .. 180 (every 2 min).
    const { active, quiet } = spans(edges);
    expect(active.length).toBeGreaterThanOrEqual(30);
    expect(active.length).toBeLessThanOrEqual(180);
    expect(alternates(edges)).toBe(true);
    for (const d of active) {
      expect(d).toBeGreaterThanOrEqual(5 * S);
      expect(d).toBeLessThanOrEqual(30 * S);
    }
    for (const d of quiet) {
      expect(d).toBeGreaterThanOrEqual(2 * MIN);
      expect(d).toBeLessThanOrEqual(10 * MIN);
    }
    // Mostly closed: open time is a small share of the whole.
    const openShare = seen.filter((l) => l === 1).length / seen.length;
    expect(openShare).toBeGreaterThan(0.01);
    expect(openShare).toBeLessThan(0.2);
    // read() follows the last edge, and history() holds the same changes.
    expect(line.read()).toBe(edges.at(-1)!.level);
    expect(gpio.history(17)).toEqual(edges);
  });

  it('a line not in the map is a door; a mapped line keeps its own behaviour', () => {
    const gpio = new SimulatedGpio(7, { lines: { 4: { kind: 'pulses', perMinute: 60 } } });
    const door = gpio.open(9, { activeLow: true, edges: true });
    const pulses = gpio.open(4, { activeLow: false, edges: true });
    opened.push(door, pulses);
    let doorEdges = 0;
    let pulseEdges = 0;
    door.watch(() => doorEdges++);
    pulses.watch(() => pulseEdges++);
    vi.advanceTimersByTime(90 * S);
    // A door never changes within 2 min of opening; pulses at 60/min have come and gone many times.
    expect(doorEdges).toBe(0);
    expect(pulseEdges).toBeGreaterThan(100);
  });
});

describe('button (emergency call)', () => {
  it('stays quiet for the first 10 minutes, whatever the seed', () => {
    for (let seed = 0; seed < 200; seed++) {
      const { line, edges } = watched(seed, { kind: 'button' });
      vi.advanceTimersByTime(BUTTON_QUIET_MS - 1);
      expect(edges, `seed ${seed}`).toEqual([]);
      expect(line.read()).toBe(0);
      line.close();
    }
  });

  it('is pressed for 2..5 s, about once an hour', () => {
    const { edges } = watched(3, { kind: 'button' });
    vi.advanceTimersByTime(48 * H);
    const { active, quiet } = spans(edges);
    expect(alternates(edges)).toBe(true);
    // 48 presses expected; a Poisson count that far off would be a bug, not bad luck.
    expect(active.length).toBeGreaterThanOrEqual(25);
    expect(active.length).toBeLessThanOrEqual(75);
    for (const d of active) {
      expect(d).toBeGreaterThanOrEqual(2 * S);
      expect(d).toBeLessThanOrEqual(5 * S);
    }
    expect(quiet[0]).toBeGreaterThanOrEqual(BUTTON_QUIET_MS);
    for (const d of quiet) expect(d).toBeGreaterThanOrEqual(MIN);
  });
});

describe('pulses', () => {
  it('gives 100 ms active pulses at about perMinute per minute', () => {
    const { edges } = watched(11, { kind: 'pulses', perMinute: 30 });
    vi.advanceTimersByTime(10 * MIN);
    const { active, quiet } = spans(edges);
    expect(alternates(edges)).toBe(true);
    // 300 expected in 10 min; the period jitters +-50 %, so the count stays close.
    expect(active.length).toBeGreaterThanOrEqual(270);
    expect(active.length).toBeLessThanOrEqual(330);
    for (const d of active) expect(d).toBe(PULSE_MS);
    for (const d of quiet) expect(d).toBeGreaterThanOrEqual(PULSE_MS);
  });

  it('a GpioInput counter on the simulated line counts every pulse (interrupt mode)', () => {
    const gpio = new SimulatedGpio(5, { now: () => Date.now(), lines: { 22: { kind: 'pulses', perMinute: 120 } } });
    const totals = new Map<string, number>();
    const sunk: (number | boolean)[] = [];
    const input = new GpioInput(
      { id: 'meter-pulses', line: 22, activeLow: false, debounceMs: 0, pollMs: 20, reportMs: 0, kind: 'counter' },
      gpio,
      { load: (id) => totals.get(id), save: (id, v) => void totals.set(id, v) },
      (v) => void sunk.push(v),
      pino({ level: 'silent' }),
    );
    input.start();
    expect(input.stats.mode).toBe('interrupt');
    // 3 min: ~360 pulses, 720 changes, inside what history() keeps (1000).
    vi.advanceTimersByTime(3 * MIN);
    const rising = gpio.history(22).filter((c) => c.level === 1).length;
    expect(rising).toBeGreaterThan(300);
    expect(rising).toBeLessThan(420);
    expect(input.stats.count).toBe(rising);
    expect(totals.get('meter-pulses')).toBe(rising);
    input.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('seeding and lifetime', () => {
  const run = (seed: number, behaviour: GpioBehaviour, ms: number) => {
    const { edges, line } = watched(seed, behaviour);
    vi.advanceTimersByTime(ms);
    line.close();
    return edges.map((e) => [e.ts - T0, e.level]);
  };

  it('the same seed gives the same sequence; another seed another one', () => {
    for (const b of [{ kind: 'door' }, { kind: 'button' }, { kind: 'pulses', perMinute: 20 }] as GpioBehaviour[]) {
      vi.setSystemTime(T0);
      const a = run(99, b, 12 * H);
      vi.setSystemTime(T0);
      const again = run(99, b, 12 * H);
      vi.setSystemTime(T0);
      const other = run(100, b, 12 * H);
      expect(a.length, b.kind).toBeGreaterThan(4);
      expect(again, b.kind).toEqual(a);
      expect(other, b.kind).not.toEqual(a);
    }
  });

  it("a line's sequence does not depend on other lines opened before it", () => {
    const alone = new SimulatedGpio(8).open(3, { activeLow: false, edges: true });
    const a: number[] = [];
    alone.watch(() => a.push(Date.now()));
    vi.advanceTimersByTime(3 * H);
    alone.close();

    vi.setSystemTime(T0);
    const g = new SimulatedGpio(8);
    const first = g.open(1, { activeLow: false, edges: true });
    const later = g.open(3, { activeLow: false, edges: true });
    const b: number[] = [];
    later.watch(() => b.push(Date.now()));
    vi.advanceTimersByTime(3 * H);
    first.close();
    later.close();
    expect(a.length).toBeGreaterThan(10);
    expect(b).toEqual(a);
  });

  it('close() stops the timers and the callbacks; read() and watch() refuse afterwards', () => {
    const { line, edges } = watched(1, { kind: 'pulses', perMinute: 60 });
    vi.advanceTimersByTime(10 * S);
    const n = edges.length;
    expect(n).toBeGreaterThan(10);
    expect(vi.getTimerCount()).toBe(1);
    line.close();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10 * MIN);
    expect(edges).toHaveLength(n);
    expect(() => line.read()).toThrow('simulated GPIO line 17 is closed');
    expect(() => line.watch(() => {})).toThrow('closed');
    line.close(); // twice is harmless
  });

  it('a line opened without edges refuses watch() but still changes for read() (polling)', () => {
    const g = new SimulatedGpio(2, { lines: { 6: { kind: 'pulses', perMinute: 30 } } });
    const l = g.open(6, { activeLow: false, edges: false });
    opened.push(l);
    expect(() => l.watch(() => {})).toThrow('simulated GPIO line 6 was opened without edges');
    const levels = new Set<Level>();
    for (let t = 0; t < MIN; t += 20) {
      vi.advanceTimersByTime(20);
      levels.add(l.read());
    }
    expect([...levels].sort()).toEqual([0, 1]);
  });

  it('its timers do not hold the process open (unref)', () => {
    vi.useRealTimers();
    const spy = vi.spyOn(globalThis, 'setTimeout');
    try {
      const g = new SimulatedGpio(4, { lines: { 2: { kind: 'pulses', perMinute: 60 } } });
      const l = g.open(2, { activeLow: false, edges: true });
      opened.push(l);
      const timers = spy.mock.results.map((r) => r.value as NodeJS.Timeout);
      expect(timers).toHaveLength(1);
      expect(timers[0]!.hasRef()).toBe(false);
    } finally {
      spy.mockRestore();
    }
  });
});
