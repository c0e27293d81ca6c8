// Several reference consumers into one PostgreSQL, against a real Mosquitto and a real
// PostgreSQL 15 started by the test: three `community-gateway platform` processes in one MQTT 5
// shared-subscription group, three gateways (the real Outbox and Uplink) producing all along.
// Mid-stream one consumer is killed with SIGKILL and started again, the broker is restarted,
// and PostgreSQL is restarted while items arrive. Afterwards every gateway's seqs are in the
// database exactly once: 1..last, none missing, none twice.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PgCluster } from '../../bench/peers/postgres.js';
import { UplinkSchema } from '../../src/config/site-schema.js';
import { silentLogger } from '../../src/log.js';
import { openDatabase } from '../../src/store/database.js';
import { Outbox, type OutboxItem } from '../../src/store/outbox.js';
import { Uplink } from '../../src/uplink/uplink.js';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { sleep, tmpDir, waitFor } from '../helpers/peers.js';

const CC = '330106001001';
const CLI = path.resolve('dist/src/cli.js');
const log = silentLogger();

afterAll(() => stopAll('SIGKILL'));

function agg(gw: number, i: number): OutboxItem {
  const ws = Date.UTC(2026, 11, 1) + i * 60_000;
  const body = { type: 'point', windowStart: ws, windowSeconds: 60, facility: 'canteen', device: `fridge-${gw}`, point: 'fridge_1_temperature', unit: '°C', kind: 'gauge', count: 6, bad: 0, mean: i / 10, min: i / 10, max: i / 10, sum: (6 * i) / 10, last: i / 10 };
  return { kind: 'agg', ts: ws + 60_000, body: JSON.stringify(body) };
}

class ConsumerProcess {
  proc: ChildProcess | null = null;
  out = '';
  constructor(
    readonly id: string,
    private readonly url: string,
    private readonly db: string,
  ) {}

  start(): void {
    const p = spawn(process.execPath, [CLI, 'platform', '--url', this.url, '--db', this.db, '--group', 'ingest', '--client-id', this.id], { env: { ...process.env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer) => (this.out = (this.out + d.toString()).slice(-20_000));
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    this.proc = p;
  }

  subscriptions(): number {
    return this.out.match(/platform consumer subscribed/g)?.length ?? 0;
  }

  async subscribed(times = 1): Promise<void> {
    await waitFor(() => this.subscriptions() >= times, 20_000, `${this.id} subscribed (${times})`);
  }

  kill(signal: NodeJS.Signals): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      p.once('exit', () => resolve());
      p.kill(signal);
    });
  }
}

