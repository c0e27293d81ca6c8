// The composition root's liveness, which the systemd watchdog and /healthz rely on.
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, waitFor } from './helpers/peers.js';
import { baseConfig, makeGateway } from './helpers/gateway.js';
import type { Gateway } from '../src/main.js';
import { monoNow } from '../src/time/monotonic.js';

let g: Gateway | null = null;
afterEach(async () => {
  await g?.stop();
  g = null;
});

describe('gateway liveness', () => {
  it('is alive while scans finish and windows close, and names the loop that stalls', async () => {
    const sim = await freePort();
    g = makeGateway(
      baseConfig({
        uplink: { url: 'mqtt://127.0.0.1:1', windowSeconds: 5 },
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim, offlineBackoffMaxMs: 10_000 }],
        devices: [{ id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 1, pollMs: 200 }],
        simulator: { enabled: true, host: '127.0.0.1', port: sim },
      }),
    );
    expect(g.liveness()).toBe(true); // not started: nothing to judge
    await g.start();
    await waitFor(() => g!.pollers[0]!.stats.polls > 2, 5000, 'scans');
    expect(g.liveness()).toBe(true);
    // Seen from 61 s later with no scan finished since: the poller is stuck.
    expect(g.liveness(monoNow() + 61_000)).toMatch(/^device th-1: no scan finished for 6\d s$/);
    // The aggregation windows (5 s) would be overdue too, but the first stalled loop is named.
    // The aggregator judges on the monotonic clock: its close timer 40 s late is a stall.
    expect(g.aggregator!.stalled(performance.now() + 40_000)).toMatch(/^aggregation: the window timer is \d+ s late$/);
    expect(g.aggregator!.stalled()).toBeNull();
  });
});
