// mqtt.js's outgoing store for the uplink, with a real mqtt.js client against a real Mosquitto:
// an in-flight QoS 1 message is kept without its payload, the PUBACK still finds it, nothing
// is replayed on connect, and the subscriber gets the whole payload.
import { afterAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { AckOnlyStore } from '../../src/uplink/ack-only-store.js';

afterAll(() => stopAll('SIGKILL'));

type Stored = { payload?: unknown; messageId?: number } | undefined;

function stored(store: AckOnlyStore, messageId: number): Promise<Stored> {
  return new Promise((resolve) => store.get({ messageId }, (err, packet) => resolve(err ? undefined : (packet as Stored))));
}

describe('AckOnlyStore', () => {
  it('keeps an in-flight QoS 1 message without its payload; the PUBACK completes it; the subscriber gets every byte', async () => {
    const broker = await Mosquitto.start();
    const url = `mqtt://127.0.0.1:${broker.port}`;
    const sub = await mqtt.connectAsync(url, { clientId: 'sub', reconnectPeriod: 0 });
    await sub.subscribeAsync('t/#', { qos: 1 });
    const got = new Promise<Buffer>((resolve) => sub.on('message', (_t, p) => resolve(p)));
    const store = new AckOnlyStore();
    const pub = await mqtt.connectAsync(url, { clientId: 'pub', reconnectPeriod: 0, outgoingStore: store });
    try {
      const ids: number[] = [];
      pub.on('packetsend', (p) => {
        if (p.cmd === 'publish') ids.push(p.messageId!);
      });
      const payload = Buffer.alloc(32 * 1024, 'a');
      const acked = new Promise<Error | undefined>((resolve) => pub.publish('t/x', payload, { qos: 1 }, (err) => resolve(err)));
      // Before its PUBACK: the store has the message, but not a copy of its 32 KB.
      expect(ids).toHaveLength(1);
      const before = await stored(store, ids[0]!);
      expect(before).toMatchObject({ messageId: ids[0] });
      expect(before!.payload).toBe('');
      expect((await acked) ?? null).toBeNull();
      expect(await stored(store, ids[0]!)).toBeUndefined(); // deleted on PUBACK
      expect((await got).equals(payload)).toBe(true);
    } finally {
      await pub.endAsync();
      await sub.endAsync();
    }
  });

  it('offers nothing to replay on connect (the outbox resends, in seq order)', async () => {
    const store = new AckOnlyStore();
    store.put({ cmd: 'publish', topic: 't', payload: 'x', qos: 1, messageId: 7, dup: false, retain: false }, () => {});
    const seen: unknown[] = [];
    const s = store.createStream();
    s.on('data', (p) => seen.push(p));
    await new Promise((resolve) => s.on('end', resolve));
    expect(seen).toEqual([]);
  });
});