describe('several consumers into PostgreSQL', () => {
  it('three consumers, a kill -9 of one mid-stream, a broker restart and a PostgreSQL restart: every seq of every gateway stored exactly once', async () => {
    const cluster = await PgCluster.start();
    const broker = await Mosquitto.start({ persistence: true });
    const url = `mqtt://127.0.0.1:${broker.port}`;
    const consumers = ['cons-a', 'cons-b', 'cons-c'].map((id) => new ConsumerProcess(id, url, cluster.url));
    const uplinks: Uplink[] = [];
    const outboxes: Outbox[] = [];
    let producing = true;
    try {
      for (const c of consumers) c.start();
      for (const c of consumers) await c.subscribed();

      // Three gateways, each appending 20 items every 100 ms.
      const gws = [1, 2, 3];
      const counters = gws.map(() => 0);
      for (const g of gws) {
        const outbox = new Outbox(openDatabase(path.join(tmpDir('cgw-multi-'), 'gateway.db')), { maxRows: 1_000_000, maxBytes: 1e9 }, log);
        outbox.start();
        outboxes.push(outbox);
        const cfg = UplinkSchema.parse({ url, inflight: 4, maxMessageBytes: 4096, windowSeconds: 60 });
        const up = new Uplink(cfg, { communityCode: CC, gatewayId: `gw-multi-${g}`, version: 'test' }, outbox, log);
        up.start();
        uplinks.push(up);
      }
      const producer = (async () => {
        while (producing) {
          gws.forEach((g, k) => {
            outboxes[k]!.append(Array.from({ length: 20 }, (_, j) => agg(g, counters[k]! + j)));
            counters[k]! += 20;
          });
          await sleep(100);
        }
      })();
      const db = new pg.Client(cluster.url);
      await db.connect();
      const stored = async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM items')).rows[0]!.n);
      await waitFor(async () => (await stored()) > 300, 20_000, 'items flowing');

      // 1. One consumer killed mid-stream (its unacknowledged messages stay in its session), and
      // started again a little later, as systemd does.
      await consumers[1]!.kill('SIGKILL');
      await sleep(1500);
      consumers[1]!.start();
      await consumers[1]!.subscribed(2);
      await sleep(1000);

      // 2. The broker restarted (persistence on: sessions and queued messages kept).
      const before = consumers.map((c) => c.subscriptions());
      await broker.restart();
      for (const [k, c] of consumers.entries()) await c.subscribed(before[k]! + 1);
      await sleep(1000);

      // 3. PostgreSQL restarted while items arrive: the consumers wait, acknowledge nothing meanwhile.
      await db.end();
      await cluster.stop('fast');
      await sleep(2000);
      await cluster.restart();
      await sleep(1500);

      producing = false;
      await producer;
      const made = Object.fromEntries(gws.map((g, k) => [`gw-multi-${g}`, counters[k]!]));
      await waitFor(() => outboxes.every((o) => o.stats().rows === 0) && uplinks.every((u) => u.inFlight === 0), 60_000, 'every outbox drained');

      const check = new pg.Client(cluster.url);
      await check.connect();
      const per = async () =>
        (await check.query<{ gateway_id: string; n: string; distinct_seqs: string; lo: string; hi: string }>('SELECT gateway_id, count(*) AS n, count(DISTINCT seq) AS distinct_seqs, min(seq) AS lo, max(seq) AS hi FROM items GROUP BY gateway_id ORDER BY gateway_id')).rows;
      await waitFor(async () => (await per()).every((r) => Number(r.n) >= made[r.gateway_id]!) && (await per()).length === 3, 60_000, 'every item at the platform').catch(async (e: Error) => {
        throw new Error(`${e.message}: ${JSON.stringify(await per())} of ${JSON.stringify(made)}\n${consumers.map((c) => `${c.id}:\n${c.out.slice(-3000)}`).join('\n')}`);
      });
      for (const r of await per()) {
        // Exactly 1..made: nothing missing, nothing twice.
        expect({ gw: r.gateway_id, n: Number(r.n), distinct: Number(r.distinct_seqs), lo: Number(r.lo), hi: Number(r.hi) }).toEqual({ gw: r.gateway_id, n: made[r.gateway_id], distinct: made[r.gateway_id], lo: 1, hi: made[r.gateway_id] });
      }
      // The restarts were real: the consumers saw the database away and waited.
      const waited = consumers.map((c) => c.out.match(/database unavailable/g)?.length ?? 0);
      expect(waited.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      await check.end();
      // Every consumer took part (the shared subscription spreads the messages): each logs its
      // counts when it stops.
      for (const c of consumers) await c.kill('SIGTERM');
      for (const c of consumers) {
        const lines = c.out.split('\n').filter((l) => l.includes('"platform consumer stopping"'));
        expect(lines.length, c.id).toBeGreaterThan(0);
        expect((JSON.parse(lines.at(-1)!) as { items: number }).items, c.id).toBeGreaterThan(0);
      }
    } finally {
      producing = false;
      for (const u of uplinks) await u.stop();
      for (const o of outboxes) o.stop();
      for (const c of consumers) await c.kill('SIGTERM');
      await broker.stop('SIGKILL');
      await cluster.destroy();
    }
  }, 180_000);
});
