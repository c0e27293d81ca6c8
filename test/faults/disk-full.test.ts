// Fault: a full disk. The real daemon runs in a private mount namespace (as root: unshare -m)
// with its storage on a tiny tmpfs and no platform. Policy (docs/RELIABILITY.md): the raw store
// (local diagnostics) gives up its oldest readings first; only without it are new outbox
// items dropped, and counted. Once the platform is back and the outbox drains, writing
// resumes: every seq that was committed arrives.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { freePort, tmpDir, waitFor } from '../helpers/peers.js';
import { CLI } from '../helpers/cli.js';
import { PlatformConsumer } from '../../src/platform/consumer.js';
import { silentLogger } from '../../src/log.js';

const isRoot = process.getuid?.() === 0;
const canUnshare = isRoot && spawnSync('unshare', ['-m', 'true']).status === 0;
afterAll(() => stopAll('SIGKILL'));
let procs: ChildProcess[] = [];
afterEach(() => {
  for (const p of procs) p.kill('SIGKILL');
  procs = [];
});

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

async function site(rawRetentionHours: number, tmpfsSize: string) {
  const broker = await Mosquitto.start();
  // The platform's consumer holds a persistent session from the start, as a real one does: what
  // the gateway sends when the broker is back reaches it even before it has reconnected (with
  // a new session, items acknowledged by the broker before its SUBSCRIBE were lost to it, and
  // under load the uplink's reconnect could win that race).
  const platformDb = path.join(tmpDir('cgw-full-p-'), 'p.db');
  const consumer = () => new PlatformConsumer({ url: `mqtt://127.0.0.1:${broker.port}`, db: platformDb, group: 'none', clientId: 'platform-full' }, silentLogger());
  const first = consumer();
  await first.start();
  await new Promise((r) => setTimeout(r, 300)); // its SUBSCRIBE is processed
  await first.stop();
  await broker.stop('SIGTERM'); // the platform is down until the disk is full (the session saved)
  const dir = tmpDir('cgw-full-');
  const data = path.join(dir, 'data');
  fs.mkdirSync(data);
  const [webPort, simPort] = [await freePort(), 20000 + Math.floor(Math.random() * 10000)];
  const cfg = path.join(dir, 'site.yaml');
  const devices = Array.from({ length: 8 }, (_, i) => ({ id: `meter-${i + 1}`, facility: 'canteen', profile: 'eastron-sdm120-modbus', bus: 'lan', unitId: i + 1, pollMs: 100 }));
  fs.writeFileSync(
    cfg,
    stringify({
      site: { communityCode: '330106001001', gatewayId: 'gw-full' },
      localBroker: { host: '127.0.0.1', port: 0 },
      web: { host: '127.0.0.1', port: webPort, https: false },
      storage: { path: path.join(data, 'gateway.db'), rawRetentionHours },
      uplink: { url: `mqtt://127.0.0.1:${broker.port}`, windowSeconds: 5, reconnectMinMs: 500, reconnectMaxMs: 2000 },
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
      devices,
      simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 4 },
    }),
  );
  // The tmpfs exists only in the daemon's own mount namespace.
  const p = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o size=${tmpfsSize} tmpfs "$1" && exec "$2" "$3" run --config "$4"`, 'sh', data, process.execPath, CLI, cfg], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  procs.push(p);
  let log = '';
  p.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20000)));
  p.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20000)));
  await waitFor(async () => (await fetch(`http://127.0.0.1:${webPort}/healthz`).catch(() => null))?.ok, 20_000, 'daemon up');
  return { broker, webPort, p, log: () => log, consumer };
}

describe.skipIf(!canUnshare)('fault: full disk (needs root for unshare -m and a tmpfs)', () => {
  it('without a raw store, outbox items are dropped and counted; writing resumes after the drain', async () => {
    const s = await site(0, '1m');
    await waitFor(async () => (await metric(s.webPort, 'cgw_outbox_dropped_rows_total')) > 0, 240_000, 'the disk fills and items are dropped');
    expect((await fetch(`http://127.0.0.1:${s.webPort}/healthz`)).status).toBe(200);
    expect(s.log()).toContain('disk full: outbox rows dropped');
    // The platform comes back: the outbox drains into it, then new items are written again.
    const platform = s.consumer();
    await s.broker.restart();
    await platform.start();
    await waitFor(async () => (await metric(s.webPort, 'cgw_uplink_connected')) === 1, 20_000, 'uplink back');
    const droppedAtDrain = await metric(s.webPort, 'cgw_outbox_dropped_rows_total');
    const seqAtDrain = await metric(s.webPort, 'cgw_outbox_last_seq');
    await waitFor(async () => (await metric(s.webPort, 'cgw_outbox_last_seq')) > seqAtDrain + 30, 60_000, 'new items committed after the drain').catch(async (e: Error) => {
      const m = (await (await fetch(`http://127.0.0.1:${s.webPort}/metrics`)).text()).split('\n').filter((l) => /^cgw_(outbox|uplink|raw)/.test(l));
      throw new Error(`${e.message} (seq at drain ${seqAtDrain})\n${m.join('\n')}\n${s.log().slice(-3000)}`);
    });
    expect(await metric(s.webPort, 'cgw_outbox_dropped_rows_total')).toBe(droppedAtDrain);
    // Everything committed so far is acknowledged (the outbox empties at least once), then
    // the platform must hold every seq up to the last one committed before that moment.
    await waitFor(async () => (await metric(s.webPort, 'cgw_outbox_rows')) === 0, 180_000, 'outbox drained');
    const last = (await metric(s.webPort, 'cgw_outbox_last_seq')) - 40;
    await waitFor(async () => new Set(await platform.seqs('gw-full')).size >= last, 60_000, 'platform catches up');
    const seqs = [...new Set(await platform.seqs('gw-full'))].sort((a, b) => a - b);
    // Dropped items never got a seq: what was committed arrives without a gap.
    expect(seqs.slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]! - seqs[i - 1]!).toBe(1);
    console.log(`disk full, no raw store: ${droppedAtDrain} items dropped and counted; ${seqs.length} seqs delivered without a gap`);
    await platform.stop();
  }, 420_000);

  it('with a raw store, its oldest readings give way (a quarter of the partition kept free) and no outbox item is dropped', async () => {
    const s = await site(24, '1m');
    await waitFor(async () => (await metric(s.webPort, 'cgw_raw_evicted_total')) > 0, 240_000, 'raw readings evicted as the partition fills');
    const lastBefore = await metric(s.webPort, 'cgw_outbox_last_seq');
    await waitFor(async () => (await metric(s.webPort, 'cgw_outbox_last_seq')) > lastBefore + 20, 60_000, 'outbox still growing on a full disk');
    expect(await metric(s.webPort, 'cgw_outbox_dropped_rows_total')).toBe(0);
    expect((await fetch(`http://127.0.0.1:${s.webPort}/healthz`)).status).toBe(200);
    console.log(`disk full with raw store: ${await metric(s.webPort, 'cgw_raw_evicted_total')} raw readings evicted, outbox dropped 0`);
  }, 420_000);
});
