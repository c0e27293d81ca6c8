// npm run bench:fleet: a fleet of simulated gateways against one Mosquitto and 2-4 reference
// consumers into PostgreSQL (docs/SCALE.md, docs/PERFORMANCE.md "Fleet"). N gateways
// (FLEET_GATEWAYS, default 1,000), each the real Outbox (its own SQLite file) and the real
// Uplink, a few per process (bench/fleet/gateway-host.ts); the real Mosquitto 2 with
// persistence; FLEET_CONSUMERS (default 3) `community-gateway platform --group ingest`
// processes; a throwaway PostgreSQL 15. Phases:
//  1. paper load: the paper's 1,500 communities x 3 gateways x 1 message a minute (75 items/s)
//     spread over the N gateways, for FLEET_RUN_S (default 60) seconds: ingest, end-to-end
//     latency (item creation to received_at in PostgreSQL) p50/p99, CPU of consumers, broker,
//     PostgreSQL (all its processes) and the gateway hosts, from /proc/PID/stat.
//  2. saturation: steps of higher offered rates (FLEET_SAT_STEPS items/s, FLEET_SAT_S seconds
//     each): the highest rate PostgreSQL took in while keeping up is the sustained maximum.
//  3. outage: at the paper load, the broker is stopped for FLEET_OUTAGE_S (default 300)
//     seconds (the gateways' way in closed, bench/fleet/gate.ts), started again, the way in
//     opened once the consumers have subscribed again: the reconnect storm (CONNACKs a second,
//     counted at the gateways), the time until every outbox is drained and until PostgreSQL
//     holds every item made before the restart.
//  4. verification: appending stops, everything drains, and per gateway PostgreSQL must hold
//     seqs 1..appended exactly once (count(*) vs count(distinct seq) vs what it appended).
// The last line is FLEET_RESULT {json} (test/bench/fleet-quick.test.ts reads it).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { mosquittoVersion } from '../peers/mosquitto.js';
import { PgCluster } from '../peers/postgres.js';
import { cpuSeconds, fmt, restartablePort, sleep, track, waitFor } from '../peers/util.js';
import { FleetBroker } from './broker.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(HERE, '../../src/cli.js');

/** The paper's load: 1,500 communities x 3 gateways x 1 message a minute. */
export const PAPER = { communities: 1500, gatewaysPer: 3, perMin: 1 };
export const PAPER_ITEMS_PER_S = (PAPER.communities * PAPER.gatewaysPer * PAPER.perMin) / 60;

