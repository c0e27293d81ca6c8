// npm run bench, section 7: the real daemon at 1,000 / 5,000 / 10,000 points polled every
// second (devices of 100 registers each, ten devices per Modbus TCP link), the simulator in
// its own process, no platform (the uplink points at a closed port). Per size, over the
// measured window after a warm-up: readings/s delivered (cgw_readings_total), CPU % of a core
// (utime+stime of /proc/PID/stat), VmHWM, RSS min/max sampled every second, RssAnon and
// RssFile, and the V8 heap used (/metrics). With a window of 10 minutes or more, the first and
// the last minute are compared (the 10,000-point target: VmHWM <= 120 MB and flat).
//
// The 100-register device is a bench-only profile (benchProfile below): no shipped driver has
// that many points, and a fake device must not ship in drivers/. The daemon and the simulator
// only read profiles from <package root>/drivers, so both run from a scratch copy of the
// package root (package.json, dist/ copied; node_modules and src/ linked) whose drivers/
// holds the shipped profiles plus this one. Same code, same flags as `npm start`.
//
// Env: BENCH_SCALE_SECONDS (measured window, default 120), BENCH_SCALE_WARMUP (default 30),
// BENCH_SCALE_POINTS (comma list, default 0,1000,5000,10000; 0 is the demo site of
// config/default.yaml as `npm start` runs it, ~27 readings/s: the idle cost of the flags), BENCH_SCALE_FLAGS (node flags,
// default those of `npm start`), BENCH_SCALE_ENV ("K=V K=V", default that of `npm start`),
// BENCH_SCALE_PLATFORM (an MQTT URL for the uplink instead of a closed port, to see the
// backlog's part), BENCH_SCALE_STDOUT (a file for the daemon's stdout, e.g. with BENCH_SCALE_FLAGS carrying
// --trace-gc-nvp: what each GC promoted).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { announcedPort, cpuSeconds, fmt, freePort, memory, removeTempDir, sleep, tempDir, track } from './peers/util.js';

export const REGISTERS = 100;
const DEVICES_PER_BUS = 10;
const BENCH_PROFILE = 'bench-100-register';

/** The node flags and environment of `npm start` (package.json), the one place they are read
 * from here: test/systemd/node-flags.test.ts holds every other copy to the same. */
export function shippedNodeFlags(root = '.'): { flags: string[]; env: Record<string, string> } {
  const start = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
  const m = /&&\s*((?:[A-Z_]+=\S+\s+)*)node\s+((?:--\S+\s+)*)dist\/src\/cli\.js/.exec(start);
  if (!m) throw new Error(`package.json "start" is not "... && [ENV=V ...] node [--flags ...] dist/src/cli.js ...": ${start}`);
  const env = Object.fromEntries(m[1]!.trim().split(/\s+/).filter(Boolean).map((kv) => kv.split('=') as [string, string]));
  return { flags: m[2]!.trim().split(/\s+/).filter(Boolean), env };
}

/** 100 holding registers: 90 temperatures (int16, 0.1 °C, a random walk: fractional values,
 * as most registers are once scaled) and 10 counters. */
export function benchProfile(): Record<string, unknown> {
  const points = Array.from({ length: REGISTERS }, (_, i) => {
    const counter = i % 10 === 9;
    return {
      id: `r${String(i).padStart(3, '0')}`,
      name: { zh: `寄存器${i}`, en: `Register ${i}` },
      register: 'holding',
      address: i,
      type: counter ? 'uint16' : 'int16',
      scale: counter ? 1 : 0.1,
      unit: counter ? '' : '°C',
      privacy: 'public',
      kind: counter ? 'counter' : 'gauge',
      simulate: counter ? { model: 'counter', rate: 0.5 } : { model: 'walk', min: 2 + (i % 7), max: 8 + (i % 7), rate: 0.05 },
    };
  });
  return {
    id: BENCH_PROFILE,
    manufacturer: 'none (benchmark only)',
    model: '100-register test device',
    name: { zh: '100 寄存器测试设备', en: '100-register test device' },
    source: 'own (bench/scale.ts; never shipped)',
    facilities: ['canteen'],
    transports: ['modbus-tcp'],
    points,
  };
}

