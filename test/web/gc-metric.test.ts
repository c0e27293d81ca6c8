// The GC-duration histogram from v8.GCProfiler: same series as prom-client's, without a
// PerformanceEntry in the JS heap per collection (issue 14).
import { createRequire } from 'node:module';
import v8 from 'node:v8';
import vm from 'node:vm';
import client from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { collectDefaultMetricsExceptGc, GcDurationMetric } from '../../src/web/gc-metric.js';
import { promotedPerRound } from '../helpers/retention.js';

const require = createRequire(import.meta.url);
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as (o?: { type: string }) => void;

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

function setup(): client.Registry {
  const register = new client.Registry();
  collectDefaultMetricsExceptGc({ register, prefix: 't_', eventLoopMonitoringPrecision: 100 });
  const m = new GcDurationMetric(register, 't_');
  closers.push(() => {
    m.close();
    register.clear();
  });
  return register;
}

function count(text: string, kind: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`t_nodejs_gc_duration_seconds_count{kind="${kind}"} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('GC duration metric', () => {
  it('counts each collection by kind, with its duration, at the next scrape', async () => {
    const register = setup();
    const before = await register.metrics();
    for (let i = 0; i < 5; i++) gc({ type: 'minor' });
    gc();
    const after = await register.metrics();
    expect(count(after, 'minor') - count(before, 'minor')).toBeGreaterThanOrEqual(5);
    expect(count(after, 'major') - count(before, 'major')).toBeGreaterThanOrEqual(1);
    const sum = Number(/^t_nodejs_gc_duration_seconds_sum\{kind="minor"\} (\S+)$/m.exec(after)?.[1]);
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(10);
  });

  it('serves every default series of prom-client, the GC histogram under its own name', () => {
    const ours = setup();
    // Each default metric's module lists its series; read them without calling the modules (the
    // gc one would install the observer for the rest of this process).
    const theirs = client.collectDefaultMetrics.metricsList
      .filter((n) => n !== 'processResources' || typeof (process as { getActiveResourcesInfo?: unknown }).getActiveResourcesInfo === 'function')
      .flatMap((n) => (require(`prom-client/lib/metrics/${n}.js`) as { metricNames: string[] }).metricNames.map((m) => `t_${m}`));
    expect(ours.getMetricsAsArray().map((m) => m.name).sort()).toEqual(theirs.sort());
  });

  it('a collection leaves nothing of its own in the old generation (prom-client\'s observer: ~3.5 KB each)', async () => {
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
