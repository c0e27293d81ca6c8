// npm run bench:peers: the gateway against its peers on this machine (docs/PERFORMANCE.md,
// "Against peers"):
//  1. the same job done by the gateway (the real CLI daemon) and by Node-RED with
//     node-red-contrib-modbus and mqtt out: poll simulated Modbus TCP devices, publish each
//     reading over MQTT, counted at a subscriber. CPU seconds per 100,000 readings and peak
//     RSS of the process under test at a fixed load, then readings per second at saturation.
//  2. broker fan-out: the embedded aedes broker against Mosquitto (bench/broker-fanout.ts).
// Node-RED is installed into a temporary folder (BENCH_NODE_RED_DIR reuses a folder and keeps
// it). BENCH_PEERS_SECTIONS=fixed,saturation,fanout picks sections (default all three);
// "fixed" includes 1c, the fixed and per-reading parts of the CPU. BENCH_PEERS_PASSES (default
// 3) repeats 1a in alternating order and takes each system's median.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { brokerFanoutBench } from '../broker-fanout.js';
import { mosquittoVersion } from './mosquitto.js';
import { installNodeRed } from './node-red.js';
import { PER_REQUEST, PROFILE, runJob, type JobResult, type System } from './job.js';
import { fmt, removeTempDir, tempDir } from './util.js';

const sections = new Set((process.env.BENCH_PEERS_SECTIONS ?? 'fixed,saturation,fanout').split(','));
const FIXED_DEVICES = 20;
const POLL_MS = 100; // the gateway's minimum pollMs
/** Passes of 1a (BENCH_PEERS_PASSES); each system's figure is its median run. */
const PASSES = Math.max(1, Number(process.env.BENCH_PEERS_PASSES ?? 3));
const SATURATION_STEPS = (process.env.BENCH_PEERS_SATURATION ?? '100,200,300,400,600,800').split(',').map(Number);

function cpuModel(): string {
  const r = spawnSync('lscpu', [], { encoding: 'utf8' });
  return /Model name:\s*(.+)/.exec(r.stdout ?? '')?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU';
}

/** The run with the median CPU per reading (the lower middle one of an even count). */
function medianRun(rs: JobResult[]): JobResult {
  return [...rs].sort((a, b) => a.cpuSPer100k - b.cpuSPer100k)[Math.floor((rs.length - 1) / 2)]!;
}

function row(r: JobResult): string {
  return [
    r.system.padEnd(20),
    fmt(r.devices).padStart(7),
    fmt(r.offeredReadingsPerS).padStart(9),
    fmt(r.readingsPerS).padStart(10),
    fmt(r.messagesPerS).padStart(10),
    `${r.cpuPct.toFixed(0)} %`.padStart(6),
    `${r.cpuSPer100k.toFixed(2)} (${r.userSPer100k.toFixed(2)})`.padStart(16),
    r.hwmMiB.toFixed(1).padStart(9),
    (r.brokerCpuPct === null ? '-' : `${r.brokerCpuPct.toFixed(0)} % / ${r.brokerCpuSPer100k!.toFixed(2)}`).padStart(16),
    `${r.simCpuPct.toFixed(0)} %`.padStart(6),
    fmt(r.wakeupsPerS).padStart(8),
    r.nonGood ? `  (${fmt(r.nonGood)} non-good readings)` : '',
    r.stopS.value > 5 ? `  (took ${r.stopS.value.toFixed(1)} s to stop after SIGTERM)` : '',
  ].join(' ');
}

const HEAD = '   system               devices  offered readings/s messages/s    CPU CPU s/100k (user)  VmHWM MiB Mosquitto CPU, s/100k  sim CPU wakeups/s';

