import { afterEach, describe, expect, it, vi } from 'vitest';
import { PollClock } from '../../../src/io/modbus/poll-clock.js';

afterEach(() => vi.useRealTimers());

describe('PollClock', () => {
  it('ticks every member at fixed times, skips ticks a stall overran, and holds no timer without members', () => {
    vi.useFakeTimers({ now: 0 });
    let skew = 0;
    const mono = () => Date.now() + skew;
    const clock = new PollClock(100, mono);
    const seen: [string, number][] = [];
    const a = () => void seen.push(['a', mono()]);
    const b = () => {
      seen.push(['b', mono()]);
      // A slow member: the event loop is busy for 250 ms at t = 300.
      if (mono() === 300) skew += 250;
    };
    clock.join(a);
    vi.advanceTimersByTime(150);
    clock.join(b); // joins the grid: next tick at 200, not at 250
    vi.advanceTimersByTime(150);
    // 400 and 500 were overrun: the next tick is 600, still on the grid.
    vi.advanceTimersByTime(50);
    expect(seen).toEqual([['a', 100], ['a', 200], ['b', 200], ['a', 300], ['b', 300], ['a', 600], ['b', 600]]);
    clock.leave(a);
    clock.leave(b);
    expect(vi.getTimerCount()).toBe(0);
    clock.join(a);
    expect(vi.getTimerCount()).toBe(1);
  });
});
