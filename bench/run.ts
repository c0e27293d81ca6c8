// npm run bench: figures for this machine (docs/PERFORMANCE.md records them).
//  1. readings per second through decode + scale + range check + publish on the embedded
//     broker, on one core (target >= 100,000/s), without and with a live MQTT subscriber;
//  2. Modbus requests per scan for every shipped profile: planned, minimum, one-per-point,
//     and what the simulator actually served.
//  3.-4. the outbox's append rate and a 1,000,000-row drain;
//  5.-6. bytes written to disk per reading (demo site, raw store on and off) and daemon CPU at
//     10,000 points (bench/disk-writes.ts; BENCH_DISK_MINUTES, BENCH_CPU_SECONDS shorten them);
//  7. scale: the daemon at the demo site and at 1,000 / 5,000 / 10,000 points polled every
//     second: CPU, VmHWM, RSS, heap (bench/scale.ts; BENCH_SCALE_SECONDS, BENCH_SCALE_POINTS).
import os from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { DRIVERS_DIR } from '../src/config/paths.js';
import { loadProfiles } from '../src/config/profiles.js';
import { parseSiteConfig } from '../src/config/site-config.js';
import { EventBus } from '../src/events.js';
import { silentLogger } from '../src/log.js';
import { Pipeline } from '../src/pipeline/pipeline.js';
import { LocalBroker } from '../src/broker/local-broker.js';
import { LivePublisher } from '../src/broker/live-publisher.js';
import { AccessControl } from '../src/broker/access.js';
import { planReads, type ReadBlock } from '../src/io/modbus/read-plan.js';
import { minimumRequests } from './minimum-requests.js';
import { appendRates, drainBench } from './uplink-bench.js';
import { rtuWireBench } from './rtu-wire.js';
import { diskBench } from './disk-writes.js';
import { scaleBench } from './scale.js';
import { SimulatedDevice } from '../src/sim/simulated-device.js';
import { seededRandom } from '../src/sim/random.js';
import { Gateway } from '../src/main.js';
import type { PolledDevice } from '../src/io/modbus/device-poller.js';

const log = silentLogger();
const profiles = loadProfiles(DRIVERS_DIR);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitUntil(fn: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!fn() && Date.now() < until) await sleep(20);
}

interface Work {
  device: PolledDevice;
  block: ReadBlock;
  values: number[];
}

/** One scan's worth of real register images for every shipped profile, from the simulator. */
function workload(): Work[] {
  const out: Work[] = [];
  let unit = 1;
  for (const profile of profiles.values()) {
    const device: PolledDevice = { id: `${profile.id}-1`, facility: 'canteen', unitId: unit++, pollMs: 1000, maxGap: 10, profile };
    const sim = new SimulatedDevice(profile, seededRandom(1), Date.now());
    for (const block of planReads(profile.points, profile.holes, { maxGap: 10, maxRegisters: profile.maxRegistersPerRead })) {
      out.push({ device, block, values: sim.read(block.register, block.start, block.count)! });
    }
  }
  return out;
}

type Subscriber = 'none' | 'mqtt.js in-process' | 'mosquitto_sub';

