// npm run bench:profile: where the CPU goes in the bench:peers 1a job, by package and by task.
// Runs the job (bench/peers/job.ts runJob) with the process under test started with
// --perf-basic-prof, attaches `perf record -e cpu-clock -g` to it for the measured window only,
// and classifies the `perf script` output (bench/perf-classify.ts). cpu-clock samples a thread
// only while it is on a CPU, so the shares are CPU time; `node --cpu-prof` also samples a
// thread blocked in write or fsync (wall time), which is why profile-gateway.ts was retired.
// Usage: npm run bench:profile -- [--system gateway|gateway-parallel|gateway-per-scan|node-red-per-value|node-red-per-read]
//          [--devices 20] [--layout one|each] [--seconds 20] [--warmup 5] [--poll-ms 100] [--keep DIR]
// (the defaults are section 1a's; --keep DIR keeps perf.data, perf.script and perf.map there)
// Node-RED: BENCH_NODE_RED_DIR reuses an install (as in bench:peers). Needs perf (Debian:
// apt-get install -y linux-perf) and, unless root, kernel.perf_event_paranoid <= 1.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GATEWAY_TASKS, NODE_RED_TASKS, PerfMap, classifyPerfScript, formatReport } from './perf-classify.js';
import { runJob, type System } from './peers/job.js';
import { installNodeRed } from './peers/node-red.js';
import { fmt, removeTempDir, sleep, tempDir, track } from './peers/util.js';
import { shippedNodeFlags } from './scale.js';
import { PACKAGE_ROOT } from '../src/config/paths.js';

const FREQ = 999;
const SYSTEMS: Record<string, System> = { gateway: 'gateway', 'gateway-parallel': 'gateway parallel', 'gateway-per-scan': 'gateway per-scan', 'node-red-per-value': 'node-red per-value', 'node-red-per-read': 'node-red per-read' };

function args(): { system: System; devices: number; layout: 'one' | 'each'; seconds: number; warmup: number; pollMs: number; keep: string | undefined } {
  const a = process.argv.slice(2);
  const get = (name: string, dflt: string): string => {
    const i = a.indexOf(`--${name}`);
    return i >= 0 && a[i + 1] !== undefined ? a[i + 1]! : dflt;
  };
  for (const x of a) if (x.startsWith('--') && !['--system', '--devices', '--layout', '--seconds', '--warmup', '--poll-ms', '--keep'].includes(x)) throw new Error(`unknown option ${x}`);
  const system = SYSTEMS[get('system', 'gateway')];
  if (!system) throw new Error(`--system: one of ${Object.keys(SYSTEMS).join(', ')}`);
  const layout = get('layout', 'one');
  if (layout !== 'one' && layout !== 'each') throw new Error('--layout: one or each');
  const keep = a.includes('--keep') ? get('keep', '') : undefined;
  return { system, devices: Number(get('devices', '20')), layout, seconds: Number(get('seconds', '20')), warmup: Number(get('warmup', '5')), pollMs: Number(get('poll-ms', '100')), keep: keep || undefined };
}

