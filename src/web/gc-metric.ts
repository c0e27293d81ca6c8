// prom-client's default series, with its GC-duration histogram fed from v8.GCProfiler instead
// of a PerformanceObserver. The observer makes Node build a PerformanceEntry in the JS heap at
// every collection and hold it until the next turn: about 3 KB promoted per scavenge, at
// 10,000 points ten scavenges a second (issue 14, docs/PERFORMANCE.md). The profiler records
// in C++ and is read every few seconds and at each scrape: a few KB of short-lived JS then.
// Same series (`<prefix>nodejs_gc_duration_seconds`, label kind: major, minor, incremental,
// weakcb), same buckets.
import { createRequire } from 'node:module';
import v8 from 'node:v8';
import client from 'prom-client';

const require = createRequire(import.meta.url);

type DefaultMetric = (registry: client.Registry, config: Record<string, unknown>) => void;

/** collectDefaultMetrics() without its 'gc' member, which is the observer. prom-client names
 * each default metric after its module (lib/metrics/<name>.js); listing them from
 * metricsList keeps any it adds later. */
export function collectDefaultMetricsExceptGc(config: { register: client.Registry; prefix: string; eventLoopMonitoringPrecision: number }): void {
  for (const name of client.collectDefaultMetrics.metricsList) {
    if (name === 'gc') continue;
    if (name === 'processResources' && typeof (process as { getActiveResourcesInfo?: unknown }).getActiveResourcesInfo !== 'function') continue;
    (require(`prom-client/lib/metrics/${name}.js`) as DefaultMetric)(config.register, config);
  }
}

/** GCProfiler's gcType -> the kind label prom-client uses (from perf_hooks' entry kinds). */
const KINDS: Record<string, string> = {
  Scavenge: 'minor',
  MinorMarkSweep: 'minor',
  MinorMarkCompact: 'minor',
  MarkSweepCompact: 'major',
  IncrementalMarking: 'incremental',
  ProcessWeakCallbacks: 'weakcb',
};

interface GcRecord {
  gcType: string;
  /** Microseconds. */
  cost: number;
}

/** Read often enough that the profiler's record (~3 KB of JSON per collection, kept in C++
 * until read) stays small, and its parse is a few KB of garbage at a time. */
const READ_EVERY_MS = 5000;

export class GcDurationMetric {
  private profiler: v8.GCProfiler | null = new v8.GCProfiler();
  private readonly timer: NodeJS.Timeout;
  private readonly histogram: client.Histogram<'kind'>;

  constructor(registry: client.Registry, prefix: string) {
    const read = () => this.read();
    this.histogram = new client.Histogram({
      name: `${prefix}nodejs_gc_duration_seconds`,
      help: 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
      labelNames: ['kind'],
      buckets: [0.001, 0.01, 0.1, 1, 2, 5],
      registers: [registry],
      collect: read,
    });
    this.profiler!.start();
    this.timer = setInterval(read, READ_EVERY_MS).unref();
  }

  /** Moves what the profiler recorded into the histogram and starts a new record. */
  private read(): void {
    const p = this.profiler;
    if (!p) return;
    const r = p.stop() as { statistics: GcRecord[] } | undefined;
    p.start();
    for (const s of r?.statistics ?? []) {
      const kind = KINDS[s.gcType];
      if (kind) this.histogram.observe({ kind }, s.cost / 1e6);
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.profiler?.stop();
    this.profiler = null;
  }
}
