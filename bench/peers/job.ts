// The same job for the gateway and for Node-RED: poll N simulated Modbus TCP devices (r4dcb08,
// four holding registers read in one request) and publish each reading over MQTT, counted
// where it arrives: at a mosquitto_sub subscriber. CPU and memory are those of the process
// under test alone (/proc/<pid>), never the simulator's, the subscriber's or Mosquitto's.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { PACKAGE_ROOT } from '../../src/config/paths.js';
import { BenchMosquitto } from './mosquitto.js';
import { NodeRed, buildFlow, type NrDevice } from './node-red.js';
import { announcedPort, cpuSeconds, cpuTimes, freePort, memory, removeTempDir, sleep, tempDir, track, waitFor, waitPort, wakeups } from './util.js';
import { shippedNodeFlags } from '../scale.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const PROFILE = 'r4dcb08';
export const POINTS = ['fridge_1_temperature', 'fridge_2_temperature', 'freezer_temperature', 'sample_cabinet_temperature'];
/** Registers (and readings) per request: the r4dcb08's four channels, one request per poll. */
export const PER_REQUEST = POINTS.length;
/** Distinct unit ids served by the simulator; device i uses unit (i mod UNITS) + 1. */
const UNITS = 200;

/** gateway per-scan: the gateway with localBroker.live { perPoint: false, perScan: true }, one
 * message per scan, like Node-RED's per-read flow (one message per request). gateway parallel:
 * the default gateway with its bus' maxInFlight at the number of devices (at most 32), requests
 * to different unit ids on the connection at once, as the Node-RED flows do (their
 * modbus-client's parallelUnitIdsAllowed). */
export type System = 'gateway' | 'gateway parallel' | 'gateway per-scan' | 'node-red per-value' | 'node-red per-read';

const isGateway = (s: System): boolean => s.startsWith('gateway');

export interface JobOptions {
  system: System;
  devices: number;
  pollMs: number;
  /** true: one TCP connection per device (a bus each / a modbus-client each); false: all on one. */
  connectionPerDevice: boolean;
  warmupS: number;
  measureS: number;
  nodeRedDir?: string;
  /** Called with the pid under test just before the measured window opens; the function it
   * returns is awaited just after the window closes (bench/perf-profile.ts attaches perf here). */
  onMeasure?: (pid: number) => Promise<() => Promise<void>>;
}

export interface JobResult {
  system: System;
  devices: number;
  offeredReadingsPerS: number;
  readingsPerS: number;
  messagesPerS: number;
  modbusRequestsPerS: number;
  cpuS: number;
  cpuPct: number;
  cpuSPer100k: number;
  /** The user-space part (the rest is system time: sockets, SQLite's file writes). */
  userSPer100k: number;
  hwmMiB: number;
  rssMiB: number;
  /** The main thread's wake-ups from sleep per second (voluntary context switches). */
  wakeupsPerS: number;
  /** Mosquitto's CPU share in the Node-RED runs (the broker work that the gateway does in-process). */
  brokerCpuPct: number | null;
  brokerCpuSPer100k: number | null;
  simCpuPct: number;
  nonGood: number;
  sample: string;
  /** Seconds the gateway took to exit after SIGTERM (set once the run is cleaned up). */
  stopS: { value: number };
}

interface Spawned {
  proc: ChildProcess;
  out: string;
}

function spawnLogged(cmd: string, args: string[], opts: Parameters<typeof spawn>[2] = {}): Spawned {
  const proc = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts }));
  const s: Spawned = { proc, out: '' };
  const collect = (d: Buffer) => (s.out = (s.out + d.toString()).slice(-20_000));
  proc.stdout!.on('data', collect);
  proc.stderr!.on('data', collect);
  return s;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves to the milliseconds the exit took. */
async function stopProc(p: ChildProcess | undefined, graceMs = 5000): Promise<number> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return 0;
  const t0 = performance.now();
  await new Promise<void>((r) => {
    p.once('exit', () => r());
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), graceMs).unref();
  });
  return performance.now() - t0;
}