/** perf must exist and be allowed to sample another process with kernel stacks. */
function checkPerf(): string {
  const r = spawnSync('perf', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error('perf not found: on Debian, apt-get install -y linux-perf (as root)');
  const read = (k: string) => fs.readFileSync(`/proc/sys/kernel/${k}`, 'utf8').trim();
  const paranoid = Number(read('perf_event_paranoid'));
  const kptr = Number(read('kptr_restrict'));
  const root = process.getuid?.() === 0;
  // Root (CAP_PERFMON) is not bound by perf_event_paranoid; others need <= 1 for kernel frames.
  if (!root && paranoid > 1) throw new Error(`kernel.perf_event_paranoid is ${paranoid}: run as root or sysctl -w kernel.perf_event_paranoid=1`);
  // kptr_restrict 2 hides kernel symbols even from root: kernel frames become [unknown].
  if (kptr >= 2 || (!root && kptr >= 1)) console.warn(`warning: kernel.kptr_restrict is ${kptr}: kernel symbols unreadable (sysctl -w kernel.kptr_restrict=0), syscalls will not be named`);
  return `${r.stdout.trim()}, perf_event_paranoid ${paranoid}, kptr_restrict ${kptr}${root ? ', as root' : ''}`;
}

interface Recording {
  proc: ChildProcess;
  err: string;
}

async function startPerf(pid: number, file: string): Promise<Recording> {
  // -p follows every thread the process has when perf attaches (main, libuv pool, V8 workers).
  const proc = track(spawn('perf', ['record', '-e', 'cpu-clock', '-F', String(FREQ), '-g', '-k', 'mono', '-p', String(pid), '-o', file], { stdio: ['ignore', 'ignore', 'pipe'] }));
  const rec: Recording = { proc, err: '' };
  proc.stderr!.on('data', (d: Buffer) => (rec.err += d.toString()));
  // perf prints nothing once attached; give it a moment and make sure it did not fail.
  await sleep(300);
  if (proc.exitCode !== null) throw new Error(`perf record exited (${proc.exitCode}):\n${rec.err}`);
  return rec;
}

async function stopPerf(rec: Recording): Promise<void> {
  await new Promise<void>((resolve) => {
    if (rec.proc.exitCode !== null) return resolve();
    rec.proc.once('exit', () => resolve());
    rec.proc.kill('SIGINT');
  });
}

async function main(): Promise<void> {
  const o = args();
  const perfInfo = checkPerf();
  const dir = o.keep ?? tempDir('cgw-perf-profile-');
  fs.mkdirSync(dir, { recursive: true });
  const data = path.join(dir, 'perf.data');
  // --interpreted-frames-native-stack: functions still in the interpreter get a frame of their
  // own in the perf map instead of all sharing Builtins_InterpreterEntryTrampoline.
  const perfFlags = '--perf-basic-prof --interpreted-frames-native-stack';
  process.env.BENCH_NODE_FLAGS = `${process.env.BENCH_NODE_FLAGS ?? shippedNodeFlags(PACKAGE_ROOT).flags.join(' ')} ${perfFlags}`;
  process.env.BENCH_NODE_RED_FLAGS = `${process.env.BENCH_NODE_RED_FLAGS ?? ''} ${perfFlags}`;
  let nodeRedDir: string | undefined;
  if (!o.system.startsWith('gateway')) {
    nodeRedDir = process.env.BENCH_NODE_RED_DIR ?? tempDir('cgw-perf-node-red-');
    installNodeRed(nodeRedDir);
  }
  let pid = 0;
  let rec: Recording | undefined;
  let mapFile = '';
  let mapText = '';
  // The perf map's length over the window, to date its entries (see PerfMap).
  const sizes: { t: number; size: number }[] = [];
  let poll: NodeJS.Timeout | undefined;
  const pollMap = () => sizes.push({ t: Number(process.hrtime.bigint()) / 1e9, size: fs.statSync(mapFile).size });
  console.log(`community-gateway bench:profile — ${new Date().toISOString()}; ${perfInfo}; Node ${process.version}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  try {
    const r = await runJob({
      system: o.system,
      devices: o.devices,
      pollMs: o.pollMs,
      connectionPerDevice: o.layout === 'each',
      warmupS: o.warmup,
      measureS: o.seconds,
      nodeRedDir,
      onMeasure: async (p) => {
        pid = p;
        mapFile = `/tmp/perf-${p}.map`;
        pollMap();
        poll = setInterval(pollMap, 20);
        rec = await startPerf(p, data);
        return async () => {
          await stopPerf(rec!);
          clearInterval(poll);
          pollMap();
          // The map as it was when the window closed: later entries cannot be the code sampled.
          mapText = fs.readFileSync(mapFile, 'utf8');
        };
      },
    });
    console.log(
      `${o.system}, ${o.devices} devices (${o.layout === 'each' ? 'a connection each' : 'one connection'}), poll ${o.pollMs} ms, ${o.seconds} s under perf (${perfFlags}): ` +
        `${fmt(r.readingsPerS)} readings/s of ${fmt(r.offeredReadingsPerS)} offered, CPU ${r.cpuPct.toFixed(1)} % of a core (/proc), ${r.cpuSPer100k.toFixed(2)} CPU s per 100,000 readings`,
    );
    const script = spawnSync('perf', ['script', '-i', data, '-F', 'comm,pid,tid,time,period,event,ip,sym,symoff,dso', '--no-inline'], { encoding: 'utf8', maxBuffer: 2 ** 31 - 1 });
    if (script.status !== 0) throw new Error(`perf script failed (${script.status}):\n${script.stderr}`);
    if (o.keep) fs.writeFileSync(path.join(dir, 'perf.script'), script.stdout);
    if (o.keep) fs.writeFileSync(path.join(dir, 'perf.map'), mapText);
    if (o.keep) fs.writeFileSync(path.join(dir, 'map-sizes.json'), JSON.stringify({ pid, sizes }));
    const report = classifyPerfScript(script.stdout, { pid, tasks: o.system.startsWith('gateway') ? GATEWAY_TASKS : NODE_RED_TASKS, map: new PerfMap(mapText, sizes) });
    // cpu-clock at FREQ Hz: samples / FREQ should match the CPU seconds /proc counted.
    const sampledS = report.totalPeriodNs / 1e9;
    console.log(`samples: ${fmt(report.samples)} (${sampledS.toFixed(2)} CPU s sampled; /proc counted ${r.cpuS.toFixed(2)} s in the window)`);
    console.log(formatReport(report));
  } finally {
    clearInterval(poll);
    // --perf-basic-prof leaves /tmp/perf-PID.map behind; perf script has read it by now.
    if (mapFile) fs.rmSync(mapFile, { force: true });
    if (rec) await stopPerf(rec);
    if (!o.keep) removeTempDir(dir);
    if (nodeRedDir && !process.env.BENCH_NODE_RED_DIR) removeTempDir(nodeRedDir);
  }
}

await main();
process.exit(0);
