// Broker fan-out: the gateway's embedded broker (LocalBroker on aedes, with its access
// control) against Mosquitto on the same test. P publishers and S subscribers, each an
// mqtt.js client in a process of its own, QoS 0, 100-byte payloads carrying the send time.
// The offered publish rate climbs step by step until the broker no longer delivers what is
// published; each step reports deliveries per second, latency percentiles measured at the
// subscribers, and the broker process' own CPU per delivered message (/proc/<pid>/stat).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchMosquitto } from './peers/mosquitto.js';
import { announcedPort, cpuTimes, fmt, memory, removeTempDir, sleep, tempDir, track } from './peers/util.js';

const PEERS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'peers');
const BUCKET_US = 10;

export type BrokerKind = 'aedes (LocalBroker)' | 'mosquitto';

export interface FanoutStep {
  publishRate: number;
  expected: number;
  delivered: number;
  deliveredPerS: number;
  p50ms: number;
  p95ms: number;
  p99ms: number;
  brokerCpuPct: number;
  /** Broker CPU (user + system) per delivered message; system time includes the loopback TCP stack. */
  brokerUsPerDelivery: number;
  /** The user-space part alone: the broker's own code. */
  brokerUserUsPerDelivery: number;
  ok: boolean;
}

export interface FanoutResult {
  broker: BrokerKind;
  publishers: number;
  subscribers: number;
  steps: FanoutStep[];
  bestPerS: number;
  brokerHwmMiB: number;
  failure?: string;
}

interface Client {
  proc: ChildProcess;
  next(type: string): Promise<Record<string, unknown>>;
  send(m: object): void;
}

