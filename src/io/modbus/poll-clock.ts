// One poll timer per bus and poll interval, instead of one per device. Each device's own timer
// was re-armed for "its start + pollMs", so the devices of a bus drifted apart by the time
// their requests waited in the bus queue (99, 98, 97 ms...) and woke the process several times
// a round; on the benchmark VM a wake-up from idle costs more than the round's work
// (docs/PERFORMANCE.md, 2026-12-02). Ticks are at fixed monotonic times (t0 + k * period); a tick that
// comes while the process was busy past the next one is not repeated (skipped, not queued).
import { monoNow, type MonoClock } from '../../time/monotonic.js';

export type Tick = () => void;

export class PollClock {
  private readonly members = new Set<Tick>();
  private timer: NodeJS.Timeout | null = null;
  private next = 0;

  constructor(
    readonly periodMs: number,
    private readonly mono: MonoClock = monoNow,
  ) {}

  /** `tick` runs at every tick from the next one on, until leave(). */
  join(tick: Tick): void {
    if (this.members.has(tick)) return;
    this.members.add(tick);
    if (!this.timer && !this.firing) {
      this.next = this.mono() + this.periodMs;
      this.arm();
    }
  }

  leave(tick: Tick): void {
    this.members.delete(tick);
    if (this.members.size === 0 && this.timer) {
      // No members: no wake-ups.
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private firing = false;

  private arm(): void {
    this.timer = setTimeout(this.fire, Math.max(0, this.next - this.mono()));
  }

  private readonly fire = (): void => {
    this.timer = null;
    this.firing = true;
    try {
      for (const tick of [...this.members]) tick();
    } finally {
      // Re-armed even if a member threw: the others keep their ticks.
      this.firing = false;
      if (this.members.size > 0) {
        // Fixed rate: the next grid point still ahead, so ticks a stall overran are skipped.
        const now = this.mono();
        this.next += this.periodMs * Math.max(1, Math.ceil((now - this.next + 1) / this.periodMs));
        this.arm();
      }
    }
  };
}
