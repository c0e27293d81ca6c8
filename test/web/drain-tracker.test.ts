import { describe, expect, it } from 'vitest';
import { DrainTracker } from '../../src/web/drain-tracker.js';

describe('drain progress', () => {
  it('reports rate, progress against the backlog at the start, and time left', () => {
    const d = new DrainTracker();
    d.add({ t: 0, acked: 0, rows: 1000, connected: true });
    d.add({ t: 2000, acked: 200, rows: 800, connected: true });
    d.add({ t: 4000, acked: 400, rows: 600, connected: true });
    expect(d.state()).toEqual({ draining: true, drainRatePerSec: 100, etaSeconds: 6, progress: 0.4 });
  });

  it('is not draining while disconnected, idle or empty', () => {
    const d = new DrainTracker();
    d.add({ t: 0, acked: 0, rows: 1000, connected: false });
    d.add({ t: 2000, acked: 0, rows: 1100, connected: false });
    expect(d.state().draining).toBe(false);
    d.add({ t: 4000, acked: 0, rows: 1200, connected: true });
    expect(d.state().draining).toBe(false); // connected, nothing acknowledged yet
    d.add({ t: 6000, acked: 0, rows: 0, connected: true });
    expect(d.state().draining).toBe(false);
  });
});