/** The built-in simulator in a process of its own. */
export async function startSimulator(units: number): Promise<{ proc: ChildProcess; port: number }> {
  const proc = track(spawn(process.execPath, [path.join(HERE, 'sim-process.js'), PROFILE, String(units)], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const port = await announcedPort(proc, 'simulator');
  return { proc, port };
}

/** A mosquitto_sub on `topic`: counts good readings (lines whose payload has quality good),
 * messages, and keeps the first lines as a sample. */
function subscriber(port: number, topic: string, mode: 'json' | 'per-read' | 'scan') {
  const proc = track(spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-t', topic, '-F', '%t %p'], { stdio: ['ignore', 'pipe', 'ignore'] }));
  const c = { proc, messages: 0, good: 0, other: 0, sample: '', connected: false };
  let rest = '';
  proc.stdout!.on('data', (d: Buffer) => {
    const lines = (rest + d.toString('utf8')).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      if (line.endsWith(' online') || line.endsWith(' offline') || line.includes('/bridge/')) continue;
      c.messages++;
      if (c.sample.length < 400) c.sample += `${line}\n`;
      if (mode === 'per-read') c.good += PER_REQUEST;
      else if (mode === 'scan') {
        // One message per scan: each point's reading inside it counts.
        const good = line.match(/"quality":"good"/g)?.length ?? 0;
        c.good += good;
        c.other += (line.match(/"quality":/g)?.length ?? 0) - good;
      } else if (line.includes('"quality":"good"')) c.good++;
      else c.other++;
    }
  });
  return c;
}

function gatewayConfig(dir: string, o: JobOptions, simPort: number, brokerPort: number, webPort: number, deadPort: number): string {
  const n = o.devices;
  const pad = (i: number) => String(i + 1).padStart(4, '0');
  const buses = o.connectionPerDevice
    ? Array.from({ length: n }, (_, i) => ({ id: `b${pad(i)}`, type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 1000 }))
    : [{ id: 'sim', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 1000, ...(o.system === 'gateway parallel' ? { maxInFlight: Math.min(32, n) } : {}) }];
  const devices = Array.from({ length: n }, (_, i) => ({
    id: `d${pad(i)}`,
    facility: 'canteen',
    profile: PROFILE,
    bus: o.connectionPerDevice ? `b${pad(i)}` : 'sim',
    unitId: (i % UNITS) + 1,
    pollMs: o.pollMs,
  }));
  const cfg = {
    site: { communityCode: '330106001001', gatewayId: 'gw-bench' },
    localBroker: { host: '127.0.0.1', port: brokerPort, anonymous: 'loopback', ...(o.system === 'gateway per-scan' ? { live: { perPoint: false, perScan: true } } : {}) },
    web: { host: '127.0.0.1', port: webPort, https: false },
    storage: { path: path.join(dir, 'gateway.db') },
    // No platform: aggregates wait in the outbox, as on a site whose uplink is down.
    uplink: { url: `mqtt://127.0.0.1:${deadPort}` },
    buses,
    devices,
    log: { level: 'error' },
  };
  const file = path.join(dir, 'site.yaml');
  fs.writeFileSync(file, stringify(cfg));
  return file;
}

export async function runJob(o: JobOptions): Promise<JobResult> {
  if (!o.connectionPerDevice && o.devices > UNITS) throw new Error(`one connection serves at most ${UNITS} unit ids`);
  const dir = tempDir('cgw-peers-job-');
  const cleanup: (() => Promise<void>)[] = [];
  // Filled in by the cleanup, after the figures are taken (the result object is shared).
  const stopS = { value: 0 };
  try {
    const sim = await startSimulator(Math.min(o.devices, UNITS));
    cleanup.push(async () => void (await stopProc(sim.proc)));
    let pid: number;
    let brokerPid: number | null = null;
    let sub: ReturnType<typeof subscriber>;
    let diag: () => string;
    if (isGateway(o.system)) {
      const brokerPort = await freePort();
      const file = gatewayConfig(dir, o, sim.port, brokerPort, await freePort(), await freePort());
      // As the bin and the systemd unit start it; BENCH_NODE_FLAGS replaces the flags (as in
      // npm run bench), e.g. "--perf-basic-prof" added by bench:profile; the unit's allocator setting too.
      const shipped = shippedNodeFlags(PACKAGE_ROOT);
      const flags = process.env.BENCH_NODE_FLAGS !== undefined ? process.env.BENCH_NODE_FLAGS.split(' ').filter(Boolean) : shipped.flags;
      const gw = spawnLogged(process.execPath, [...flags, path.join(PACKAGE_ROOT, 'dist/src/cli.js'), 'run', '--config', file], {
        cwd: dir,
        env: { ...process.env, ...shipped.env, LOG_LEVEL: 'error' },
      });
      cleanup.unshift(async () => {
        // The daemon promises to stop within 5 s of SIGTERM; give it 20 (a profile is written at exit).
        stopS.value = (await stopProc(gw.proc, 20_000)) / 1000;
      });
      diag = () => gw.out;
      await Promise.race([waitPort(brokerPort, 30_000), new Promise((_, rej) => gw.proc.once('exit', (c) => rej(new Error(`gateway exited (${c}):\n${gw.out}`))))]);
      pid = gw.proc.pid!;
      sub = subscriber(brokerPort, 'community/gw-bench/canteen/+/+', o.system === 'gateway per-scan' ? 'scan' : 'json');
    } else {
      const mosq = await BenchMosquitto.start();
      cleanup.push(() => mosq.stop());
      brokerPid = mosq.pid;
      const devices: NrDevice[] = Array.from({ length: o.devices }, (_, i) => ({ id: `d${String(i + 1).padStart(4, '0')}`, port: sim.port, unitId: (i % UNITS) + 1 }));
      const mode = o.system === 'node-red per-value' ? 'per-value' : 'per-read';
      const flow = buildFlow({ devices, clientPerDevice: o.connectionPerDevice, pollMs: o.pollMs, quantity: PER_REQUEST, points: POINTS, mqttPort: mosq.port, mode });
      sub = subscriber(mosq.port, 'nodered/#', mode === 'per-value' ? 'json' : 'per-read');
      const nr = await NodeRed.start(o.nodeRedDir!, flow);
      cleanup.unshift(() => nr.stop());
      diag = () => nr.log();
      pid = nr.pid;
    }
    cleanup.unshift(async () => void (await stopProc(sub.proc)));
    // Readings must flow before the clock starts.
    try {
      await waitFor(() => sub.good > 0, 60_000, 'the first reading at the subscriber');
    } catch (e) {
      throw new Error(`${o.system}: ${(e as Error).message}\n${diag()}`);
    }
    await sleep(o.warmupS * 1000);
    const endMeasure = o.onMeasure ? await o.onMeasure(pid) : undefined;
    const c0 = cpuTimes(pid);
    const w0 = wakeups(pid);
    const b0 = brokerPid ? cpuSeconds(brokerPid) : 0;
    const s0 = cpuSeconds(sim.proc.pid!);
    const g0 = sub.good;
    const m0 = sub.messages;
    const x0 = sub.other;
    const t0 = performance.now();
    await sleep(o.measureS * 1000);
    const secs = (performance.now() - t0) / 1000;
    const c1 = cpuTimes(pid);
    const w1 = wakeups(pid);
    await endMeasure?.();
    const userS = c1.user - c0.user;
    const cpuS = userS + c1.sys - c0.sys;
    const brokerCpu = brokerPid ? cpuSeconds(brokerPid) - b0 : 0;
    const simCpu = cpuSeconds(sim.proc.pid!) - s0;
    const readings = sub.good - g0;
    const messages = sub.messages - m0;
    const mem = memory(pid);
    return {
      system: o.system,
      devices: o.devices,
      offeredReadingsPerS: (o.devices * PER_REQUEST * 1000) / o.pollMs,
      readingsPerS: readings / secs,
      messagesPerS: messages / secs,
      modbusRequestsPerS: readings / PER_REQUEST / secs,
      cpuS,
      cpuPct: (100 * cpuS) / secs,
      cpuSPer100k: readings ? (cpuS / readings) * 1e5 : NaN,
      userSPer100k: readings ? (userS / readings) * 1e5 : NaN,
      hwmMiB: mem.hwm,
      rssMiB: mem.rss,
      wakeupsPerS: (w1 - w0) / secs,
      brokerCpuPct: brokerPid ? (100 * brokerCpu) / secs : null,
      brokerCpuSPer100k: brokerPid && readings ? (brokerCpu / readings) * 1e5 : null,
      simCpuPct: (100 * simCpu) / secs,
      nonGood: sub.other - x0,
      sample: sub.sample.split('\n').slice(0, 2).join(' | '),
      stopS,
    };
  } finally {
    for (const c of cleanup) await c().catch(() => undefined);
    removeTempDir(dir);
  }
}
