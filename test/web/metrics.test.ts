// /metrics scraped twice from the running daemon on a simulated site: the documented series
// are there and the counters move.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, sleep, waitFor } from '../helpers/peers.js';
import { baseConfig, makeApp } from '../helpers/gateway.js';

let stop: (() => Promise<void>) | null = null;
afterEach(async () => {
  await stop?.();
  stop = null;
});

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics', () => {
  it('shows the documented series moving while the simulator runs', async () => {
    const simPort = await freePort();
    const { app } = makeApp(
      baseConfig({
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
        devices: [
          { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 200 },
          { id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 2, pollMs: 200 },
        ],
        simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 2 },
      }),
    );
    stop = () => app.stop();
    await app.start();
    const url = `http://127.0.0.1:${app.web.port}/metrics`;
    await waitFor(() => app.gateway.pollers.every((p) => p.stats.polls > 0), 5000, 'first scans');
    const first = await (await fetch(url)).text();
    await sleep(1500);
    const res = await fetch(url);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const second = await res.text();

    const moved = (s: string) => {
      const a = value(first, s);
      const b = value(second, s);
      expect(a, `${s} in the first scrape`).toBeDefined();
      expect(b!, `${s} grows`).toBeGreaterThan(a!);
    };
    moved('cgw_readings_total{device="fridge-1"}');
    moved('cgw_bus_events_total{bus="lan",event="requests"}');
    moved('cgw_bus_events_total{bus="lan",event="responses"}');
    moved('cgw_bus_bytes_total{bus="lan",direction="rx"}');
    moved('cgw_device_scans_total{bus="lan",device="th-1"}');
    moved('cgw_device_scan_seconds_total{bus="lan",device="th-1"}');
    expect(value(second, 'cgw_device_poll_errors_total{bus="lan",device="th-1",cause="timeout"}')).toBe(0);
    expect(value(second, 'cgw_device_online{device="fridge-1"}')).toBe(1);
    expect(value(second, 'cgw_bus_up{bus="lan"}')).toBe(1);
    expect(value(second, 'cgw_uplink_connected')).toBe(0); // no platform broker here
    expect(value(second, 'cgw_outbox_rows')!).toBeGreaterThanOrEqual(1); // the inventory waits
    expect(value(second, 'cgw_outbox_shed_rows_total')).toBe(0);
    expect(value(second, 'cgw_privacy_suppressed_total')).toBe(0);
    expect(value(second, 'cgw_audit_over_budget_total')).toBe(0);
    expect(value(second, 'cgw_audit_suppressed_total')).toBe(0);
    expect(value(second, 'cgw_process_resident_memory_bytes')!).toBeGreaterThan(10e6);
    // Every series in docs/METRICS.md is served (and nothing served is undocumented).
    const documented = [...fs.readFileSync('docs/METRICS.md', 'utf8').matchAll(/^\| `(cgw_[a-z_]+)`/gm)].map((m) => m[1]!);
    const served = new Set([...second.matchAll(/^# TYPE (cgw_[a-z_]+) /gm)].map((m) => m[1]!));
    expect(documented.length).toBeGreaterThan(20);
    for (const name of documented) expect(served.has(name), `${name} is served`).toBe(true);
    for (const name of served) if (!name.startsWith('cgw_process_') && !name.startsWith('cgw_nodejs_')) expect(documented, `${name} is documented`).toContain(name);
  });
});
