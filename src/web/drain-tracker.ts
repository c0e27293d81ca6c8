// Backlog drain progress for the overview: acknowledgements per second over the last 10 s,
// progress against the backlog when the drain began, and the time left at that rate.
export interface DrainSample {
  t: number;
  acked: number;
  rows: number;
  connected: boolean;
}

export interface DrainState {
  draining: boolean;
  drainRatePerSec: number;
  etaSeconds: number | null;
  progress: number | null;
}

const WINDOW_MS = 10_000;

export class DrainTracker {
  private samples: DrainSample[] = [];
  private startRows: number | null = null;

  add(s: DrainSample): void {
    this.samples.push(s);
    while (this.samples.length > 2 && s.t - this.samples[0]!.t > WINDOW_MS) this.samples.shift();
    if (!s.connected || s.rows === 0) this.startRows = null;
    else if (this.startRows === null || s.rows > this.startRows) this.startRows = s.rows;
  }

  state(): DrainState {
    const last = this.samples.at(-1);
    const first = this.samples[0];
    if (!last || !first || last === first || !last.connected || last.rows === 0) return { draining: false, drainRatePerSec: 0, etaSeconds: null, progress: null };
    const rate = Math.max(0, (last.acked - first.acked) / ((last.t - first.t) / 1000));
    if (rate === 0) return { draining: false, drainRatePerSec: 0, etaSeconds: null, progress: null };
    const start = this.startRows ?? last.rows;
    return { draining: true, drainRatePerSec: Math.round(rate), etaSeconds: Math.round((last.rows / rate) * 10) / 10, progress: start > 0 ? Math.max(0, Math.min(1, 1 - last.rows / start)) : null };
  }
}