async function main(): Promise<void> {
  const started = Date.now();
  console.log(`community-gateway bench:peers — ${new Date().toISOString()}`);
  console.log(`machine: ${cpuModel()}, ${os.cpus().length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`Node ${process.version}, Mosquitto ${mosquittoVersion()}`);
  let nrDir = process.env.BENCH_NODE_RED_DIR;
  const tempNr = !nrDir;
  nrDir ??= tempDir('cgw-peers-node-red-');
  try {
    if (sections.has('fixed') || sections.has('saturation')) {
      const inst = installNodeRed(nrDir);
      console.log(`Node-RED ${inst.nodeRed}, node-red-contrib-modbus ${inst.contribModbus} (installed into ${nrDir} in ${inst.seconds.toFixed(0)} s)`);
    }
    const per = (a: JobResult, b: JobResult) => a.cpuSPer100k / b.cpuSPer100k;
    if (sections.has('fixed')) {
      console.log(`\n1a. the same job at a fixed load: ${FIXED_DEVICES} simulated ${PROFILE} devices (${PER_REQUEST} holding registers, one request per poll) on one TCP connection, poll ${POLL_MS} ms`);
      console.log('    gateway: one MQTT message per reading on its embedded broker; node-red per-value: a function node decodes and');
      console.log('    sends one message per register (the same JSON as the gateway) to Mosquitto; node-red per-read: modbus-read\'s');
      console.log(`    array of ${PER_REQUEST} values straight to mqtt out (one message per request, counted as ${PER_REQUEST} readings).`);
      console.log('    Counted at a mosquitto_sub subscriber: gateway and per-value only readings with quality "good".');
      console.log(`    Node-RED's modbus-client sends to different unit ids at once (parallelUnitIdsAllowed); gateway parallel does the same (bus maxInFlight ${Math.min(32, FIXED_DEVICES)}), gateway is the default (one request at a time).`);
      console.log(HEAD);
      // Side by side in one run, in passes of alternating order (ABCD DCBA ABCD): on a shared
      // or throttled VM one system's run can be 1.5x dearer than the next minute's, so each
      // system's figure is its median over the passes and the ratios are taken from those.
      const systems: System[] = ['gateway', 'gateway parallel', 'gateway per-scan', 'node-red per-value', 'node-red per-read'];
      const runs = new Map<System, JobResult[]>(systems.map((x) => [x, []]));
      for (let pass = 0; pass < PASSES; pass++) {
        for (const system of pass % 2 === 0 ? systems : [...systems].reverse()) {
          const r = await runJob({ system, devices: FIXED_DEVICES, pollMs: POLL_MS, connectionPerDevice: false, warmupS: 5, measureS: 20, nodeRedDir: nrDir });
          runs.get(system)!.push(r);
          console.log(row(r) + (PASSES > 1 ? `  (pass ${pass + 1})` : ''));
          if (pass === 0) console.log(`      sample: ${r.sample}`);
        }
      }
      const results = systems.map((x) => medianRun(runs.get(x)!));
      if (PASSES > 1) {
        const pvRuns = runs.get('node-red per-value')!;
        const byPass = (x: System) => runs.get(x)!.map((g, i) => per(g, pvRuns[i]!).toFixed(3)).join(', ');
        console.log(`   medians of ${PASSES} passes below; / Node-RED per-value pass by pass: gateway ${byPass('gateway')}; gateway parallel ${byPass('gateway parallel')}`);
      }
      const [gw, gp, gs, pv, pr] = results as [JobResult, JobResult, JobResult, JobResult, JobResult];
      const verdict = (ok: boolean) => (ok ? 'MET' : 'NOT MET');
      console.log(`   CPU per reading, gateway (per-point messages, the default) / Node-RED per-value: ${per(gw, pv).toFixed(3)}   target <= 0.4: ${verdict(per(gw, pv) <= 0.4)} (goal beyond: 0.2)`);
      console.log(`   CPU per reading, gateway / Node-RED per-read: ${per(gw, pr).toFixed(3)}   target < 1: ${verdict(per(gw, pr) < 1)}`);
      console.log(`   with requests to different units at once, as Node-RED's client does (bus maxInFlight): / per-value ${per(gp, pv).toFixed(3)}   target <= 0.4: ${verdict(per(gp, pv) <= 0.4)}; / per-read ${per(gp, pr).toFixed(3)}`);
      console.log(`   with one message per scan (localBroker.live.perScan, perPoint off): / per-value ${per(gs, pv).toFixed(3)}, / per-read ${per(gs, pr).toFixed(3)} (the like-for-like with per-read: one message per request)`);
      const withBroker = (r: JobResult) => r.cpuSPer100k + (r.brokerCpuSPer100k ?? 0);
      console.log(`   the same counting Mosquitto's CPU with Node-RED's (the gateway's broker runs inside the gateway's process): ${(gw.cpuSPer100k / withBroker(pv)).toFixed(3)} (per-value), ${(gw.cpuSPer100k / withBroker(pr)).toFixed(3)} (per-read)`);
      console.log(`   peak RSS, gateway / Node-RED: ${(gw.hwmMiB / pv.hwmMiB).toFixed(2)} (per-value), ${(gw.hwmMiB / pr.hwmMiB).toFixed(2)} (per-read)   target < 1: ${verdict(gw.hwmMiB < Math.min(pv.hwmMiB, pr.hwmMiB))}`);

      // The CPU per reading above mixes a fixed cost (timers, SQLite commits, the process
      // itself) with the cost of each reading: one device apart from twenty splits the two.
      console.log(`\n1c. fixed and per-reading cost: the same job with 1 device, against the ${FIXED_DEVICES} above`);
      console.log(HEAD);
      for (const [system, many] of [['gateway', gw], ['node-red per-value', pv]] as [System, JobResult][]) {
        const one = await runJob({ system, devices: 1, pollMs: POLL_MS, connectionPerDevice: false, warmupS: 5, measureS: 20, nodeRedDir: nrDir });
        console.log(row(one));
        const total = (r: JobResult) => r.cpuPct + (r.brokerCpuPct ?? 0);
        const usPerReading = ((total(many) - total(one)) / 100 / (many.readingsPerS - one.readingsPerS)) * 1e6;
        console.log(`      ${system}${system === 'gateway' ? '' : ' + Mosquitto'}: ${total(one).toFixed(2)} % of a core with 1 device; each further reading ${usPerReading.toFixed(0)} µs of CPU`);
      }
    }
    if (sections.has('saturation')) {
      console.log(`\n1b. saturation: one TCP connection per device (a bus each / a modbus-client each), poll ${POLL_MS} ms, more devices until two steps deliver less than 85 % of the readings offered`);
      console.log(HEAD);
      const best = new Map<System, JobResult>();
      for (const system of ['gateway', 'node-red per-value'] as System[]) {
        // One step past the first shortfall shows whether the rate holds (a plateau) or collapses.
        let short = 0;
        for (const devices of SATURATION_STEPS) {
          const r = await runJob({ system, devices, pollMs: POLL_MS, connectionPerDevice: true, warmupS: 4, measureS: 8, nodeRedDir: nrDir });
          console.log(row(r));
          if (!best.has(system) || r.readingsPerS > best.get(system)!.readingsPerS) best.set(system, r);
          if (r.readingsPerS < 0.85 * r.offeredReadingsPerS && ++short >= 2) break;
        }
      }
      const g = best.get('gateway')!;
      const n = best.get('node-red per-value')!;
      console.log(`   most readings/s delivered: gateway ${fmt(g.readingsPerS)} (${g.devices} devices, CPU ${g.cpuPct.toFixed(0)} %, VmHWM ${g.hwmMiB.toFixed(1)} MiB), Node-RED per-value ${fmt(n.readingsPerS)} (${n.devices} devices, CPU ${n.cpuPct.toFixed(0)} %, VmHWM ${n.hwmMiB.toFixed(1)} MiB); ratio ${(g.readingsPerS / n.readingsPerS).toFixed(2)}`);
    }
    if (sections.has('fanout')) {
      console.log('\n2. broker fan-out, QoS 0, 100-byte payloads, mqtt.js clients (subscribers in one process, publishers in another, the broker in a third);');
      console.log('   latency measured at the subscribers; broker CPU from /proc/<pid>/stat (system time includes the loopback TCP stack)');
      await brokerFanoutBench();
    }
  } finally {
    if (tempNr) removeTempDir(nrDir);
  }
  console.log(`\nbench:peers took ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
