// prom-client's default series without its GC-duration histogram, whose PerformanceObserver
// promoted a PerformanceEntry per collection (issue 14).
import { createRequire } from 'node:module';
import v8 from 'node:v8';
import vm from 'node:vm';
import client from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { collectDefaultMetricsExceptGc } from '../../src/web/default-metrics.js';

const require = createRequire(import.meta.url);
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as (o?: { type: string }) => void;

const registries: client.Registry[] = [];
afterEach(() => {
  for (const r of registries.splice(0)) r.clear();
});

function setup(): client.Registry {
  const register = new client.Registry();
  collectDefaultMetricsExceptGc({ register, prefix: 't_', eventLoopMonitoringPrecision: 100 });
  registries.push(register);
  return register;
}

describe('default metrics', () => {
  it('serves every default series of prom-client but the GC-duration histogram', async () => {
    const ours = setup();
    // Each default metric's module lists its series; read them without calling the modules (the
    // gc one would install its observer for the rest of this process).
    const theirs = client.collectDefaultMetrics.metricsList
      .filter((n) => n !== 'processResources' || typeof (process as { getActiveResourcesInfo?: unknown }).getActiveResourcesInfo === 'function')
      .flatMap((n) => (require(`prom-client/lib/metrics/${n}.js`) as { metricNames: string[] }).metricNames.map((m) => `t_${m}`));
    expect(theirs).toContain('t_nodejs_gc_duration_seconds');
    expect(ours.getMetricsAsArray().map((m) => m.name).sort()).toEqual(theirs.filter((n) => n !== 't_nodejs_gc_duration_seconds').sort());
    expect(await ours.metrics()).toMatch(/^t_process_cpu_seconds_total \S+$/m);
  });

  it("a collection leaves nothing of its own in the old generation (prom-client's observer: ~3.5 KB each)", async () => {
    setup();
    const oldSpace = () => v8.getHeapSpaceStatistics().reduce((n, s) => (s.space_name === 'old_space' ? n + s.space_used_size : n), 0);
    const immediate = () => new Promise((r) => setImmediate(r));
    // Node makes a GC's PerformanceEntry in the turn after it and hands it to observers one turn
    // later; a scavenge in between (ten a second at 10,000 points) promotes it.
    const round = async () => {
      gc({ type: 'minor' });
      await immediate();
      gc({ type: 'minor' });
      gc({ type: 'minor' });
      await immediate();
    };
    for (let i = 0; i < 20; i++) await round();
    let least = Infinity;
    for (let b = 0; b < 3; b++) {
      const before = oldSpace();
      for (let i = 0; i < 30; i++) await round();
      least = Math.min(least, (oldSpace() - before) / 30 / 3);
    }
    // What is left is the test's own promises (~0.2 KB); the observer's entries were ~3.5 KB.
    expect(least).toBeLessThan(1000);
  });
});