/** A scratch package root whose drivers/ also holds the bench profile. */
export function scratchRoot(): string {
  const root = tempDir('cgw-scale-root-');
  fs.copyFileSync('package.json', path.join(root, 'package.json'));
  fs.cpSync('dist', path.join(root, 'dist'), { recursive: true });
  fs.symlinkSync(path.resolve('node_modules'), path.join(root, 'node_modules'));
  fs.symlinkSync(path.resolve('src'), path.join(root, 'src'));
  fs.cpSync('drivers', path.join(root, 'drivers'), { recursive: true });
  fs.cpSync('config', path.join(root, 'config'), { recursive: true });
  fs.writeFileSync(path.join(root, 'drivers', `${BENCH_PROFILE}.yaml`), stringify(benchProfile()));
  return root;
}

export interface MemSample {
  t: number;
  rss: number;
  anon: number;
  file: number;
  hwm: number;
}

export interface ScaleFigures {
  points: number;
  devices: number;
  seconds: number;
  readingsPerS: number;
  cpuShare: number;
  /** VmHWM at the end of the warm-up and at the end. */
  hwmStart: number;
  hwmEnd: number;
  rssMin: number;
  rssMax: number;
  anonMin: number;
  anonMax: number;
  fileMax: number;
  heapMin: number;
  heapMax: number;
  /** V8 heap committed (nodejs_heap_size_total), the most seen: what of RSS the heap holds. */
  heapTotalMax: number;
  /** First and last minute of the window (only for windows of 10 minutes or more). */
  minutes?: { first: { rssMin: number; rssMax: number; hwm: number }; last: { rssMin: number; rssMax: number; hwm: number } };
  samples: MemSample[];
}

function total(text: string, name: string): number {
  let s = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) s += Number(line.slice(line.lastIndexOf(' ') + 1));
  return s;
}

function scalar(text: string, name: string): number {
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

const metrics = (port: number) => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());

interface Run {
  daemon: ChildProcess;
  sim: ChildProcess | null;
  webPort: number;
  dir: string;
}

