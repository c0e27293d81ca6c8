// Outbox and uplink figures: durable append rate, drain rate of a 1,000,000-row backlog into
// Mosquitto on loopback (with one QoS 1 subscriber), and the daemon's RSS while it holds and
// drains that backlog. Runs the real CLI daemon for the last two.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { openDatabase } from '../src/store/database.js';
import { Outbox, type OutboxItem } from '../src/store/outbox.js';
import { silentLogger } from '../src/log.js';
import { PACKAGE_ROOT } from '../src/config/paths.js';
import { cpuSeconds, daemonMemory, freePort, memory, sleep, waitPort } from './peers/util.js';
import { shippedNodeFlags } from './scale.js';

/** The flags `npm start` and the unit run the daemon with. */
const SHIPPED = shippedNodeFlags(PACKAGE_ROOT);

const log = silentLogger();

function aggItem(i: number): OutboxItem {
  const ws = 1795719600000 + Math.floor(i / 20) * 60000;
  return {
    kind: 'agg',
    ts: ws + 60000,
    body: JSON.stringify({ type: 'point', windowStart: ws, windowSeconds: 60, facility: 'canteen', device: `fridge-${i % 20}`, point: 'fridge_1_temperature', unit: '°C', kind: 'gauge', count: 12, bad: 0, mean: 4.1234, min: 3.9, max: 4.4, sum: 49.4808, last: 4.2 }),
  };
}

export function appendRates(): { single: number; batched: number; bodyBytes: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-bench-outbox-'));
  const db = openDatabase(path.join(dir, 'o.db'));
  const ob = new Outbox(db, { maxRows: 10_000_000, maxBytes: 8 * 1024 ** 3 }, log);
  ob.start();
  let t = performance.now();
  const n1 = 2000;
  for (let i = 0; i < n1; i++) ob.append([aggItem(i)]);
  const single = n1 / ((performance.now() - t) / 1000);
  t = performance.now();
  const n2 = 200_000;
  for (let i = 0; i < n2; i += 100) ob.append(Array.from({ length: 100 }, (_, k) => aggItem(i + k)));
  const batched = n2 / ((performance.now() - t) / 1000);
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { single, batched, bodyBytes: Buffer.byteLength(aggItem(0).body) };
}

function makeBacklog(file: string, n: number): void {
  const db = openDatabase(file);
  const ob = new Outbox(db, { maxRows: 10_000_000, maxBytes: 8 * 1024 ** 3 }, log);
  ob.start();
  for (let i = 0; i < n; i += 5000) ob.append(Array.from({ length: Math.min(5000, n - i) }, (_, k) => aggItem(i + k)));
  db.close();
}

async function memoryParts(pid: number, webPort: number): Promise<DrainResult['peakParts']> {
  const { anon, file } = memory(pid);
  const { heapUsed, external } = await daemonMemory(webPort);
  return { anon, file, heapUsed, external };
}

export interface DrainResult {
  n: number;
  build: number;
  /** VmRSS holding the backlog, platform down, just before the drain; MiB. */
  idleRss: number;
  /** VmHWM from the daemon's start to the drain: the start-up peak; MiB. */
  startHwm: number;
  /** VmHWM from the drain's start to its end (the kernel's own peak, reset when the broker
   * starts, so no sampling gap can miss it); MiB. */
  peakRss: number;
  /** At the highest sampled VmRSS (every 100 ms), MiB. */
  peakParts: { anon: number; file: number; heapUsed: number; external: number };
  seconds: number;
  rate: number;
  /** The daemon's user + system CPU during the drain, microseconds per aggregate. */
  cpuUsPerItem: number;
  received: number;
}

