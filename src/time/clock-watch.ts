// Detects steps of the wall clock by comparing it with the monotonic clock once a second:
// NTP syncing a box without RTC moves Date.now() by days at once, forwards or back, while
// performance.now() (CLOCK_MONOTONIC) runs on. Slews (a few ms/s) stay under the threshold.
import type { Logger } from '../log.js';
import { monoNow } from './monotonic.js';

export interface ClockStep {
  /** What the wall clock would read now without the step (ms since the epoch). */
  before: number;
  /** What it reads now. */
  after: number;
  /** after - before, ms: positive forwards. */
  deltaMs: number;
}

export interface ClockWatchOptions {
  /** A change of (wall - monotonic) larger than this is a step, ms. */
  thresholdMs?: number;
  everyMs?: number;
  wall?: () => number;
  mono?: () => number;
}

export class ClockWatch {
  steps = 0;
  lastStep: { ts: number; seconds: number } | null = null;
  private offset = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly listeners: ((s: ClockStep) => void)[] = [];
  private readonly thresholdMs: number;
  private readonly everyMs: number;
  private readonly wall: () => number;
  private readonly mono: () => number;

  constructor(
    private readonly log: Logger,
    opts: ClockWatchOptions = {},
  ) {
    this.thresholdMs = opts.thresholdMs ?? 1000;
    this.everyMs = opts.everyMs ?? 1000;
    this.wall = opts.wall ?? Date.now;
    this.mono = opts.mono ?? monoNow;
  }

  onStep(fn: (s: ClockStep) => void): void {
    this.listeners.push(fn);
  }

  start(): void {
    this.offset = this.wall() - this.mono();
    this.timer = setInterval(() => this.check(), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Compares the clocks now (also called by parts that must not wait for the next tick). */
  check(): ClockStep | null {
    const wall = this.wall();
    const mono = this.mono();
    const offset = wall - mono;
    const delta = offset - this.offset;
    if (Math.abs(delta) < this.thresholdMs) {
      // Follow slews, so that many small corrections never add up to a false step.
      this.offset = offset;
      return null;
    }
    this.offset = offset;
    const step = { before: wall - delta, after: wall, deltaMs: delta };
    this.steps++;
    this.lastStep = { ts: wall, seconds: Math.round(delta) / 1000 };
    this.log.warn({ from: new Date(step.before).toISOString(), to: new Date(wall).toISOString(), seconds: this.lastStep.seconds }, `wall clock stepped ${delta > 0 ? 'forward' : 'back'} by ${describe(delta)}`);
    for (const fn of this.listeners) {
      try {
        fn(step);
      } catch (err) {
        this.log.error({ err }, 'clock step listener failed');
      }
    }
    return step;
  }
}

function describe(ms: number): string {
  const s = Math.abs(ms) / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}
