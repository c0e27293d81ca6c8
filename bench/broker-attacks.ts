// npm run bench:attacks: the security review's resource attacks on the local broker (issue 12,
// findings 6, 7 and 8), replayed against the real daemon (the demo site plus two broker
// accounts) on loopback, with the daemon's memory read from /proc and what a legitimate client
// still gets measured from outside. Figures go to docs/PERFORMANCE.md.
//
//   0. 40 plain logins (what argon2 alone does to the resident set);
//   A. half-open QoS 2: 40 persistent sessions each send 150 QoS 2 PUBLISHes of 50 KB and never
//      PUBREL, then go away (the review: RSS 297 -> 481 MB, never freed);
//   B. retained flood: one account publishes 500 retained 200 KB messages (the review: +92 MB);
//   C. idle sockets: 210 sockets that never send CONNECT, then a real client connects;
//   D. password guessing: wrong MQTT passwords as fast as one client can for 20 s (the review:
//      1,311 in 20 s), with the web login's latency measured meanwhile.
// Every loop is bounded in count and time and talks to 127.0.0.1 only.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mqtt from 'mqtt';
import { generate } from 'mqtt-packet';
import { parse, stringify } from 'yaml';
import { DEFAULT_CONFIG } from '../src/config/paths.js';
import { hashPassword } from '../src/broker/access.js';
import { daemonMemory, fmt, freePort, memory, removeTempDir, sleep, tempDir, track, waitPort } from './peers/util.js';
import { shippedNodeFlags } from './scale.js';
import { PACKAGE_ROOT } from '../src/config/paths.js';

const CLI = path.resolve('dist/src/cli.js');
const APP_PASSWORD = 'Attack-bench-2026!';
const WEB_PASSWORD = 'Xihu-station-2026';

interface Daemon {
  pid: number;
  broker: number;
  web: number;
  stop: () => Promise<void>;
  log: () => string;
}

async function startDaemon(dir: string): Promise<Daemon> {
  const cfg = parse(fs.readFileSync(DEFAULT_CONFIG, 'utf8')) as Record<string, any>;
  const broker = await freePort();
  const web = await freePort();
  const sim = await freePort();
  const hash = await hashPassword(APP_PASSWORD);
  cfg.localBroker = {
    host: '127.0.0.1',
    port: broker,
    anonymous: 'off',
    accounts: [
      { username: 'app', passwordHash: hash, publish: ['apps/#'], subscribe: ['apps/#'] },
      { username: 'app2', passwordHash: hash, publish: ['apps/#'], subscribe: ['apps/#'] },
    ],
  };
  cfg.web = { host: '127.0.0.1', port: web, https: false };
  cfg.storage = { ...cfg.storage, path: path.join(dir, 'gateway.db') };
  cfg.simulator = { ...cfg.simulator, port: sim };
  for (const b of cfg.buses ?? []) if (b.port === 5020 || b.host === '127.0.0.1') b.port = sim;
  const file = path.join(dir, 'site.yaml');
  fs.writeFileSync(file, stringify(cfg));
  let out = '';
  // As the unit runs it (package.json "start", as systemd/community-gateway.service); BENCH_MALLOC=default
  // leaves glibc's dynamic mmap threshold and arenas, to show what the settings are for.
  const env = { ...process.env, ...(process.env.BENCH_MALLOC === 'default' ? {} : shippedNodeFlags(PACKAGE_ROOT).env) };
  const proc = track(spawn(process.execPath, [...shippedNodeFlags(PACKAGE_ROOT).flags, CLI, 'run', '--config', file, '--state-dir', path.join(dir, 'state')], { stdio: ['ignore', 'pipe', 'pipe'], env }));
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitPort(broker, 30_000);
  await waitPort(web, 30_000);
  return {
    pid: proc.pid!,
    broker,
    web,
    log: () => out,
    stop: () =>
      new Promise<void>((r) => {
        proc.once('exit', () => r());
        proc.kill('SIGTERM');
      }),
  };
}

/** A raw MQTT connection: packets as mqtt-packet encodes them, no client library deciding
 * when to PUBREL. Resolves with the CONNACK return code. */