function rows(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

export async function drainBench(n: number): Promise<DrainResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-bench-drain-'));
  const dbFile = path.join(dir, 'gateway.db');
  let t = performance.now();
  makeBacklog(dbFile, n);
  const build = (performance.now() - t) / 1000;
  const port = await freePort();
  const webPort = await freePort();
  const cfg = {
    site: { communityCode: '330106001001', gatewayId: 'gw-bench' },
    localBroker: { host: '127.0.0.1', port: await freePort() },
    web: { host: '127.0.0.1', port: webPort, https: false },
    storage: { path: dbFile },
    uplink: { url: `mqtt://127.0.0.1:${port}`, reconnectMinMs: 200, reconnectMaxMs: 1000 },
  };
  fs.writeFileSync(path.join(dir, 'site.yaml'), stringify(cfg));
  // Run as installed: the bin's shebang and the systemd unit pass the same V8 flag. Only the
  // daemon is measured: Mosquitto and the subscriber are processes of their own.
  const flags = (process.env.BENCH_NODE_FLAGS ?? SHIPPED.flags.join(' ')).split(' ').filter(Boolean);
  const daemon = spawn(process.execPath, [...flags, path.join(PACKAGE_ROOT, 'dist/src/cli.js'), 'run', '--config', path.join(dir, 'site.yaml')], {
    // BENCH_DRAIN_DAEMON_OUT: a file for the daemon's stdout and stderr (e.g. with --trace-gc).
    stdio: process.env.BENCH_DRAIN_DAEMON_OUT ? ['ignore', fs.openSync(process.env.BENCH_DRAIN_DAEMON_OUT, 'w'), 'inherit'] : 'ignore',
    // The unit's allocator settings too (package.json "start", as systemd/community-gateway.service); BENCH_MALLOC=default leaves glibc's.
    env: { ...process.env, LOG_LEVEL: 'error', ...(process.env.BENCH_MALLOC === 'default' ? {} : SHIPPED.env) },
  });
  const procs: ChildProcess[] = [daemon];
  try {
    // Holding the backlog, platform unreachable; BENCH_DRAIN_IDLE_S longer lets start-up settle.
    await sleep(Number(process.env.BENCH_DRAIN_IDLE_S ?? 5) * 1000);
    const idleRss = memory(daemon.pid!).rss;
    // From here VmHWM is the drain's own peak (Linux >= 4.0: "5" resets the peak RSS).
    const startHwm = memory(daemon.pid!).hwm;
    fs.writeFileSync(`/proc/${daemon.pid!}/clear_refs`, '5');
    fs.writeFileSync(
      path.join(dir, 'mosquitto.conf'),
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 0\n${process.getuid?.() === 0 ? 'user root\n' : ''}`,
    );
    const broker = spawn('/usr/sbin/mosquitto', ['-c', path.join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
    procs.push(broker);
    await waitPort(port, 10_000);
    let received = 0;
    const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', 'fc/#', '-F', '%t'], { stdio: ['ignore', 'pipe', 'ignore'] });
    procs.push(sub);
    sub.stdout!.on('data', (d: Buffer) => {
      for (const b of d) if (b === 10) received++;
    });
    let sampledPeak = 0;
    let peakParts = await memoryParts(daemon.pid!, webPort);
    const cpu0 = cpuSeconds(daemon.pid!);
    t = performance.now();
    let left = n;
    let firstDrop = 0;
    const trace = process.env.BENCH_DRAIN_TRACE === '1';
    while (left > 0 && performance.now() - t < 300_000) {
      await sleep(100);
      const m = memory(daemon.pid!);
      if (m.rss > sampledPeak) {
        sampledPeak = m.rss;
        peakParts = await memoryParts(daemon.pid!, webPort);
      }
      if (trace) {
        const d = await daemonMemory(webPort);
        console.error(`t=${((performance.now() - t) / 1000).toFixed(1)} left=${left} rss=${m.rss.toFixed(1)} hwm=${m.hwm.toFixed(1)} anon=${m.anon.toFixed(1)} file=${m.file.toFixed(1)} heapUsed=${d.heapUsed.toFixed(1)} heapTotal=${d.heapTotal.toFixed(1)} ext=${d.external.toFixed(1)}`);
      }
      left = rows(dbFile);
      if (!firstDrop && left < n) firstDrop = performance.now();
    }
    const cpu = cpuSeconds(daemon.pid!) - cpu0;
    const peakRss = memory(daemon.pid!).hwm;
    const seconds = (performance.now() - (firstDrop || t)) / 1000;
    return { n, build, idleRss, startHwm, peakRss, peakParts, seconds, rate: n / seconds, cpuUsPerItem: (cpu / n) * 1e6, received };
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
