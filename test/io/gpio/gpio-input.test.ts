// GpioInput against an in-memory backend: edges are injected through the watch callback, which
// is the only way to exercise the interrupt path without hardware.
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GpioInput, type CounterStore, type GpioInputConfig } from '../../../src/io/gpio/gpio-input.js';
import { FakeBackend } from '../../helpers/fake-gpio.js';

function memoryStore(): CounterStore & { saves: [string, number][] } {
  const values = new Map<string, number>();
  const saves: [string, number][] = [];
  return {
    saves,
    load: (id) => values.get(id),
    save: (id, v) => {
      values.set(id, v);
      saves.push([id, v]);
    },
  };
}

function capture() {
  const out: string[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void out.push(s) });
  return { log, lines: () => out.map((l) => JSON.parse(l) as { level: number; msg: string }) };
}

const cfg = (over: Partial<GpioInputConfig> = {}): GpioInputConfig => ({
  id: 'door-1',
  line: 17,
  activeLow: false,
  debounceMs: 0,
  pollMs: 20,
  reportMs: 0,
  kind: 'contact',
  ...over,
});

const T0 = 1_700_000_000_000;
let backend: FakeBackend;
let store: ReturnType<typeof memoryStore>;
let got: [boolean | number, number][];
let logs: ReturnType<typeof capture>;
const inputs: GpioInput[] = [];

function make(over: Partial<GpioInputConfig> = {}, sink = (v: boolean | number, ts: number) => void got.push([v, ts])): GpioInput {
  const i = new GpioInput(cfg(over), backend, store, sink, logs.log, () => Date.now());
  inputs.push(i);
  return i;
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
  backend = new FakeBackend();
  store = memoryStore();
  got = [];
  logs = capture();
});
afterEach(() => {
  for (const i of inputs.splice(0)) i.stop();
  vi.useRealTimers();
});