const num = (name: string, dflt: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v}: not a number`);
  return n;
};

export interface FleetOptions {
  gateways: number;
  consumers: number;
  runS: number;
  outageS: number;
  /** Offered items/s and items per append of each saturation step. */
  satSteps: { rate: number; batch: number }[];
  satS: number;
  perHost: number;
  /** Where the gateways' SQLite files go: /dev/shm by default (see gwDir()). */
  gwDir: string;
  gate: boolean;
}

function options(): FleetOptions {
  const consumers = num('FLEET_CONSUMERS', 3);
  if (consumers < 1 || consumers > 8) throw new Error('FLEET_CONSUMERS: 1..8 (the brief: 2-4)');
  return {
    gateways: Math.max(1, Math.floor(num('FLEET_GATEWAYS', 1000))),
    consumers,
    runS: num('FLEET_RUN_S', 60),
    outageS: num('FLEET_OUTAGE_S', 300),
    // RATE or RATExBATCH: items/s offered, and items per append (default FLEET_SAT_BATCH).
    satSteps: (process.env.FLEET_SAT_STEPS ?? '500x1,1000x1,2000x1,4000x20,8000x20,16000x20,32000x20')
      .split(',')
      .filter(Boolean)
      .map((x) => {
        const [r, b] = x.split('x');
        const rate = Number(r);
        const batch = b === undefined ? Math.max(1, Math.floor(num('FLEET_SAT_BATCH', 20))) : Number(b);
        if (!(rate > 0) || !(batch >= 1)) throw new Error(`FLEET_SAT_STEPS: ${x} is not RATE or RATExBATCH`);
        return { rate, batch: Math.floor(batch) };
      }),
    satS: num('FLEET_SAT_S', 20),
    gwDir: process.env.FLEET_GW_DIR ?? (fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir()),
    perHost: Math.max(1, num('FLEET_PER_HOST', 250)),
    gate: process.env.FLEET_GATE !== '0',
  };
}

/** The soft limit on open files (ulimit -n) that the children inherit. */
function openFilesLimit(): number {
  const m = /^Max open files\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return m?.[1] === 'unlimited' ? Infinity : Number(m?.[1] ?? NaN);
}

interface HostReport {
  t: number;
  rows: number;
  connected: number;
  appended: number;
  acked: number;
  messages: number;
  connects: number;
  failedConnects: number;
  shed: number;
  buckets: [number, number][];
}

class Host {
  last: HostReport | null = null;
  counts: [string, number, number][] | null = null;
  constructor(
    readonly proc: ChildProcess,
    readonly size: number,
    readonly connectBuckets: Map<number, number>,
  ) {
    proc.on('message', (m: { report?: HostReport; counts?: [string, number, number][] }) => {
      if (m.report) {
        this.last = m.report;
        for (const [s, n] of m.report.buckets) connectBuckets.set(s, (connectBuckets.get(s) ?? 0) + n);
      }
      if (m.counts) this.counts = m.counts;
    });
  }
}

class Consumer {
  out = '';
  subscribed = 0;
  constructor(readonly proc: ChildProcess) {
    const collect = (d: Buffer) => {
      const s = d.toString();
      this.subscribed += s.split('platform consumer subscribed').length - 1;
      this.out = (this.out + s).slice(-20_000);
    };
    proc.stdout!.on('data', collect);
    proc.stderr!.on('data', collect);
  }
}

/** CPU seconds of PostgreSQL, every process: the postmaster (with its reaped children's time)
 * and its live children. */
function pgCpu(dataDir: string): number {
  const pid = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const fields = (p: number) => {
    const s = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  };
  const f = fields(pid);
  let ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const c = fields(Number(d));
      if (Number(c[1]) === pid) ticks += Number(c[11]) + Number(c[12]);
    } catch {
      /* exited */
    }
  }
  return ticks / 100;
}

const safeCpu = (pid: number | undefined) => {
  try {
    return pid ? cpuSeconds(pid) : 0;
  } catch {
    return 0;
  }
};

interface CpuSnap {
  t: number;
  consumers: number;
  broker: number;
  pg: number;
  hosts: number;
  gate: number;
}

export interface PhaseFigures {
  name: string;
  seconds: number;
  /** Items per append (and per message while the uplink keeps up). */
  batch: number;
  offeredPerS: number;
  appendedPerS: number;
  ingestPerS: number;
  /** Item messages the gateways published (status messages apart). */
  messagesPerS: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxBacklog: number;
  /** The gateways made less than 90 % of what was offered (their processes are short of CPU). */
  generatorShort: boolean;
  cpuPct: { consumers: number; broker: number; pg: number; hosts: number; gate: number };
  keptUp: boolean;
}

function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export async function runFleet(o: FleetOptions): Promise<Record<string, unknown>> {
  const started = Date.now();
  const hostsN = Math.ceil(o.gateways / o.perHost);
  const perHostMax = Math.ceil(o.gateways / hostsN);
  // Mosquitto: a socket per gateway (and per consumer); the gate twice that; a host a socket
  // and three files (database, WAL, shm) per gateway it holds.
  const needFiles = Math.max(2 * o.gateways, 4 * perHostMax) + 256;
  const limit = openFilesLimit();
  if (limit < needFiles) {
    throw new Error(`ulimit -n is ${limit}: ${o.gateways} gateways need at least ${needFiles} open files (a socket each in Mosquitto and twice in the gate, a socket and 3 SQLite files each in a host of ${perHostMax}); run "ulimit -n ${Math.max(65536, needFiles)}" (as root, or raise the hard limit) and start again`);
  }
  const log = (s: string) => console.log(s);
  log(`community-gateway bench:fleet — ${new Date().toISOString()}`);
  log(`machine: ${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB; Node ${process.version}, Mosquitto ${mosquittoVersion()}, PostgreSQL 15; ulimit -n ${limit}`);
  log(`fleet: ${fmt(o.gateways)} gateways in ${hostsN} processes (the real Outbox, SQLite synchronous=FULL in ${o.gwDir}, and Uplink each), ${o.consumers} consumers (--group ingest), gate ${o.gate ? 'on' : 'off (gateways straight to Mosquitto)'}`);
  log(`phases: paper load ${o.runS} s (1 item per append); saturation ${o.satSteps.map((x) => `${fmt(x.rate)}/s x${x.batch}`).join(', ')} (items/s, items per append: a window of that many points), ${o.satS} s each; outage ${o.outageS} s`);
  const paperPerMin = (PAPER_ITEMS_PER_S * 60) / o.gateways;
  log(`paper load: ${PAPER.communities} communities x ${PAPER.gatewaysPer} gateways x ${PAPER.perMin} message/min = ${PAPER_ITEMS_PER_S} items/s; here ${paperPerMin.toFixed(2)} items/min per gateway`);

  const pgc = await PgCluster.start({ settings: { max_connections: '200', shared_buffers: '256MB' } });
  const dbUrl = pgc.url;
  const db = new pg.Pool({ connectionString: dbUrl, max: 2 });
  const broker = await FleetBroker.start();
  const children: ChildProcess[] = [];
  let gate: ChildProcess | null = null;
  let gatePort = broker.port;
  const gateCmd = async (cmd: 'open' | 'close') => {
    if (!gate) return;
    const g = gate;
    await new Promise<void>((resolve, reject) => {
      const on = (m: { done?: string; error?: string }) => {
        if (m.done === cmd) {
          g.off('message', on);
          resolve();
        } else if (m.error) reject(new Error(`gate: ${m.error}`));
      };
      g.on('message', on);
      g.send({ cmd });
    });
  };
  const consumers: Consumer[] = [];
  const hosts: Host[] = [];
  const connectBuckets = new Map<number, number>();
  const gwDirs: string[] = [];
  process.once('exit', () => {
    for (const d of gwDirs) fs.rmSync(d, { recursive: true, force: true });
  });
  try {
    if (o.gate) {
      gatePort = await restartablePort();
      gate = track(fork(path.join(HERE, 'gate.js'), [String(gatePort), String(broker.port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
      children.push(gate);
      await new Promise<void>((resolve, reject) => {
        gate!.once('message', () => resolve());
        gate!.once('exit', (c) => reject(new Error(`gate exited (${c})`)));
      });
    }
    // The consumers first (their persistent sessions and the shared subscription), then the fleet.
    for (let i = 0; i < o.consumers; i++) {
      const proc = track(
        spawn(process.execPath, [CLI, 'platform', '--url', `mqtt://127.0.0.1:${broker.port}`, '--db', dbUrl, '--group', 'ingest', '--client-id', `fleet-consumer-${i + 1}`], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, LOG_LEVEL: 'info' },
        }),
      );
      children.push(proc);
      consumers.push(new Consumer(proc));
    }
    await waitFor(() => consumers.every((c) => c.subscribed >= 1), 60_000, 'the consumers to subscribe').catch((e: Error) => {
      throw new Error(`${e.message}\n${consumers.map((c) => c.out.slice(-2000)).join('\n---\n')}`);
    });
    // The gateways' files in memory by default: each simulated box's fsyncs belong to its own
    // SD card, not to the platform's machine that hosts the simulation.
    const gwDir = fs.mkdtempSync(path.join(o.gwDir, 'cgw-fleet-gw-'));
    gwDirs.push(gwDir);
    const tStart = Date.now();
    for (let h = 0; h < hostsN; h++) {
      const first = h * perHostMax;
      const count = Math.min(perHostMax, o.gateways - first);
      const proc = track(
        fork(path.join(HERE, 'gateway-host.js'), [JSON.stringify({ url: `mqtt://127.0.0.1:${gatePort}`, first, count, dir: gwDir })], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          execArgv: [],
        }),
      );
      children.push(proc);
      hosts.push(new Host(proc, count, connectBuckets));
    }
    const connected = () => hosts.reduce((a, h) => a + (h.last?.connected ?? 0), 0);
    const rows = () => hosts.reduce((a, h) => a + (h.last?.rows ?? 0), 0);
    const appended = () => hosts.reduce((a, h) => a + (h.last?.appended ?? 0), 0);
    const messages = () => hosts.reduce((a, h) => a + (h.last?.messages ?? 0), 0);
    await waitFor(() => connected() === o.gateways, 180_000, `all ${o.gateways} gateways to connect`);
    const initialConnectS = (Date.now() - tStart) / 1000;
    const peakRate = (fromMs: number) => {
      let peak = 0;
      for (const [s, n] of connectBuckets) if (s * 1000 >= fromMs - 1000) peak = Math.max(peak, n);
      return peak;
    };
    const initialPeak = peakRate(tStart);
    log(`start: all ${fmt(o.gateways)} gateways connected in ${initialConnectS.toFixed(1)} s (peak ${fmt(initialPeak)} CONNACKs/s)`);

    const setRate = (perMin: number, batch = 1) => {
      for (const h of hosts) h.proc.send({ cmd: 'rate', perMin, batch });
    };
    const pgCount = async () => Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM items WHERE kind = 'agg'")).rows[0]!.n);
    const snap = (): CpuSnap => ({
      t: Date.now(),
      consumers: consumers.reduce((a, c) => a + safeCpu(c.proc.pid), 0),
      broker: broker.cpu(),
      pg: pgCpu(pgc.dataDir),
      hosts: hosts.reduce((a, h) => a + safeCpu(h.proc.pid), 0),
      gate: safeCpu(gate?.pid),
    });
    const pct = (a: CpuSnap, b: CpuSnap) => {
      const s = (b.t - a.t) / 1000;
      const p = (k: keyof Omit<CpuSnap, 't'>) => Math.round(((b[k] - a[k]) / s) * 1000) / 10;
      return { consumers: p('consumers'), broker: p('broker'), pg: p('pg'), hosts: p('hosts'), gate: p('gate') };
    };
    /** Everything appended is in PostgreSQL: true. False after `ms`, or once the outboxes are
     * empty and PostgreSQL has taken nothing in for 10 s (what is missing will not come). */
    const drain = async (ms: number) => {
      const until = Date.now() + ms;
      let seen = -1;
      let since = Date.now();
      for (;;) {
        await sleep(1000);
        const want = appended();
        const n = await pgCount();
        const fresh = hosts.every((h) => h.last && Date.now() - h.last.t < 3000);
        if (rows() === 0 && n >= want && fresh) return true;
        if (n !== seen || rows() > 0) {
          seen = n;
          since = Date.now();
        } else if (Date.now() - since > 10_000) return false;
        if (Date.now() > until) return false;
      }
    };
    const latency = async (fromMs: number, toMs: number) => {
      const r = await db.query<{ ms: number }>(
        "SELECT extract(epoch FROM (received_at - item_ts)) * 1000 AS ms FROM items WHERE kind = 'agg' AND item_ts >= to_timestamp($1 / 1000.0) AND item_ts < to_timestamp($2 / 1000.0) ORDER BY 1",
        [fromMs, toMs],
      );
      const v = r.rows.map((x) => Number(x.ms));
      return { p50: quantile(v, 0.5), p99: quantile(v, 0.99), n: v.length };
    };
    const phases: PhaseFigures[] = [];
    /** One measured phase at `offered` items/s for `seconds`. */
    const phase = async (name: string, offered: number, seconds: number, batch = 1): Promise<PhaseFigures> => {
      setRate((offered * 60) / o.gateways, batch);
      await sleep(Math.min(5000, seconds * 200)); // settle
      const c0 = snap();
      const n0 = await pgCount();
      const a0 = appended();
      const m0 = messages();
      let maxBacklog = 0;
      const until = Date.now() + seconds * 1000;
      while (Date.now() < until) {
        await sleep(500);
        maxBacklog = Math.max(maxBacklog, rows());
      }
      const c1 = snap();
      const n1 = await pgCount();
      const a1 = appended();
      const m1 = messages();
      const s = (c1.t - c0.t) / 1000;
      setRate(0);
      const drained = await drain(120_000);
      const lat = await latency(c0.t, c1.t);
      const f: PhaseFigures = {
        name,
        seconds: Math.round(s),
        batch,
        offeredPerS: offered,
        appendedPerS: Math.round((a1 - a0) / s),
        ingestPerS: Math.round((n1 - n0) / s),
        messagesPerS: Math.round((m1 - m0) / s),
        p50Ms: lat.p50 === null ? null : Math.round(lat.p50),
        p99Ms: lat.p99 === null ? null : Math.round(lat.p99),
        maxBacklog,
        cpuPct: pct(c0, c1),
        // The platform kept up with what the gateways made: took it in as fast, drained right
        // after, p99 under 5 s. (On a small machine the simulated fleet may not make all that
        // was offered: generatorShort, the platform's figure is then a lower bound.)
        keptUp: drained && (n1 - n0) / s >= 0.95 * ((a1 - a0) / s) && lat.p99 !== null && lat.p99 < 5000,
        generatorShort: (a1 - a0) / s < 0.9 * offered,
      };
      phases.push(f);
      const c = f.cpuPct;
      log(
        `${name.padEnd(22)} offered ${fmt(offered).padStart(6)}/s  appended ${fmt(f.appendedPerS).padStart(6)}/s  ingest ${fmt(f.ingestPerS).padStart(6)} items/s in ${fmt(f.messagesPerS).padStart(5)} msg/s  latency p50 ${f.p50Ms ?? '-'} ms p99 ${f.p99Ms ?? '-'} ms  max backlog ${fmt(maxBacklog)}  CPU % consumers ${c.consumers} broker ${c.broker} postgres ${c.pg} hosts ${c.hosts}${gate ? ` gate ${c.gate}` : ''}  ${f.keptUp ? 'kept up' : 'DID NOT keep up'}${f.generatorShort ? ' (the simulated gateways made less than offered)' : ''}${drained ? '' : ' (not drained within 120 s)'}`,
      );
      return f;
    };

    log(`\nphases (CPU in % of one core; latency: item creation at the gateway to received_at in PostgreSQL)`);
    const paperPhase = await phase('paper load', PAPER_ITEMS_PER_S, o.runS);
    for (const step of o.satSteps) await phase(`saturation x${step.batch}`, step.rate, o.satS, step.batch);
    const sustained = phases.filter((p) => p.keptUp).reduce((m, p) => Math.max(m, p.ingestPerS), 0);
    const peakIngest = phases.reduce((m, p) => Math.max(m, p.ingestPerS), 0);

    // 3. the outage, at the paper load.
    let outage: Record<string, unknown> | null = null;
    let outageArrivals: { arrivals: [number, number][]; count: () => Promise<number> } | null = null;
    if (o.outageS > 0) {
      setRate(paperPerMin);
      await sleep(5000);
      const resubscribed = consumers.map((c) => c.subscribed);
      const tDown = Date.now();
      await gateCmd('close');
      await broker.stop();
      log(`\noutage: broker stopped at ${new Date(tDown).toISOString()} for ${o.outageS} s (gateways keep appending ${paperPerMin.toFixed(2)}/min each)`);
      await waitFor(() => connected() === 0, 30_000, 'the gateways to see the broker gone').catch(() => undefined);
      await sleep(Math.max(0, tDown + o.outageS * 1000 - Date.now()));
      const backlogAtRestart = rows();
      // Items made before the restart: those with item_ts before it. How many there are is
      // known once the verification has found every item in PostgreSQL, so their arrival is
      // sampled now and read back then (pgCaughtUpS).
      const tRestart = Date.now();
      const beforeRestart = async () =>
        Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM items WHERE kind = 'agg' AND item_ts < to_timestamp($1 / 1000.0)", [tRestart])).rows[0]!.n);
      await broker.run();
      // The consumers subscribe again (each `connect`) before the gateways' way in opens.
      await waitFor(() => consumers.every((c, i) => c.subscribed > resubscribed[i]!), 30_000, 'the consumers to subscribe again');
      const consumersBackS = (Date.now() - tDown) / 1000 - o.outageS;
      await gateCmd('open');
      const tUp = Date.now();
      let allConnectedS: number | null = null;
      let drainedS: number | null = null;
      const arrivals: [number, number][] = [];
      let maxRows = backlogAtRestart;
      const threshold = Math.max(5, Math.ceil(PAPER_ITEMS_PER_S)); // about a second of new items in flight
      const deadline = tUp + Math.max(300_000, o.outageS * 2000);
      while (Date.now() < deadline && (allConnectedS === null || drainedS === null)) {
        await sleep(500);
        const t = (Date.now() - tUp) / 1000;
        maxRows = Math.max(maxRows, rows());
        if (allConnectedS === null && connected() === o.gateways) allConnectedS = t;
        if (drainedS === null && allConnectedS !== null && rows() <= threshold) drainedS = t;
        arrivals.push([t, await beforeRestart()]);
      }
      // A few seconds more of arrivals: the consumers may still be taking in what the broker holds.
      for (let k = 0; k < 10; k++) {
        await sleep(500);
        arrivals.push([(Date.now() - tUp) / 1000, await beforeRestart()]);
      }
      const peak = peakRate(tUp);
      const storm = [...connectBuckets.entries()].filter(([s]) => s * 1000 >= tUp - 1000).sort((a, b) => a[0] - b[0]);
      outageArrivals = { arrivals, count: beforeRestart };
      outage = {
        outageS: o.outageS,
        backlogAtRestart,
        consumersBackS: Math.round(consumersBackS * 10) / 10,
        allConnectedS,
        drainedS,
        pgCaughtUpS: null as number | null,
        peakConnPerS: peak,
        connectsInStorm: storm.reduce((a, [, n]) => a + n, 0),
        maxBacklog: maxRows,
      };
      log(`  backlog at restart ${fmt(backlogAtRestart)} items in ${fmt(o.gateways)} outboxes; consumers subscribed again ${consumersBackS.toFixed(1)} s after the restart began; way in opened then`);
      log(`  all gateways connected again after ${allConnectedS?.toFixed(1) ?? 'NOT within the deadline'} s; every outbox drained after ${drainedS?.toFixed(1) ?? 'NOT'} s`);
      log(`  peak connection rate ${fmt(peak)} CONNACKs/s (gateway side); ${fmt(outage.connectsInStorm as number)} connects in the storm; CONNACKs per second from the opening: ${storm.slice(0, 40).map(([s, n]) => `+${s - Math.floor(tUp / 1000)}:${n}`).join(' ')}${storm.length > 40 ? ' ...' : ''}`);
    }

    // 4. verification.
    setRate(0);
    const drained = await drain(300_000);
    for (const h of hosts) h.proc.send({ cmd: 'counts' });
    await waitFor(() => hosts.every((h) => h.counts !== null), 30_000, 'the hosts to report their counts');
    const per = await db.query<{ gateway_id: string; n: string; d: string; lo: string; hi: string }>(
      "SELECT gateway_id, count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi FROM items WHERE kind = 'agg' GROUP BY gateway_id",
    );
    const inDb = new Map(per.rows.map((r) => [r.gateway_id, r]));
    let missing = 0;
    let duplicated = 0;
    let extra = 0;
    let total = 0;
    let gatewaysShort = 0;
    for (const h of hosts) {
      for (const [id, n, lastSeq] of h.counts!) {
        total += n;
        const r = inDb.get(id);
        const d = Number(r?.d ?? 0);
        const c = Number(r?.n ?? 0);
        // A fresh outbox: the gateway's seqs are 1..n (lastSeq = n) and nothing else.
        if (lastSeq !== n) extra += Math.abs(lastSeq - n);
        if (d < n) {
          missing += n - d;
          gatewaysShort++;
        }
        if (Number(r?.hi ?? 0) > n) extra += Number(r!.hi) - n;
        duplicated += c - d;
      }
    }
    if (outage && outageArrivals) {
      // Every item is there now (if the verification passes): the items made before the restart
      // are counted, and the first sample that held them all is when PostgreSQL caught up.
      const all = await outageArrivals.count();
      const hit = outageArrivals.arrivals.find(([, n]) => n >= all);
      outage.pgCaughtUpS = hit ? hit[0] : null;
      outage.itemsBeforeRestart = all;
      log(`outage: PostgreSQL held all ${fmt(all)} items made before the restart ${hit ? `${hit[0].toFixed(1)} s after the way in opened` : 'NOT within the recovery window'}`);
    }
    const totalStored = Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM items WHERE kind = 'agg'")).rows[0]!.n);
    const statuses = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM statuses')).rows[0]!.n);
    const rejected = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM rejected')).rows[0]!.n);
    const shed = hosts.reduce((a, h) => a + (h.last?.shed ?? 0), 0);
    log(`\nverification: ${fmt(total)} items appended by ${fmt(o.gateways)} gateways, ${fmt(totalStored)} rows in PostgreSQL; missing ${missing} (${gatewaysShort} gateways short), duplicated ${duplicated}, unexpected ${extra}, rejected ${rejected}, shed ${shed}; ${fmt(statuses)} status messages stored${drained ? '' : '; NOT drained (PostgreSQL stopped taking items in before it held them all, or 300 s passed)'}`);
    const ok = drained && missing === 0 && duplicated === 0 && extra === 0 && rejected === 0 && shed === 0;
    const paperHeadroom = sustained / PAPER_ITEMS_PER_S;
    log(`sustained ingest: at most ${fmt(sustained)} items/s kept up (peak ${fmt(peakIngest)} items/s taken in) = ${paperHeadroom.toFixed(1)} x the paper load of ${PAPER_ITEMS_PER_S} items/s`);
    log(`paper load figures: latency p50 ${paperPhase.p50Ms} ms, p99 ${paperPhase.p99Ms} ms; CPU consumers ${paperPhase.cpuPct.consumers} %, broker ${paperPhase.cpuPct.broker} %, PostgreSQL ${paperPhase.cpuPct.pg} %`);
    log(`result: ${ok ? 'every seq arrived exactly once' : 'FAILED: not every seq arrived exactly once'}; ${((Date.now() - started) / 1000).toFixed(0)} s in all`);
    const result = {
      ok,
      gateways: o.gateways,
      consumers: o.consumers,
      hosts: hostsN,
      gate: o.gate,
      initialConnectS,
      initialPeakConnPerS: initialPeak,
      paperItemsPerS: PAPER_ITEMS_PER_S,
      phases,
      sustainedItemsPerS: sustained,
      peakIngestItemsPerS: peakIngest,
      paperHeadroom,
      outage,
      verification: { appended: total, stored: totalStored, missing, duplicated, extra, rejected, shed, gatewaysShort, drained, statuses },
    };
    log(`FLEET_RESULT ${JSON.stringify(result)}`);
    return result;
  } finally {
    for (const h of hosts) if (h.proc.connected) h.proc.send({ cmd: 'exit' });
    await Promise.race([Promise.all(hosts.map((h) => new Promise((r) => (h.proc.exitCode !== null ? r(null) : h.proc.once('exit', r))))), sleep(10_000)]);
    for (const c of consumers) c.proc.kill('SIGTERM');
    await Promise.race([Promise.all(consumers.map((c) => new Promise((r) => (c.proc.exitCode !== null ? r(null) : c.proc.once('exit', r))))), sleep(10_000)]);
    for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
    await db.end().catch(() => undefined);
    await broker.stop();
    await pgc.destroy();
    for (const d of gwDirs) fs.rmSync(d, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runFleet(options()).then(
    (r) => process.exit(r.ok ? 0 : 1),
    (err: Error) => {
      console.error(`bench:fleet: ${err.message}`);
      process.exit(2);
    },
  );
}