function rawConnect(port: number, clientId: string, clean: boolean, username = 'app', password = APP_PASSWORD, localAddress = '127.0.0.1'): Promise<{ sock: net.Socket; code: number }> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ port, host: '127.0.0.1', localAddress });
    sock.once('error', reject);
    sock.once('data', (d: Buffer) => resolve({ sock, code: d[0] === 0x20 ? d[3]! : -1 }));
    sock.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId, keepalive: 60, username, password: Buffer.from(password) }));
  });
}

/** RSS after a pause, with the V8 heap and external (Buffer) memory from /metrics beside it. */
async function settle(d: Daemon, ms = 3000): Promise<string> {
  await sleep(ms);
  const m = memory(d.pid);
  const v = await daemonMemory(d.web);
  return `RSS ${fmt(m.rss, 1)} MiB (anon ${fmt(m.anon, 1)}, VmHWM ${fmt(m.hwm, 1)}; V8 heap used ${fmt(v.heapUsed, 1)} of ${fmt(v.heapTotal, 1)}, external ${fmt(v.external, 1)})`;
}

async function halfOpenQos2(d: Daemon): Promise<string> {
  const payload = Buffer.alloc(50 * 1024, 0x41);
  let closedEarly = 0;
  let sent = 0;
  for (let c = 0; c < 40; c++) {
    const { sock, code } = await rawConnect(d.broker, `half-${c}`, false);
    if (code !== 0) throw new Error(`CONNACK ${code} for half-${c}`);
    let closed = false;
    sock.on('close', () => (closed = true));
    sock.on('error', () => undefined);
    for (let i = 1; i <= 150 && !closed; i++) {
      sock.write(generate({ cmd: 'publish', topic: `apps/half/${c}`, payload, qos: 2, messageId: i, retain: false, dup: false }));
      sent++;
      if (i % 10 === 0) await sleep(5);
    }
    await sleep(50);
    if (closed) closedEarly++;
    sock.destroy();
  }
  return `${fmt(sent)} QoS 2 PUBLISHes (${fmt((sent * payload.length) / 1048576)} MiB) sent without PUBREL by 40 sessions; ${closedEarly} of 40 connections closed by the broker at its cap`;
}

async function retainedFlood(d: Daemon): Promise<string> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${d.broker}`, { username: 'app2', password: APP_PASSWORD, clientId: 'flood', reconnectPeriod: 0, clean: true });
  const payload = Buffer.alloc(200 * 1024, 0x42);
  let ok = 0;
  let closed = false;
  c.on('close', () => (closed = true));
  c.on('error', () => undefined);
  for (let i = 0; i < 500 && !closed; i++) {
    try {
      await Promise.race([c.publishAsync(`apps/retained/${i}`, payload, { qos: 1, retain: true }), sleep(2000).then(() => Promise.reject(new Error('no PUBACK')))]);
      ok++;
    } catch {
      break;
    }
  }
  c.end(true);
  return `${ok} of 500 retained 200 KB messages acknowledged before the broker refused (${fmt((ok * payload.length) / 1048576, 1)} MiB held)`;
}

async function idleSockets(d: Daemon): Promise<string> {
  // The review's 210 idle sockets, from 21 loopback addresses (10 each, under the per-address
  // cap), so that only the share kept for clients that log in stands between them and the cap.
  const socks: net.Socket[] = [];
  for (let i = 0; i < 210; i++) {
    const s = net.createConnection({ port: d.broker, host: '127.0.0.1', localAddress: `127.0.1.${1 + Math.floor(i / 10)}` });
    s.on('error', () => undefined);
    socks.push(s);
  }
  await sleep(1000);
  const t0 = performance.now();
  let result: string;
  try {
    const c = await Promise.race([
      mqtt.connectAsync(`mqtt://127.0.0.1:${d.broker}`, { username: 'app', password: APP_PASSWORD, reconnectPeriod: 0, connectTimeout: 10_000, localAddress: '127.0.2.1' } as mqtt.IClientOptions),
      sleep(12_000).then(() => Promise.reject(new Error('no CONNACK in 12 s'))),
    ]);
    result = `a real client from another address connected in ${fmt(performance.now() - t0)} ms`;
    c.end(true);
  } catch (err) {
    result = `a real client could NOT connect: ${(err as Error).message}`;
  }
  const open = socks.filter((s) => !s.destroyed && s.readyState === 'open').length;
  for (const s of socks) s.destroy();
  return `210 idle sockets from 21 addresses (${open} still open when the client came): ${result}`;
}