async function decodePublish(subscriber: Subscriber): Promise<{ perSec: number; perCpuSec: number; readings: number; cpuS: number; received: number }> {
  const withSubscriber = subscriber !== 'none';
  const events = new EventBus(log);
  const pipeline = new Pipeline(events, (v) => `p${v}`);
  // The bench's subscribers connect anonymously from loopback, as the demo config allows.
  const access = new AccessControl({ anonymous: 'loopback', accounts: [], personalTopics: new Set(), anonymousSubscribe: ['community/#'] });
  const broker = new LocalBroker({ host: '127.0.0.1', port: 0 }, log, access);
  await broker.start();
  const publisher = new LivePublisher('gw-bench', broker, events);
  publisher.start();
  let received = 0;
  let client: mqtt.MqttClient | null = null;
  let sub: ChildProcess | null = null;
  if (subscriber === 'mqtt.js in-process') {
    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`);
    client.on('message', () => received++);
    await client.subscribeAsync('community/#', { qos: 0 });
  } else if (subscriber === 'mosquitto_sub') {
    sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(broker.port), '-t', 'community/#', '-F', '%t'], { stdio: ['ignore', 'pipe', 'ignore'] });
    sub.stdout!.on('data', (d: Buffer) => {
      for (let i = 0; i < d.length; i++) if (d[i] === 10) received++;
    });
    await waitUntil(() => broker.clients > 0);
    await sleep(200);
  }
  const work = workload();
  // Bursts of one scan of every shipped profile, then wait until the broker has delivered
  // them (as the daemon does: a scan yields at every Modbus reply). Without a subscriber
  // aedes delivers synchronously; with one, an unpaced loop only measures aedes' queue, whose
  // Array.shift() turns quadratic once thousands of messages wait.
  const run = async (rounds: number) => {
    for (let i = 0; i < rounds; i++) {
      const ts = Date.now();
      for (const w of work) pipeline.block(w.device, w.block, w.values, ts);
      if (withSubscriber) {
        while (broker.pending > 0) await new Promise((r) => setImmediate(r));
      } else if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
  };
  await run(2000); // warm-up
  const before = pipeline.readings;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const rounds = withSubscriber ? 6000 : 20000;
  await run(rounds);
  if (withSubscriber) {
    const until = Date.now() + 20000;
    // Count until the subscriber has caught up (or stalls), inside the timed section.
    let last = -1;
    while (Date.now() < until && received !== last) {
      last = received;
      await sleep(50);
    }
  }
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const readings = pipeline.readings - before;
  await client?.endAsync();
  sub?.kill();
  await publisher.stop();
  await broker.stop();
  const cpuS = (cpu.user + cpu.system) / 1e6;
  return { perSec: readings / secs, perCpuSec: readings / cpuS, readings, cpuS, received };
}

async function servedPerScan(): Promise<Map<string, { perScan: number; polls: number }>> {
  const simPort = 35000 + Math.floor(Math.random() * 20000);
  const devices = [...profiles.values()].map((p, i) => ({ id: `d${i + 1}`, facility: 'canteen', profile: p.id, bus: 'sim', unitId: i + 1, pollMs: 200 }));
  const cfg = {
    site: { communityCode: '330106001001', gatewayId: 'gw-bench' },
    localBroker: { host: '127.0.0.1', port: 0, anonymous: 'loopback' },
    web: { host: '127.0.0.1', port: 0, https: false },
    storage: { path: './data/bench.db' },
    uplink: { url: 'mqtt://127.0.0.1:1884' },
    buses: [{ id: 'sim', type: 'modbus-tcp', host: '127.0.0.1', port: simPort }],
    devices,
    simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 1 },
  };
  const r = parseSiteConfig(stringify(cfg), profiles);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  const g = new Gateway(r.config, profiles, log);
  await g.start();
  await sleep(3000);
  await g.stop();
  const out = new Map<string, { perScan: number; polls: number }>();
  g.pollers.forEach((p) => {
    const served = g.simulator!.requests.get(p.device.unitId) ?? 0;
    out.set(p.device.profile.id, { perScan: served / p.stats.polls, polls: p.stats.polls });
  });
  return out;
}

async function main(): Promise<void> {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`community-gateway bench — ${new Date().toISOString()} — ${cpu}, ${os.cpus().length} cores, Node ${process.version}`);
  console.log('\n1. decode + scale + range check + publish on the embedded aedes broker (one process, one core)');
  for (const subscriber of ['none', 'mosquitto_sub', 'mqtt.js in-process'] as Subscriber[]) {
    const r = await decodePublish(subscriber);
    const target = subscriber === 'none' ? `  target >= 100,000/s: ${r.perSec >= 100000 ? 'MET' : 'NOT MET'}` : '';
    console.log(
      `   subscriber ${subscriber.padEnd(19)} ${Math.round(r.perSec).toLocaleString('en').padStart(8)} readings/s wall, ${Math.round(r.perCpuSec).toLocaleString('en').padStart(8)} per CPU-second of the gateway process (${r.readings.toLocaleString('en')} readings, ${r.received.toLocaleString('en')} delivered)${target}`,
    );
  }
  console.log('\n2. Modbus requests per scan, shipped profiles (maxGap 10)');
  const served = await servedPerScan();
  console.log('   profile                     points  one-per-point  planned  minimum  any-gap floor  served by simulator');
  for (const p of profiles.values()) {
    const planned = planReads(p.points, p.holes, { maxGap: 10, maxRegisters: p.maxRegistersPerRead }).length;
    const s = served.get(p.id)!;
    console.log(
      `   ${p.id.padEnd(28)}${String(p.points.length).padStart(6)}${String(p.points.length).padStart(15)}${String(planned).padStart(9)}${String(minimumRequests(p, 10)).padStart(9)}${String(minimumRequests(p, 124)).padStart(15)}${s.perScan.toFixed(2).padStart(12)}  (${s.polls} scans)`,
    );
  }
  console.log('   minimum: fewest requests under the same limits (maxGap 10, holes, per-request size), by exhaustive search;');
  console.log('   any-gap floor: fewest requests if any run of unused registers could be read.');

  console.log('\n2b. Modbus RTU bytes on the wire per scan, shipped profiles (maxGap 10), and the 9600 baud scan time');
  console.log('   profile                     requests  planned B  minimum B  one-per-point B  measured B  scan @9600 8N1');
  for (const w of await rtuWireBench(profiles)) {
    console.log(
      `   ${w.profile.padEnd(28)}${String(w.requests).padStart(8)}${String(w.planned).padStart(11)}${String(w.minimum).padStart(11)}${String(w.perPoint).padStart(17)}${String(w.measured ?? '-').padStart(12)}${`${w.scanMs9600.toFixed(1)} ms`.padStart(16)}`,
    );
  }
  console.log('   minimum: fewest bytes under the same limits (maxGap 10, holes, per-request size), by exhaustive search;');
  console.log('   measured: bytes written + read by the gateway in one real scan over a socat pty to pymodbus (RTU);');
  console.log('   scan time: characters (10 bits each) plus t3.5 before every frame; add each device\'s turnaround per request.');

  console.log('\n3. outbox (SQLite WAL, synchronous=FULL, file on disk)');
  const a = appendRates();
  console.log(`   append, one row per transaction:     ${Math.round(a.single).toLocaleString('en')} rows/s (each a durable commit; ${a.bodyBytes}-byte aggregate)`);
  console.log(`   append, 100 rows per transaction:    ${Math.round(a.batched).toLocaleString('en')} rows/s`);
  const n = Number(process.env.BENCH_BACKLOG ?? 1_000_000);
  console.log(`\n4. drain a ${n.toLocaleString('en')}-row backlog into Mosquitto on loopback (real daemon, one QoS 1 subscriber)`);
  const d = await drainBench(n);
  console.log(`   backlog built in ${d.build.toFixed(1)} s`);
  console.log(`   daemon RSS holding the backlog, platform down: ${d.idleRss.toFixed(1)} MiB   target <= 100 MB: ${d.idleRss * 1.048576 <= 100 ? 'MET' : 'NOT MET'}`);
  console.log(`   daemon VmHWM up to then (start-up):           ${d.startHwm.toFixed(1)} MiB`);
  console.log(`   daemon RSS peak while draining (VmHWM):       ${d.peakRss.toFixed(1)} MiB   target <= 100 MB: ${d.peakRss * 1.048576 <= 100 ? 'MET' : 'NOT MET'}`);
  const pp = d.peakParts;
  console.log(`     at the peak: anonymous ${pp.anon.toFixed(1)} MiB (V8 heap used ${pp.heapUsed.toFixed(1)}, external ${pp.external.toFixed(1)}), file-backed ${pp.file.toFixed(1)} MiB`);
  console.log(`   drain: ${d.n.toLocaleString('en')} aggregates in ${d.seconds.toFixed(1)} s = ${Math.round(d.rate).toLocaleString('en')} aggregates/s   target >= 20,000/s: ${d.rate >= 20000 ? 'MET' : 'NOT MET'}  (subscriber got ${d.received.toLocaleString('en')} messages)`);
  console.log(`   daemon CPU while draining: ${d.cpuUsPerItem.toFixed(2)} us per aggregate (utime + stime)`);
  await diskBench();
  await scaleBench('7');
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
