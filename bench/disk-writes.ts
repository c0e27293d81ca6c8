// Bytes written to disk per reading (SD-card wear, issue 13) and the daemon's CPU at 10,000
// points. Each figure is the real daemon (dist/src/cli.js run, started as `npm start` starts
// it) measured from /proc/<pid>: write_bytes of /proc/<pid>/io (what the process made the
// kernel write to the block device, page-cache pages dirtied, counted once per dirtying) and
// utime+stime of /proc/<pid>/stat.
//
// 1. The demo site (config/default.yaml, ~27 readings/s) with a platform Mosquitto up (so
//    the outbox is written, sent, acknowledged and deleted as on a live site), twice side by
//    side: raw store on at its default retention, and raw store off (rawRetentionHours 0).
//    The difference is the raw store's share; the second is the outbox path alone.
//    BENCH_DISK_MINUTES (default 10) sets the measured time, after a 30 s warm-up.
// 2. 10,000 points (2,500 r4dcb08 devices, 4 points each, polled every 10 s = 1,000
//    readings/s) from a simulator in its own process, no platform: CPU with and without the
//    raw store. BENCH_CPU_SECONDS (default 120) after a 60 s warm-up.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { DEFAULT_CONFIG } from '../src/config/paths.js';
import { BenchMosquitto } from './peers/mosquitto.js';
import { shippedNodeFlags } from './scale.js';
import { announcedPort, cpuSeconds, freePort, removeTempDir, sleep, tempDir, track } from './peers/util.js';

const CLI = path.resolve('dist/src/cli.js');
const SIM = path.resolve('dist/bench/peers/sim-process.js');

export function writeBytes(pid: number): number {
  const io = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(/^write_bytes: (\d+)$/m.exec(io)?.[1] ?? NaN);
}

async function metrics(webPort: number): Promise<string> {
  return fetch(`http://127.0.0.1:${webPort}/metrics`).then((r) => r.text());
}

/** Sum of a counter over its labels. */
function total(text: string, name: string): number {
  let s = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) s += Number(line.slice(line.lastIndexOf(' ') + 1));
  return s;
}

interface Daemon {
  proc: ChildProcess;
  webPort: number;
  dir: string;
}

async function startDaemon(cfg: Record<string, unknown>, dir: string, webPort: number): Promise<Daemon> {
  // As `npm start` runs it: the flags and environment of package.json "start".
  const shipped = shippedNodeFlags();
  const file = path.join(dir, 'site.yaml');
  fs.writeFileSync(file, stringify(cfg));
  const proc = track(
    spawn(process.execPath, [...shipped.flags, CLI, 'run', '--config', file], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, ...shipped.env, LOG_LEVEL: 'error' },
    }),
  );
  const until = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${webPort}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (proc.exitCode !== null || Date.now() > until) throw new Error(`daemon in ${dir} did not start`);
    await sleep(200);
  }
  return { proc, webPort, dir };
}

async function stopDaemon(d: Daemon): Promise<void> {
  if (d.proc.exitCode === null) {
    d.proc.kill('SIGTERM');
    await new Promise((r) => d.proc.once('exit', r));
  }
  removeTempDir(d.dir);
}

interface Sample {
  t: number;
  bytes: number;
  readings: number;
  cpu: number;
}

async function sample(d: Daemon): Promise<Sample> {
  const text = await metrics(d.webPort);
  return { t: performance.now(), bytes: writeBytes(d.proc.pid!), readings: total(text, 'cgw_readings_total'), cpu: cpuSeconds(d.proc.pid!) };
}

export interface DiskFigures {
  label: string;
  readings: number;
  seconds: number;
  perReading: number;
  firstHalf: number;
  secondHalf: number;
  perDay: number;
  files: Record<string, number>;
}

function figures(label: string, a: Sample, b: Sample, c: Sample, dir: string): DiskFigures {
  const per = (x: Sample, y: Sample) => (y.bytes - x.bytes) / Math.max(1, y.readings - x.readings);
  const seconds = (c.t - a.t) / 1000;
  const files: Record<string, number> = {};
  for (const f of fs.readdirSync(path.join(dir, 'data'))) files[f] = fs.statSync(path.join(dir, 'data', f)).size;
  return { label, readings: c.readings - a.readings, seconds, perReading: per(a, c), firstHalf: per(a, b), secondHalf: per(b, c), perDay: ((c.bytes - a.bytes) / seconds) * 86400, files };
}

/** The demo site, raw store on and off side by side, for `minutes`. */
export async function demoDiskWrites(minutes: number): Promise<DiskFigures[]> {
  const platform = await BenchMosquitto.start();
  const base = parse(fs.readFileSync(DEFAULT_CONFIG, 'utf8')) as Record<string, any>;
  const daemons: { label: string; d: Daemon }[] = [];
  try {
    for (const [label, raw] of [
      ['raw store on (24 h)', undefined],
      ['raw store off', 0],
    ] as const) {
      const dir = tempDir('cgw-disk-');
      const [webPort, simPort] = [await freePort(), await freePort()];
      const cfg = structuredClone(base);
      cfg.localBroker = { ...cfg.localBroker, host: '127.0.0.1', port: 0 };
      cfg.web = { host: '127.0.0.1', port: webPort, https: false };
      cfg.storage = { path: path.join(dir, 'data', 'gateway.db'), ...(raw === undefined ? {} : { rawRetentionHours: raw }) };
      cfg.uplink = { ...cfg.uplink, url: `mqtt://127.0.0.1:${platform.port}` };
      cfg.buses = cfg.buses.map((b: Record<string, unknown>) => ({ ...b, port: simPort }));
      cfg.simulator = { ...cfg.simulator, port: simPort };
      daemons.push({ label, d: await startDaemon(cfg, dir, webPort) });
    }
    await sleep(30_000);
    const a = await Promise.all(daemons.map(({ d }) => sample(d)));
    await sleep((minutes * 60_000) / 2);
    const b = await Promise.all(daemons.map(({ d }) => sample(d)));
    await sleep((minutes * 60_000) / 2);
    const c = await Promise.all(daemons.map(({ d }) => sample(d)));
    return daemons.map(({ label, d }, i) => figures(label, a[i]!, b[i]!, c[i]!, d.dir));
  } finally {
    for (const { d } of daemons) await stopDaemon(d);
    await platform.stop();
  }
}