function startClient(role: 'pub' | 'sub', port: number, index: number, count: number): Client {
  const proc = track(fork(path.join(PEERS, 'fanout-client.js'), [role, String(port), String(index), String(count)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  const waiting = new Map<string, ((m: Record<string, unknown>) => void)[]>();
  const inbox = new Map<string, Record<string, unknown>[]>();
  proc.on('message', (m: Record<string, unknown>) => {
    const t = String(m.type);
    const w = waiting.get(t);
    if (w?.length) w.shift()!(m);
    else inbox.set(t, [...(inbox.get(t) ?? []), m]);
  });
  return {
    proc,
    send: (m) => proc.connected && proc.send(m),
    next: (type) =>
      new Promise((resolve, reject) => {
        const q = inbox.get(type);
        if (q?.length) return resolve(q.shift()!);
        const timer = setTimeout(() => reject(new Error(`${role}${index}: no "${type}" within 30 s`)), 30_000);
        const exit = () => reject(new Error(`${role}${index} exited while waiting for "${type}"`));
        proc.once('exit', exit);
        waiting.set(type, [
          ...(waiting.get(type) ?? []),
          (m) => {
            clearTimeout(timer);
            proc.off('exit', exit);
            resolve(m);
          },
        ]);
      }),
  };
}

interface BrokerProc {
  pid: number;
  port: number;
  alive(): boolean;
  stop(): Promise<void>;
}

async function startAedes(cpuProfDir?: string): Promise<BrokerProc> {
  const flags = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
  const proc = track(spawn(process.execPath, [...flags, path.join(PEERS, 'aedes-broker.js')], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const port = await announcedPort(proc, 'aedes broker');
  return {
    pid: proc.pid!,
    port,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    stop: () =>
      new Promise<void>((r) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return r();
        proc.once('exit', () => r());
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 10_000).unref();
      }),
  };
}

async function startMosquitto(): Promise<BrokerProc> {
  const m = await BenchMosquitto.start();
  return { pid: m.pid, port: m.port, alive: () => m.proc.exitCode === null && m.proc.signalCode === null, stop: () => m.stop() };
}

function percentile(hist: Map<number, number>, total: number, q: number): number {
  const want = Math.ceil(total * q);
  let seen = 0;
  for (const b of [...hist.keys()].sort((a, b) => a - b)) {
    seen += hist.get(b)!;
    if (seen >= want) return ((b + 0.5) * BUCKET_US) / 1000;
  }
  return NaN;
}

export interface FanoutOptions {
  publishers: number;
  subscribers: number;
  /** Total publishes per second over all publishers, one step each, in order. */
  rates: number[];
  stepMs: number;
  /** Most client processes per role; default one process per client. */
  processes?: number;
  cpuProfDir?: string;
  /** Stop climbing after the first step that fails. */
  stopOnFailure?: boolean;
}

export async function fanout(kind: BrokerKind, o: FanoutOptions): Promise<FanoutResult> {
  const broker = kind === 'mosquitto' ? await startMosquitto() : await startAedes(o.cpuProfDir);
  const clients: Client[] = [];
  const result: FanoutResult = { broker: kind, publishers: o.publishers, subscribers: o.subscribers, steps: [], bestPerS: 0, brokerHwmMiB: NaN };
  try {
    // Clients are spread over at most `processes` processes per role (one per client by default).
    const spread = (n: number) => {
      const procs = Math.min(n, o.processes ?? n);
      return Array.from({ length: procs }, (_, i) => {
        const from = Math.floor((i * n) / procs);
        return { first: from + 1, count: Math.floor(((i + 1) * n) / procs) - from };
      });
    };
    const subs = spread(o.subscribers).map((g) => startClient('sub', broker.port, g.first, g.count));
    clients.push(...subs);
    await Promise.all(subs.map((s) => s.next('ready')));
    const pubGroups = spread(o.publishers);
    const pubs = pubGroups.map((g) => startClient('pub', broker.port, g.first, g.count));
    clients.push(...pubs);
    await Promise.all(pubs.map((p) => p.next('ready')));
    await sleep(300);
    // An unreported warm-up step (JIT, socket buffers) at the lowest rate.
    const steps = [{ rate: o.rates[0]!, warm: true }, ...o.rates.map((rate) => ({ rate, warm: false }))];
    for (const { rate, warm } of steps) {
      for (const s of subs) s.send({ cmd: 'reset' });
      await Promise.all(subs.map((s) => s.next('reset')));
      const cpu0 = cpuTimes(broker.pid);
      const wall0 = performance.timeOrigin + performance.now();
      for (const p of pubs) p.send({ cmd: 'run', rate: rate / o.publishers, ms: o.stepMs });
      const done = await Promise.all(pubs.map((p) => p.next('done')));
      const sent = done.reduce((a, d) => a + Number(d.sent), 0);
      const expected = sent * o.subscribers;
      // Let the broker deliver what it has taken; stop waiting when nothing moves for 500 ms.
      let delivered = -1;
      for (let still = 0, until = Date.now() + 10_000; Date.now() < until && still < 5; ) {
        await sleep(100);
        for (const s of subs) s.send({ cmd: 'count' });
        const n = (await Promise.all(subs.map((s) => s.next('count')))).reduce((a, c) => a + Number(c.count), 0);
        still = n === delivered ? still + 1 : 0;
        delivered = n;
        if (n >= expected) break;
      }
      const cpu1 = broker.alive() ? cpuTimes(broker.pid) : { user: NaN, sys: NaN };
      const user = cpu1.user - cpu0.user;
      const cpu = user + (cpu1.sys - cpu0.sys);
      for (const s of subs) s.send({ cmd: 'report' });
      const reports = await Promise.all(subs.map((s) => s.next('report')));
      const hist = new Map<number, number>();
      let total = 0;
      let last = wall0;
      for (const r of reports) {
        total += Number(r.count);
        last = Math.max(last, Number(r.last));
        for (const [b, n] of r.hist as [number, number][]) hist.set(b, (hist.get(b) ?? 0) + n);
      }
      const secs = (last - wall0) / 1000;
      const deliveredPerS = total / secs;
      const ok = broker.alive() && total >= 0.99 * expected && deliveredPerS >= 0.9 * rate * o.subscribers;
      if (warm && broker.alive()) continue;
      result.steps.push({
        publishRate: rate,
        expected,
        delivered: total,
        deliveredPerS,
        p50ms: percentile(hist, total, 0.5),
        p95ms: percentile(hist, total, 0.95),
        p99ms: percentile(hist, total, 0.99),
        brokerCpuPct: (100 * cpu) / secs,
        brokerUsPerDelivery: (cpu / total) * 1e6,
        brokerUserUsPerDelivery: (user / total) * 1e6,
        ok,
      });
      result.bestPerS = Math.max(result.bestPerS, deliveredPerS);
      if (!broker.alive()) {
        result.failure = `broker died during the ${fmt(rate)}/s step`;
        break;
      }
      if (!ok && o.stopOnFailure !== false) break;
    }
    if (broker.alive()) result.brokerHwmMiB = memory(broker.pid).hwm;
  } catch (e) {
    result.failure = (e as Error).message;
  } finally {
    for (const c of clients) c.send({ cmd: 'exit' });
    await sleep(300);
    for (const c of clients) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    await broker.stop();
  }
  return result;
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas?: number[];
}

/** The sample ids of a profile, without those of its first `skipS` seconds (start-up). */
function samplesAfter(prof: CpuProfile, skipS: number): number[] {
  if (skipS <= 0 || !prof.timeDeltas) return prof.samples;
  let t = 0;
  const out: number[] = [];
  prof.samples.forEach((id, i) => {
    t += prof.timeDeltas![i] ?? 0;
    if (t >= skipS * 1e6) out.push(id);
  });
  return out;
}

/** Which package or source folder a script URL belongs to, or null for Node's own code. */
function moduleOf(url: string): string | null {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/(dist\/)?(src|bench)\/(.+\/)?[^/]+$/.exec(url);
  if (own && url.startsWith('file:')) return `${own[2]}/${own[3] ?? ''}`.replace(/\/$/, '');
  return null;
}

/** Non-idle samples by the innermost package or source folder on the stack: a socket write
 * made for mqtt-packet counts for mqtt-packet. Samples with none of them on the stack are
 * "(gc)", "(program)" or "(node, no caller in a package)" (timers, stream plumbing run from
 * the event loop, such as an uncork on nextTick). */
export function byModule(file: string, skipS = 0): { name: string; pct: number }[] {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(prof.nodes.map((x) => [x.id, x]));
  const owner = new Map<number, string>();
  const ownerOf = (id: number): string => {
    const known = owner.get(id);
    if (known) return known;
    const cf = byId.get(id)!.callFrame;
    const up = parent.get(id);
    const name =
      moduleOf(cf.url) ??
      (cf.functionName === '(garbage collector)' ? '(gc)' : cf.functionName === '(program)' ? '(program)' : up === undefined ? '(node, no caller in a package)' : ownerOf(up));
    owner.set(id, name);
    return name;
  };
  const counts = new Map<string, number>();
  let busy = 0;
  for (const id of samplesAfter(prof, skipS)) {
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    busy++;
    const k = ownerOf(id);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).map(([name, c]) => ({ name, pct: (100 * c) / busy }));
}

/** Self time per function from a .cpuprofile, as percent of the non-idle samples. */
export function topFunctions(file: string, n = 12, skipS = 0): { name: string; pct: number }[] {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((x) => [x.id, x]));
  const counts = new Map<string, number>();
  let busy = 0;
  for (const id of samplesAfter(prof, skipS)) {
    const cf = byId.get(id)!.callFrame;
    if (cf.functionName === '(idle)') continue;
    busy++;
    const where = cf.url ? ` ${cf.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(dist|src)\//, '$1/')}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'}${where}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, c]) => ({ name, pct: (100 * c) / busy }));
}

/** Section 2 of npm run bench:peers: prints as it goes, returns the results. */
export async function brokerFanoutBench(opts: { stepMs?: number } = {}): Promise<{ results: FanoutResult[]; profile: { name: string; pct: number }[] }> {
  const stepMs = opts.stepMs ?? 3000;
  const rates = [1000, 2000, 3000, 4000, 5000, 6000, 8000, 10_000, 15_000, 20_000];
  // On two cores, one process per client would leave the broker no core of its own: the
  // subscribers share one process and the publishers another (each an mqtt.js client of its own).
  const processes = Number(process.env.BENCH_FANOUT_PROCESSES ?? 1);
  const results: FanoutResult[] = [];
  for (const [publishers, subscribers] of [
    [1, 10],
    [10, 10],
  ] as const) {
    for (const kind of ['aedes (LocalBroker)', 'mosquitto'] as BrokerKind[]) {
      const r = await fanout(kind, { publishers, subscribers, rates, stepMs, processes });
      results.push(r);
      console.log(`   ${publishers} x ${subscribers}, ${kind}${r.failure ? `  (${r.failure})` : ''}`);
      console.log('     publishes/s  deliveries/s  delivered/expected   p50 ms   p95 ms   p99 ms  broker CPU  broker CPU us/delivery (user)');
      for (const s of r.steps) {
        console.log(
          `     ${fmt(s.publishRate).padStart(11)}${fmt(s.deliveredPerS).padStart(14)}  ${`${fmt(s.delivered)}/${fmt(s.expected)}`.padStart(18)}${s.p50ms.toFixed(2).padStart(9)}${s.p95ms.toFixed(2).padStart(9)}${s.p99ms.toFixed(2).padStart(9)}${`${s.brokerCpuPct.toFixed(0)} %`.padStart(12)}${s.brokerUsPerDelivery.toFixed(2).padStart(15)} (${s.brokerUserUsPerDelivery.toFixed(2)})${s.ok ? '' : '  <- not kept up'}`,
        );
      }
    }
    const a = results.at(-2)!;
    const m = results.at(-1)!;
    console.log(`     best deliveries/s: aedes ${fmt(a.bestPerS)}, mosquitto ${fmt(m.bestPerS)}, ratio aedes/mosquitto ${(a.bestPerS / m.bestPerS).toFixed(2)}`);
    const highest = a.steps.filter((s) => s.ok && m.steps.some((t) => t.ok && t.publishRate === s.publishRate)).at(-1);
    const compare = (s: FanoutStep | undefined, why: string) => {
      const t = s && m.steps.find((x) => x.publishRate === s.publishRate);
      if (!s || !t) return;
      console.log(
        `     at ${fmt(s.publishRate)} publishes/s (${why}), aedes / mosquitto: p50 ${s.p50ms.toFixed(2)} / ${t.p50ms.toFixed(2)} ms, p99 ${s.p99ms.toFixed(2)} / ${t.p99ms.toFixed(2)} ms, broker CPU per delivery ${s.brokerUsPerDelivery.toFixed(2)} / ${t.brokerUsPerDelivery.toFixed(2)} us (ratio ${(s.brokerUsPerDelivery / t.brokerUsPerDelivery).toFixed(2)}; user part ${s.brokerUserUsPerDelivery.toFixed(2)} / ${t.brokerUserUsPerDelivery.toFixed(2)})`,
      );
    };
    compare(a.steps.find((s) => s.publishRate === 2000), 'a moderate load');
    compare(highest, 'the highest step both kept up with');
  }
  // Where aedes' time goes: a CPU profile of the broker process over one 1 x 10 run at the
  // highest rate it kept up with.
  const a1 = results[0]!;
  const kept = a1.steps.filter((s) => s.ok).at(-1)?.publishRate ?? 1000;
  const profRate = kept;
  const dir = tempDir('cgw-peers-prof-');
  let profile: { name: string; pct: number }[] = [];
  try {
    await fanout('aedes (LocalBroker)', { publishers: 1, subscribers: 10, rates: [profRate], stepMs, processes, cpuProfDir: dir, stopOnFailure: false });
    const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (file) {
      profile = topFunctions(path.join(dir, file));
      console.log(`   aedes CPU profile, 1 x 10 at ${fmt(profRate)} publishes/s (node --cpu-prof; self time, % of non-idle samples):`);
      for (const f of profile) console.log(`     ${f.pct.toFixed(1).padStart(5)} %  ${f.name}`);
    } else console.log('   (no CPU profile written)');
  } finally {
    removeTempDir(dir);
  }
  return { results, profile };
}