async function start(root: string, points: number, o: { flags: string[]; env: Record<string, string> }): Promise<Run> {
  const devices = Math.ceil(points / REGISTERS);
  const sim = track(spawn(process.execPath, [path.join(root, 'dist/bench/peers/sim-process.js'), BENCH_PROFILE, String(devices)], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const simPort = await announcedPort(sim, 'simulator');
  const dir = tempDir('cgw-scale-');
  const webPort = await freePort();
  const buses = Array.from({ length: Math.ceil(devices / DEVICES_PER_BUS) }, (_, i) => ({ id: `b${i}`, type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 2000 }));
  const cfg = {
    site: { communityCode: '330106001001', gatewayId: 'gw-scale' },
    localBroker: { host: '127.0.0.1', port: 0, anonymous: 'loopback' },
    web: { host: '127.0.0.1', port: webPort, https: false },
    storage: { path: path.join(dir, 'data', 'gateway.db') },
    uplink: { url: process.env.BENCH_SCALE_PLATFORM ?? `mqtt://127.0.0.1:${await freePort()}` },
    buses,
    devices: Array.from({ length: devices }, (_, i) => ({ id: `d${String(i + 1).padStart(3, '0')}`, facility: 'canteen', profile: BENCH_PROFILE, bus: `b${Math.floor(i / DEVICES_PER_BUS)}`, unitId: i + 1, pollMs: 1000 })),
  };
  return { ...(await launch(root, cfg, dir, webPort, String(points), o)), sim };
}

/** The demo site (config/default.yaml, as `npm start` runs it: its own simulator in the
 * daemon), on free loopback ports. */
async function startDemo(root: string, o: { flags: string[]; env: Record<string, string> }): Promise<Run> {
  const cfg = parse(fs.readFileSync(path.join(root, 'config', 'default.yaml'), 'utf8')) as Record<string, any>;
  const dir = tempDir('cgw-scale-demo-');
  const [webPort, simPort] = [await freePort(), await freePort()];
  cfg.localBroker = { ...cfg.localBroker, host: '127.0.0.1', port: 0 };
  cfg.web = { host: '127.0.0.1', port: webPort, https: false };
  cfg.storage = { path: path.join(dir, 'data', 'gateway.db') };
  cfg.uplink = { ...cfg.uplink, url: `mqtt://127.0.0.1:${await freePort()}` };
  cfg.buses = cfg.buses.map((b: Record<string, unknown>) => ({ ...b, port: simPort }));
  cfg.simulator = { ...cfg.simulator, port: simPort };
  return { ...(await launch(root, cfg, dir, webPort, 'demo', o)), sim: null };
}

async function launch(root: string, cfg: Record<string, unknown>, dir: string, webPort: number, label: string, o: { flags: string[]; env: Record<string, string> }): Promise<Omit<Run, 'sim'>> {
  const file = path.join(dir, 'site.yaml');
  fs.writeFileSync(file, stringify(cfg));
  const out = process.env.BENCH_SCALE_STDOUT ? fs.openSync(`${process.env.BENCH_SCALE_STDOUT}.${label}`, 'w') : 'ignore';
  const daemon = track(
    spawn(process.execPath, [...o.flags, path.join(root, 'dist/src/cli.js'), 'run', '--config', file], {
      stdio: ['ignore', out, 'inherit'],
      env: { ...process.env, ...o.env, LOG_LEVEL: 'error' },
    }),
  );
  const until = Date.now() + 60_000;
  for (;;) {
    if (await fetch(`http://127.0.0.1:${webPort}/healthz`).then((r) => r.ok, () => false)) break;
    if (daemon.exitCode !== null || Date.now() > until) throw new Error(`daemon (${label}) did not start`);
    await sleep(200);
  }
  return { daemon, webPort, dir };
}

async function stop(r: Run): Promise<void> {
  for (const p of [r.daemon, r.sim]) {
    if (!p) continue;
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      await new Promise((res) => p.once('exit', res));
    }
  }
  removeTempDir(r.dir);
}

function range(xs: number[]): [number, number] {
  return [Math.min(...xs), Math.max(...xs)];
}

/** One size (0: the demo site): warm-up, then `seconds` sampled every second (/metrics
 * every 10 s). */
export async function scaleRun(root: string, points: number, seconds: number, warmup: number, o = shippedNodeFlags()): Promise<ScaleFigures> {
  const r = points === 0 ? await startDemo(root, o) : await start(root, points, o);
  try {
    await sleep(warmup * 1000);
    const pid = r.daemon.pid!;
    const m0 = await metrics(r.webPort);
    const t0 = performance.now();
    const cpu0 = cpuSeconds(pid);
    const hwmStart = memory(pid).hwm;
    const samples: MemSample[] = [];
    const heap: number[] = [scalar(m0, 'cgw_nodejs_heap_size_used_bytes') / 1048576];
    const heapTotal: number[] = [scalar(m0, 'cgw_nodejs_heap_size_total_bytes') / 1048576];
    for (let i = 1; i <= seconds; i++) {
      await sleep(t0 + i * 1000 - performance.now());
      const m = memory(pid);
      samples.push({ t: i, rss: m.rss, anon: m.anon, file: m.file, hwm: m.hwm });
      if (i % 10 === 0 && i < seconds) {
        const m10 = await metrics(r.webPort);
        heap.push(scalar(m10, 'cgw_nodejs_heap_size_used_bytes') / 1048576);
        heapTotal.push(scalar(m10, 'cgw_nodejs_heap_size_total_bytes') / 1048576);
      }
    }
    const cpu1 = cpuSeconds(pid);
    const m1 = await metrics(r.webPort);
    const s = (performance.now() - t0) / 1000;
    heap.push(scalar(m1, 'cgw_nodejs_heap_size_used_bytes') / 1048576);
    heapTotal.push(scalar(m1, 'cgw_nodejs_heap_size_total_bytes') / 1048576);
    const [rssMin, rssMax] = range(samples.map((x) => x.rss));
    const [anonMin, anonMax] = range(samples.map((x) => x.anon));
    const [heapMin, heapMax] = range(heap);
    const f: ScaleFigures = {
      points,
      devices: points === 0 ? 7 : Math.ceil(points / REGISTERS),
      seconds: s,
      readingsPerS: (total(m1, 'cgw_readings_total') - total(m0, 'cgw_readings_total')) / s,
      cpuShare: (cpu1 - cpu0) / s,
      hwmStart,
      hwmEnd: samples[samples.length - 1]!.hwm,
      rssMin,
      rssMax,
      anonMin,
      anonMax,
      fileMax: Math.max(...samples.map((x) => x.file)),
      heapMin,
      heapMax,
      heapTotalMax: Math.max(...heapTotal),
      samples,
    };
    if (seconds >= 600) {
      const minute = (xs: MemSample[]) => ({ rssMin: Math.min(...xs.map((x) => x.rss)), rssMax: Math.max(...xs.map((x) => x.rss)), hwm: xs[xs.length - 1]!.hwm });
      f.minutes = { first: minute(samples.slice(0, 60)), last: minute(samples.slice(-60)) };
    }
    return f;
  } finally {
    await stop(r);
  }
}

function options(): { flags: string[]; env: Record<string, string> } {
  const shipped = shippedNodeFlags();
  const flags = process.env.BENCH_SCALE_FLAGS !== undefined ? process.env.BENCH_SCALE_FLAGS.split(' ').filter(Boolean) : shipped.flags;
  const env = process.env.BENCH_SCALE_ENV !== undefined ? Object.fromEntries(process.env.BENCH_SCALE_ENV.split(' ').filter(Boolean).map((kv) => kv.split('=') as [string, string])) : shipped.env;
  return { flags, env };
}

export async function scaleBench(section = '7'): Promise<ScaleFigures[]> {
  const seconds = Number(process.env.BENCH_SCALE_SECONDS ?? 120);
  const warmup = Number(process.env.BENCH_SCALE_WARMUP ?? 30);
  const sizes = (process.env.BENCH_SCALE_POINTS ?? '0,1000,5000,10000').split(',').map(Number);
  const o = options();
  const envText = Object.entries(o.env).map(([k, v]) => `${k}=${v} `).join('');
  console.log(`\n${section}. scale: the daemon at N points polled every 1 s (${REGISTERS}-register devices, ${DEVICES_PER_BUS} per Modbus TCP link), simulator in its own process, no platform`);
  console.log(`   ${envText}node ${o.flags.join(' ')}; ${seconds} s measured after a ${warmup} s warm-up; RSS sampled every second; MiB`);
  console.log('   points  readings/s  CPU % core  VmHWM (warm-up -> end)  RSS min-max   RssAnon min-max  RssFile  V8 heap used min-max  committed max');
  const root = scratchRoot();
  const out: ScaleFigures[] = [];
  try {
    for (const n of sizes) {
      const f = await scaleRun(root, n, seconds, warmup, o);
      out.push(f);
      console.log(
        `   ${(f.points === 0 ? 'demo' : fmt(f.points)).padStart(6)}${fmt(f.readingsPerS).padStart(12)}${fmt(f.cpuShare * 100, 1).padStart(12)}${`${fmt(f.hwmStart, 1)} -> ${fmt(f.hwmEnd, 1)}`.padStart(24)}${`${fmt(f.rssMin, 1)}-${fmt(f.rssMax, 1)}`.padStart(13)}${`${fmt(f.anonMin, 1)}-${fmt(f.anonMax, 1)}`.padStart(17)}${fmt(f.fileMax, 1).padStart(9)}${`${fmt(f.heapMin, 1)}-${fmt(f.heapMax, 1)}`.padStart(23)}${fmt(f.heapTotalMax, 1).padStart(15)}`,
      );
      if (f.minutes) {
        const { first, last } = f.minutes;
        console.log(`           first minute: RSS ${fmt(first.rssMin, 1)}-${fmt(first.rssMax, 1)}, VmHWM ${fmt(first.hwm, 1)}; last minute: RSS ${fmt(last.rssMin, 1)}-${fmt(last.rssMax, 1)}, VmHWM ${fmt(last.hwm, 1)}`);
      }
      if (f.points === 10_000) {
        const mb = f.hwmEnd * 1.048576;
        // Flat: no new peak after the first minute, and the last minute's RSS no higher than the first's (2 MiB slack).
        const flat = f.minutes ? ` flat: ${f.minutes.last.hwm - f.minutes.first.hwm <= 2 && f.minutes.last.rssMax <= f.minutes.first.rssMax + 2 ? 'MET' : 'NOT MET'};` : '';
        console.log(`           target VmHWM <= 120 MB: ${mb <= 120 ? 'MET' : 'NOT MET'} (${fmt(mb, 1)} MB);${flat} CPU < 25 % of a core: ${f.cpuShare < 0.25 ? 'MET' : 'NOT MET'}`);
      }
    }
  } finally {
    removeTempDir(root);
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  scaleBench().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