export interface CpuFigures {
  label: string;
  readingsPerS: number;
  cpuShare: number;
  bytesPerReading: number;
}

/** 10,000 points at 1,000 readings/s, raw store on and off (one after the other: each daemon
 * has the machine's two cores to share with the simulator only). */
export async function tenThousandPoints(seconds: number): Promise<CpuFigures[]> {
  const sim = track(spawn(process.execPath, [SIM, 'r4dcb08', '200'], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const simPort = await announcedPort(sim, 'simulator');
  const out: CpuFigures[] = [];
  try {
    for (const [label, raw] of [
      ['raw store on (24 h)', 24],
      ['raw store off', 0],
    ] as const) {
      const dir = tempDir('cgw-10k-');
      const webPort = await freePort();
      const buses = Array.from({ length: 13 }, (_, i) => ({ id: `b${i}`, type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 2000 }));
      const devices = Array.from({ length: 2500 }, (_, i) => ({ id: `d${String(i + 1).padStart(4, '0')}`, facility: 'canteen', profile: 'r4dcb08', bus: `b${Math.floor(i / 200)}`, unitId: (i % 200) + 1, pollMs: 10_000 }));
      const cfg = {
        site: { communityCode: '330106001001', gatewayId: 'gw-10k' },
        localBroker: { host: '127.0.0.1', port: 0, anonymous: 'loopback' },
        web: { host: '127.0.0.1', port: webPort, https: false },
        storage: { path: path.join(dir, 'data', 'gateway.db'), rawRetentionHours: raw },
        uplink: { url: `mqtt://127.0.0.1:${await freePort()}` },
        buses,
        devices,
      };
      const d = await startDaemon(cfg, dir, webPort);
      try {
        await sleep(60_000);
        const a = await sample(d);
        await sleep(seconds * 1000);
        const b = await sample(d);
        const s = (b.t - a.t) / 1000;
        out.push({ label, readingsPerS: (b.readings - a.readings) / s, cpuShare: (b.cpu - a.cpu) / s, bytesPerReading: (b.bytes - a.bytes) / Math.max(1, b.readings - a.readings) });
      } finally {
        await stopDaemon(d);
      }
    }
  } finally {
    sim.kill('SIGTERM');
  }
  return out;
}

const fmt = (n: number, d = 0) => n.toLocaleString('en', { minimumFractionDigits: d, maximumFractionDigits: d });

export async function diskBench(): Promise<void> {
  const minutes = Number(process.env.BENCH_DISK_MINUTES ?? 10);
  console.log(`\n5. bytes written to disk per reading, demo site (config/default.yaml), ${minutes} min after a 30 s warm-up, platform up; /proc/<pid>/io write_bytes`);
  const r = await demoDiskWrites(minutes);
  for (const f of r) {
    console.log(
      `   ${f.label.padEnd(20)} ${fmt(f.readings)} readings (${fmt(f.readings / f.seconds, 1)}/s): ${fmt(f.perReading, 1)} B/reading (first half ${fmt(f.firstHalf, 1)}, second half ${fmt(f.secondHalf, 1)}, ratio ${fmt(f.secondHalf / f.firstHalf, 2)}), ${fmt(f.perDay / 1e6, 1)} MB/day`,
    );
    console.log(`   ${''.padEnd(20)} files at the end: ${Object.entries(f.files).map(([k, v]) => `${k} ${fmt(v / 1024)} KiB`).join(', ')}`);
  }
  const [on, off] = r as [DiskFigures, DiskFigures];
  const rawShare = (on.perDay - off.perDay) / 86400 / (on.readings / on.seconds);
  console.log(`   split: outbox path ${fmt(off.perReading, 1)} B/reading, raw store ${fmt(rawShare, 1)} B/reading (the difference of the two daemons, per reading)   target <= 50 B/reading in total: ${on.perReading <= 50 ? 'MET' : 'NOT MET'}; flat (second half <= 1.25x first): ${on.secondHalf <= 1.25 * on.firstHalf ? 'MET' : 'NOT MET'}`);
  const seconds = Number(process.env.BENCH_CPU_SECONDS ?? 120);
  console.log(`\n6. daemon CPU at 10,000 points (2,500 r4dcb08, pollMs 10,000), simulator in its own process, no platform; ${seconds} s after a 60 s warm-up`);
  for (const c of await tenThousandPoints(seconds)) {
    console.log(`   ${c.label.padEnd(20)} ${fmt(c.readingsPerS)} readings/s, CPU ${fmt(c.cpuShare * 100, 1)} % of a core, ${fmt(c.bytesPerReading, 1)} B written/reading`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  diskBench().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
