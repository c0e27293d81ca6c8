// Draining a backlog through a full in-flight window, the real Outbox and Uplink against a real
// Mosquitto, the reference platform consumer as the witness: every row arrives once, intact
// and in seq order, and the payloads are written into a fixed set of buffers (one per slot of
// the window) instead of a new buffer per message.
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { MqttClient } from 'mqtt';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { sleep, tmpDir, waitFor } from '../helpers/peers.js';
import { openDatabase } from '../../src/store/database.js';
import { Outbox, type OutboxItem } from '../../src/store/outbox.js';
import { Uplink } from '../../src/uplink/uplink.js';
import { UplinkSchema } from '../../src/config/site-schema.js';
import { PlatformConsumer } from '../../src/platform/consumer.js';
import { silentLogger } from '../../src/log.js';

afterAll(() => stopAll('SIGKILL'));
afterEach(() => vi.restoreAllMocks());

const log = silentLogger();

/** An aggregate whose values depend on i, so that a payload overwritten by a later message
 * would show as a conflict or a wrong value at the platform. */
function agg(i: number): OutboxItem {
  const ws = 1795719600000 + Math.floor(i / 20) * 60000;
  const body = { type: 'point', windowStart: ws, windowSeconds: 60, facility: 'canteen', device: `fridge-${i % 20}`, point: 'fridge_1_temperature', unit: '°C', kind: 'gauge', count: 12, bad: 0, mean: i / 1000, min: i / 1000 - 1, max: i / 1000 + 1, sum: (12 * i) / 1000, last: i };
  return { kind: 'agg', ts: ws + 60000, body: JSON.stringify(body) };
}

describe('uplink drain', () => {
  it('a 20,000-row backlog through 8 in-flight messages: every seq once, intact, at most 8 payload buffers', async () => {
    const n = 20_000;
    const inflight = 8;
    const db = openDatabase(path.join(tmpDir('cgw-drain-'), 'gateway.db'));
    const outbox = new Outbox(db, { maxRows: 1_000_000, maxBytes: 1e9 }, log);
    outbox.start();
    for (let i = 0; i < n; i += 1000) outbox.append(Array.from({ length: 1000 }, (_, k) => agg(i + k)));

    const broker = await Mosquitto.start();
    const url = `mqtt://127.0.0.1:${broker.port}`;
    const platform = new PlatformConsumer({ url, db: path.join(tmpDir('cgw-platform-'), 'platform.db') }, log);
    await platform.start();
    await sleep(200); // let the subscription settle

    // Which memory each aggregate message's payload lives in.
    const buffers = new Set<ArrayBufferLike>();
    let messages = 0;
    const publish = MqttClient.prototype.publish;
    vi.spyOn(MqttClient.prototype, 'publish').mockImplementation(function (this: MqttClient, topic: string, payload: string | Buffer, ...rest: unknown[]) {
      if (topic.endsWith('/agg')) {
        messages++;
        buffers.add(Buffer.isBuffer(payload) ? payload.buffer : new ArrayBuffer(0));
      }
      return (publish as (...a: unknown[]) => MqttClient).call(this, topic, payload, ...rest);
    } as never);

    const cfg = UplinkSchema.parse({ url, inflight, maxMessageBytes: 8192, reconnectMinMs: 200, reconnectMaxMs: 1000 });
    const uplink = new Uplink(cfg, { communityCode: '330106001001', gatewayId: 'gw-drain', version: 'test' }, outbox, log);
    try {
      uplink.start();
      await waitFor(() => outbox.stats().rows === 0 && uplink.inFlight === 0, 60_000, 'backlog drained');
      await waitFor(async () => (await platform.seqs('gw-drain')).length >= n, 20_000, 'every seq at the platform');
      const items = await platform.items('gw-drain', 'agg');
      expect(items.map((it) => it.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      for (const it of items) expect(it.body).toEqual({ seq: it.seq, ...JSON.parse(agg(it.seq - 1).body) });
      expect(platform.stats.conflicts).toBe(0);
      expect(platform.stats.rejected).toBe(0);
      expect(messages).toBeGreaterThan(20 * inflight); // the window was reused many times
      expect(buffers.size).toBeLessThanOrEqual(inflight);
    } finally {
      await uplink.stop();
      outbox.stop();
      await platform.stop();
      db.close();
    }
  }, 120_000);
});
