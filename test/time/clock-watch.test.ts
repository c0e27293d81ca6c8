// Step detection: the wall clock against the monotonic clock, both injected.
import { describe, expect, it } from 'vitest';
import { ClockWatch, type ClockStep } from '../../src/time/clock-watch.js';
import { silentLogger } from '../../src/log.js';

function rig() {
  let wall = 1_700_000_000_000;
  let mono = 5_000;
  const steps: ClockStep[] = [];
  const w = new ClockWatch(silentLogger(), { wall: () => wall, mono: () => mono });
  w.onStep((s) => steps.push(s));
  w.start();
  w.stop(); // driven by hand through check()
  return {
    w,
    steps,
    run(ms: number) {
      wall += ms;
      mono += ms;
    },
    step(ms: number) {
      wall += ms;
    },
    get wall() {
      return wall;
    },
  };
}

describe('ClockWatch', () => {
  it('reports a forward and a backward step with their size and the time before and after', () => {
    const r = rig();
    r.run(1000);
    expect(r.w.check()).toBeNull();
    r.run(500);
    r.step(2 * 86_400_000);
    const s = r.w.check()!;
    expect(s.deltaMs).toBe(2 * 86_400_000);
    expect(s.after).toBe(r.wall);
    expect(s.before).toBe(r.wall - 2 * 86_400_000);
    r.run(1000);
    r.step(-120_000);
    expect(r.w.check()!.deltaMs).toBe(-120_000);
    expect(r.steps).toHaveLength(2);
    expect(r.w.steps).toBe(2);
    expect(r.w.lastStep).toEqual({ ts: r.wall, seconds: -120 });
  });

  it('does not take slews (many small corrections) or plain running for a step', () => {
    const r = rig();
    for (let i = 0; i < 100; i++) {
      r.run(1000);
      r.step(50); // 50 ms per check: 5 s in all, never 1 s at once
      expect(r.w.check()).toBeNull();
    }
    expect(r.w.steps).toBe(0);
    r.step(1500);
    expect(r.w.check()?.deltaMs).toBe(1500);
  });

  it('a listener that throws does not stop the others', () => {
    const r = rig();
    const got: number[] = [];
    r.w.onStep(() => {
      throw new Error('boom');
    });
    r.w.onStep((s) => got.push(s.deltaMs));
    r.step(5000);
    r.w.check();
    expect(got).toEqual([5000]);
  });
});