describe('GpioInput', () => {
  it('does no I/O in the constructor and emits the initial state at start', () => {
    backend.initial = 1;
    const i = make();
    expect(backend.lines).toHaveLength(0);
    expect(i.stats.mode).toBe('stopped');
    i.start();
    expect(got).toEqual([[true, T0]]);
    expect(i.stats).toMatchObject({ number: 529, level: 1, count: null, lastError: '' });
    expect(backend.line.opts).toEqual({ activeLow: false, edges: true });
  });

  it('uses edge interrupts when watch works: changes arrive by callback, not by polling', () => {
    const i = make();
    i.start();
    expect(i.stats.mode).toBe('interrupt');
    const readsAfterStart = backend.line.reads;
    backend.line.level = 1; // changed without an edge: nobody looks
    vi.advanceTimersByTime(1000);
    expect(backend.line.reads).toBe(readsAfterStart);
    expect(got).toEqual([[false, T0]]);
    vi.advanceTimersByTime(5);
    backend.line.set(0);
    backend.line.set(1); // edge; debounce 0 accepts at once
    expect(got).toEqual([[false, T0], [true, T0 + 1005]]);
    expect(i.stats).toMatchObject({ level: 1, edges: 2, lastChange: T0 + 1005 });
  });

  it('falls back to polling when watch throws, and says so once', () => {
    backend.watchError = 'epoll on /sys/class/gpio/gpio529/value failed: Operation not permitted';
    const i = make({ pollMs: 20 });
    i.start();
    expect(i.stats.mode).toBe('polling');
    backend.line.set(1);
    vi.advanceTimersByTime(19);
    expect(got).toEqual([[false, T0]]);
    vi.advanceTimersByTime(1);
    expect(got).toEqual([[false, T0], [true, T0 + 20]]);
    vi.advanceTimersByTime(200);
    expect(got).toHaveLength(2);
    const warn = logs.lines().filter((l) => l.level >= 40);
    expect(warn.map((l) => l.msg)).toEqual([
      'gpio door-1: edge interrupts unavailable (epoll on /sys/class/gpio/gpio529/value failed: Operation not permitted), polling every 20 ms',
    ]);
  });

  it('debounces edges: a pulse shorter than debounceMs emits nothing, a longer one emits once', () => {
    const i = make({ debounceMs: 50 });
    i.start();
    backend.line.set(1);
    vi.advanceTimersByTime(30);
    backend.line.set(0); // back before 50 ms: a glitch
    vi.advanceTimersByTime(500);
    expect(got).toEqual([[false, T0]]);
    backend.line.set(1);
    vi.advanceTimersByTime(10);
    backend.line.set(0); // bounce
    backend.line.set(1);
    vi.advanceTimersByTime(49);
    expect(got).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(got).toEqual([[false, T0], [true, T0 + 590]]);
    vi.advanceTimersByTime(1000);
    expect(got).toHaveLength(2);
    expect(i.stats.edges).toBe(5);
  });

  it('debounces while polling: the level must be read unchanged for debounceMs', () => {
    backend.watchError = 'no edges';
    make({ debounceMs: 50, pollMs: 10 }).start();
    backend.line.set(1);
    vi.advanceTimersByTime(30);
    backend.line.set(0);
    vi.advanceTimersByTime(500);
    expect(got).toEqual([[false, T0]]);
    backend.line.set(1); // first seen by the poll at T0+540
    vi.advanceTimersByTime(59);
    expect(got).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(got).toEqual([[false, T0], [true, T0 + 590]]);
  });

  it('debounces on the monotonic clock: a wall-clock step back neither holds a level back nor restamps it', () => {
    backend.watchError = 'no edges';
    let step = 0;
    let mono = 0;
    const i = new GpioInput(cfg({ debounceMs: 50, pollMs: 10 }), backend, store, (v, ts) => void got.push([v, ts]), logs.log, () => Date.now() + step, () => mono);
    inputs.push(i);
    i.start();
    backend.line.set(1);
    vi.advanceTimersByTime(10); // first seen by the poll at T0+10
    step = -3_600_000; // NTP sets the clock back an hour while the level settles
    mono = 60;
    vi.advanceTimersByTime(10);
    // Accepted once unchanged for 50 ms of monotonic time, stamped with the wall clock's (stepped) time.
    expect(got).toEqual([[false, T0], [true, T0 + 20 - 3_600_000]]);
  });

  it('counts only 0->1, persists every increment, and a restart continues from the stored count', () => {
    const i = make({ id: 'meter-1', kind: 'counter', debounceMs: 5 });
    i.start();
    expect(got).toEqual([[0, T0]]);
    for (let n = 0; n < 3; n++) {
      backend.line.set(1);
      vi.advanceTimersByTime(10);
      backend.line.set(0);
      vi.advanceTimersByTime(10);
    }
    expect(got.map(([v]) => v)).toEqual([0, 1, 2, 3]);
    expect(store.saves).toEqual([['meter-1', 1], ['meter-1', 2], ['meter-1', 3]]);
    expect(i.stats.count).toBe(3);
    i.stop();

    // Restart with the line already active: that is not a new pulse.
    backend.initial = 1;
    got = [];
    const again = make({ id: 'meter-1', kind: 'counter', debounceMs: 5 });
    again.start();
    expect(got).toEqual([[3, T0 + 60]]);
    backend.line.set(0);
    vi.advanceTimersByTime(10);
    backend.line.set(1);
    vi.advanceTimersByTime(10);
    expect(got.map(([v]) => v)).toEqual([3, 4]);
    expect(store.saves.at(-1)).toEqual(['meter-1', 4]);
  });

  it('alarm kind emits booleans and passes activeLow to the backend', () => {
    make({ id: 'smoke-2', kind: 'alarm', activeLow: true }).start();
    expect(backend.line.opts.activeLow).toBe(true);
    backend.line.set(1);
    backend.line.set(0);
    expect(got.map(([v]) => v)).toEqual([false, true, false]);
    expect(store.saves).toEqual([]);
  });

  it('backend unavailable: start does not throw, mode unavailable, reason in lastError and the log', () => {
    backend.reason = '/sys/class/gpio is absent: this kernel has no sysfs GPIO';
    const i = make();
    expect(() => i.start()).not.toThrow();
    expect(i.stats.mode).toBe('unavailable');
    expect(i.stats.lastError).toBe('fake GPIO unavailable: /sys/class/gpio is absent: this kernel has no sysfs GPIO');
    expect(got).toEqual([]);
    expect(backend.lines).toHaveLength(0);
    const warn = logs.lines().filter((l) => l.level === 40);
    expect(warn).toHaveLength(1);
    expect(warn[0]!.msg).toBe('gpio door-1: input disabled: fake GPIO unavailable: /sys/class/gpio is absent: this kernel has no sysfs GPIO');
  });

  it('resolve and open failures also leave the input unavailable without throwing', () => {
    const a = make({ chip: 'pinctrl-nope' });
    a.start();
    expect(a.stats).toMatchObject({ mode: 'unavailable', number: null, lastError: 'gpio line 17: no GPIO chip labelled "pinctrl-nope"' });
    backend.openError = 'EACCES: permission denied, open /sys/class/gpio/export';
    const b = make({ id: 'door-2' });
    b.start();
    expect(b.stats).toMatchObject({ mode: 'unavailable', number: 529, lastError: 'EACCES: permission denied, open /sys/class/gpio/export' });
    expect(got).toEqual([]);
  });

  it('re-emits the current value every reportMs', () => {
    backend.initial = 1;
    make({ reportMs: 1000 }).start();
    vi.advanceTimersByTime(3000);
    expect(got).toEqual([[true, T0], [true, T0 + 1000], [true, T0 + 2000], [true, T0 + 3000]]);
  });

  it('stop closes the line, clears timers and is safe twice or without start', () => {
    expect(() => make().stop()).not.toThrow();
    backend.watchError = 'no edges';
    const i = make({ reportMs: 100, debounceMs: 0 });
    i.start();
    i.stop();
    i.stop();
    expect(i.stats.mode).toBe('stopped');
    expect(backend.line.closed).toBe(true);
    backend.line.set(1);
    vi.advanceTimersByTime(1000);
    expect(got).toEqual([[false, T0]]);
  });
});
