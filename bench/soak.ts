// npm run soak: the simulated site at ten times its normal rate for SOAK_MINUTES (default 10)
// with the platform broker flapping every minute (down 10 s). Reports RSS drift after warm-up
// (target under 5 MB), open file descriptors over time (no growth), and whether every seq
// reached the platform. Figures go to docs/PERFORMANCE.md. The V8 heap and Node's external
// memory are sampled from /metrics beside RSS, so that a drift can be put on the JS heap or
// outside it (SQLite's page caches, the allocator).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { DEFAULT_CONFIG } from '../src/config/paths.js';
import { PlatformConsumer } from '../src/platform/consumer.js';
import { silentLogger } from '../src/log.js';
import { daemonMemory, freePort, memory, sleep, waitPort } from './peers/util.js';
import { shippedNodeFlags } from './scale.js';
import { PACKAGE_ROOT } from '../src/config/paths.js';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const WARMUP_S = 120;
const CLI = path.resolve('dist/src/cli.js');

/** A Mosquitto with persistence, restartable on the same port (the platform broker). */
class FlappingBroker {
  proc: ChildProcess | null = null;
  constructor(
    readonly port: number,
    private readonly conf: string,
  ) {}

  static async create(dir: string): Promise<FlappingBroker> {
    const port = await freePort();
    const conf = path.join(dir, 'mosquitto.conf');
    const lines = [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence true', `persistence_location ${dir}/`, 'max_queued_messages 0', 'autosave_interval 1'];
    if (process.getuid?.() === 0) lines.push('user root');
    fs.writeFileSync(conf, `${lines.join('\n')}\n`);
    const b = new FlappingBroker(port, conf);
    await b.start();
    return b;
  }

  async start(): Promise<void> {
    this.proc = spawn('/usr/sbin/mosquitto', ['-c', this.conf], { stdio: 'ignore' });
    await waitPort(this.port, 10_000);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGTERM');
    });
  }
}

function fds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

interface Sample {
  t: number;
  rss: number;
  anon: number;
  file: number;
  fds: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

async function main(): Promise<void> {
  if (MINUTES * 60 < WARMUP_S + 120) console.warn(`SOAK_MINUTES=${MINUTES}: too short for a drift after the ${WARMUP_S} s warm-up (the figures will be NaN); use 4 or more`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-soak-'));
  const broker = await FlappingBroker.create(dir);
  const platform = new PlatformConsumer({ url: `mqtt://127.0.0.1:${broker.port}`, db: path.join(dir, 'platform.db'), group: 'none', clientId: 'soak-platform' }, silentLogger());
  await platform.start();

  // The embedded demo site, every device ten times faster (pollMs at least 100 ms).
  const cfg = parse(fs.readFileSync(DEFAULT_CONFIG, 'utf8')) as Record<string, any>;
  const sim = await freePort();
  cfg.site.gatewayId = 'gw-soak';
  cfg.localBroker = { host: '127.0.0.1', port: 0, anonymous: 'loopback' };
  const webPort = await freePort();
  cfg.web = { host: '127.0.0.1', port: webPort, https: false }; // daemonMemory() scrapes /metrics over plain HTTP
  cfg.storage = { path: path.join(dir, 'gateway.db') };
  cfg.uplink = { url: `mqtt://127.0.0.1:${broker.port}`, windowSeconds: 10, reconnectMinMs: 1000, reconnectMaxMs: 4000 };
  cfg.buses = cfg.buses.map((b: Record<string, unknown>) => ({ ...b, port: sim }));
  cfg.simulator = { ...cfg.simulator, port: sim };
  for (const d of cfg.devices) d.pollMs = Math.max(100, Math.round(d.pollMs / 10));
  const cfgFile = path.join(dir, 'site.yaml');
  fs.writeFileSync(cfgFile, stringify(cfg));
  const gw = spawn(process.execPath, [...shippedNodeFlags(PACKAGE_ROOT).flags, CLI, 'run', '--config', cfgFile], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } });
  const pid = gw.pid!;
  await sleep(3000);

  const samples: Sample[] = [];
  const t0 = Date.now();
  const sampler = setInterval(() => {
    const t = (Date.now() - t0) / 1000;
    const { rss, anon, file } = memory(pid);
    const n = fds(pid);
    void daemonMemory(webPort).then((h) => samples.push({ t, rss, anon, file, fds: n, ...h }));
  }, 5000);
  let flaps = 0;
  while (Date.now() - t0 < MINUTES * 60_000) {
    await sleep(50_000);
    await broker.stop();
    flaps++;
    await sleep(10_000);
    await broker.start();
  }
  clearInterval(sampler);
  // Let the last backlog drain, then compare.
  await sleep(30_000);
  gw.kill('SIGTERM');
  await new Promise((r) => gw.once('exit', r));
  const db = (await import('better-sqlite3')).default;
  const g = new db(cfg.storage.path, { readonly: true });
  const lastSeq = (g.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number }).seq;
  const left = (g.prepare('SELECT seq FROM outbox').all() as { seq: number }[]).map((r) => r.seq);
  g.close();
  await sleep(2000);
  const got = new Set(await platform.seqs('gw-soak'));
  const missing = Array.from({ length: lastSeq }, (_, i) => i + 1).filter((s) => !got.has(s) && !left.includes(s));
  await platform.stop();
  await broker.stop();

  const after = samples.filter((s) => s.t >= WARMUP_S);
  const firstMin = after.filter((s) => s.t < WARMUP_S + 60);
  const lastMin = after.filter((s) => s.t >= after.at(-1)!.t - 60);
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const driftOf = (f: (s: Sample) => number) => avg(lastMin.map(f)) - avg(firstMin.map(f));
  const drift = driftOf((s) => s.rss);
  console.log(`soak — ${new Date().toISOString()} — ${os.cpus()[0]?.model}, Node ${process.version}, ${MINUTES} min, ${flaps} broker flaps (down 10 s each minute)`);
  console.log(`   RSS after warm-up (${WARMUP_S} s): first minute ${avg(firstMin.map((s) => s.rss)).toFixed(1)} MiB, last minute ${avg(lastMin.map((s) => s.rss)).toFixed(1)} MiB, drift ${drift.toFixed(1)} MiB (target < 5: ${Math.abs(drift) < 5 ? 'MET' : 'NOT MET'}); peak ${Math.max(...samples.map((s) => s.rss)).toFixed(1)} MiB`);
  console.log(`   drift of its parts (MiB): V8 heap used ${driftOf((s) => s.heapUsed).toFixed(1)}, V8 heap total ${driftOf((s) => s.heapTotal).toFixed(1)}, external ${driftOf((s) => s.external).toFixed(1)}, RSS minus heap total ${driftOf((s) => s.rss - s.heapTotal).toFixed(1)}; RssAnon ${driftOf((s) => s.anon).toFixed(1)}, RssFile ${driftOf((s) => s.file).toFixed(1)}`);
  console.log(`   open fds: first ${samples[0]?.fds}, after warm-up min ${Math.min(...after.map((s) => s.fds))} max ${Math.max(...after.map((s) => s.fds))}, last ${samples.at(-1)?.fds}`);
  console.log(`   seq: committed ${lastSeq}, delivered ${got.size}, still in the outbox ${left.length}, lost ${missing.length}${missing.length ? ` (${missing.slice(0, 10).join(',')}…)` : ''}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