async function brokerSeries(d: Daemon): Promise<string[]> {
  const m = await fetch(`http://127.0.0.1:${d.web}/metrics`).then((r) => r.text());
  return m.split('\n').filter((l) => /^cgw_local_broker_(stored_bytes|stored_messages|refused_total|login_refusals_total|closed_total|sessions)\b/.test(l) && !/ 0$/.test(l));
}

async function guessing(d: Daemon): Promise<string> {
  // The web page's first password, so its login can be timed while the broker is attacked.
  const session = await fetch(`http://127.0.0.1:${d.web}/api/session`).then((r) => r.json() as Promise<{ setupRequired: boolean }>);
  const code = /"setupCode":"([A-Z0-9]+)"/.exec(d.log())?.[1];
  if (session.setupRequired) {
    const r = await fetch(`http://127.0.0.1:${d.web}/api/setup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: WEB_PASSWORD, setupCode: code }) });
    if (r.status !== 200) throw new Error(`setup answered ${r.status}`);
  }
  const webLogin = async () => {
    const t = performance.now();
    await fetch(`http://127.0.0.1:${d.web}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: WEB_PASSWORD }) });
    return performance.now() - t;
  };
  const quiet = await webLogin();
  const codes = new Map<number, number>();
  const until = Date.now() + 20_000;
  let tries = 0;
  const attacker = (async () => {
    while (Date.now() < until && tries < 20_000) {
      tries++;
      try {
        // The attacker on a host of its own; the real user (127.0.0.1) logged in before.
        const { sock, code } = await rawConnect(d.broker, `guess-${tries}`, true, 'app', `wrong-${tries}`, '127.0.3.1');
        codes.set(code, (codes.get(code) ?? 0) + 1);
        sock.destroy();
      } catch {
        codes.set(-2, (codes.get(-2) ?? 0) + 1);
      }
    }
  })();
  await sleep(5000);
  const during: number[] = [];
  for (let i = 0; i < 5; i++) during.push(await webLogin());
  await attacker;
  const real = await rawConnect(d.broker, 'real-user', true);
  real.sock.destroy();
  const by = [...codes].map(([c, n]) => `${n} x ${c === 4 ? 'CONNACK 4 (checked)' : c === 3 ? 'CONNACK 3 (backed off, no check)' : c === -2 ? 'connection error' : `CONNACK ${c}`}`).join(', ');
  return `${fmt(tries)} wrong passwords (at most 20,000, at most 20 s) from one host: ${by}; the real user afterwards: CONNACK ${real.code}; web login ${fmt(quiet)} ms quiet, ${during.map((x) => fmt(x)).join('/')} ms during the attack`;
}

async function main(): Promise<void> {
  const dir = tempDir('cgw-attacks-');
  const d = await startDaemon(dir);
  try {
    await sleep(5000);
    const base = memory(d.pid).rss;
    console.log(`daemon pid ${d.pid} at rest: ${await settle(d, 0)}`);
    // Logins alone first: argon2 (19 MiB per check) runs on libuv's threads, whose malloc arenas
    // keep that memory, so this part of any growth is not what the broker holds.
    for (let i = 0; i < 40; i++) (await rawConnect(d.broker, `login-${i}`, true)).sock.destroy();
    console.log(`0. 40 logins with the right password, nothing published\n   ${await settle(d)}`);
    const a = await halfOpenQos2(d);
    console.log(`A. ${a}\n   ${await settle(d)}`);
    for (const l of await brokerSeries(d)) console.log(`   ${l}`);
    const b = await retainedFlood(d);
    console.log(`B. ${b}\n   ${await settle(d)}`);
    const c = await idleSockets(d);
    console.log(`C. ${c}`);
    const g = await guessing(d);
    console.log(`D. ${g}`);
    for (const l of await brokerSeries(d)) console.log(`   ${l}`);
    console.log(`end: ${await settle(d)}; RSS at rest was ${fmt(base, 1)} MiB`);
    console.log(`30 s later: ${await settle(d, 30_000)}`);
  } finally {
    await d.stop();
    removeTempDir(dir);
  }
}

await main();
