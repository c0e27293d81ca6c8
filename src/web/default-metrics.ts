// prom-client's default series without its GC-duration histogram (nodejs_gc_duration_seconds).
// That histogram's PerformanceObserver makes Node build a PerformanceEntry in the JS heap at
// every collection and hold it for two event-loop turns: about 3.5 KB promoted to the old
// generation per scavenge, ten scavenges a second at 10,000 points (issue 14). Fed from
// v8.GCProfiler instead, it cost more: the profiler keeps ~3 KB of JSON per collection in C++
// until read, and a 1,000,000-row drain (hundreds of scavenges a second) peaked 19 MiB higher
// with it read every 5 s (docs/PERFORMANCE.md). So the series is not served; GC time shows in
// `node --trace-gc` and the profiles of `npm run bench:profile`.
import { createRequire } from 'node:module';
import client from 'prom-client';

const require = createRequire(import.meta.url);

type DefaultMetric = (registry: client.Registry, config: Record<string, unknown>) => void;

/** collectDefaultMetrics() without its 'gc' member. prom-client names each default metric
 * after its module (lib/metrics/<name>.js); listing them from metricsList keeps any it adds
 * later. */
export function collectDefaultMetricsExceptGc(config: { register: client.Registry; prefix: string; eventLoopMonitoringPrecision: number }): void {
  for (const name of client.collectDefaultMetrics.metricsList) {
    if (name === 'gc') continue;
    // As collectDefaultMetrics: only where Node has process.getActiveResourcesInfo.
    if (name === 'processResources' && typeof (process as { getActiveResourcesInfo?: unknown }).getActiveResourcesInfo !== 'function') continue;
    (require(`prom-client/lib/metrics/${name}.js`) as DefaultMetric)(config.register, config);
  }
}
