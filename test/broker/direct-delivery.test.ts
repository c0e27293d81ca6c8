// The gateway's own QoS 0 messages go straight to the subscribers' connections
// (direct-delivery.ts): what aedes did for them must still hold.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { publishFrame } from '../../src/broker/direct-delivery.js';
import { sleep, waitFor } from '../helpers/peers.js';
import { account, brokerSuite, connectClient, startBrokerWithAccess, subscribe } from './broker-helpers.js';

const suite = brokerSuite();
const url = () => suite.url();

describe('publishFrame (MQTT 3.1.1 section 3.3)', () => {
  it('encodes the Remaining Length in 1 to 4 bytes at each boundary (section 2.2.3)', () => {
    // topic "t": 2 + 1 bytes of variable header before the payload.
    for (const [payload, lengthBytes] of [[124, 1], [125, 2], [16_380, 2], [16_381, 3], [2_097_148, 3], [2_097_149, 4]] as const) {
      const f = publishFrame('t', Buffer.alloc(payload, 0x61));
      const remaining = payload + 3;
      expect(f[0]).toBe(0x30);
      let n = 0;
      let mult = 1;
      let i = 1;
      for (;;) {
        const b = f[i++]!;
        n += (b & 0x7f) * mult;
        mult *= 128;
        if ((b & 0x80) === 0) break;
      }
      expect([i - 1, n]).toEqual([lengthBytes, remaining]);
      expect(f.length).toBe(1 + lengthBytes + remaining);
      expect(f.readUInt16BE(i)).toBe(1);
      expect(f.toString('utf8', i + 2, i + 3)).toBe('t');
    }
  });

  it('counts topic and payload in UTF-8 bytes, not characters', () => {
    const f = publishFrame('community/gw/health/血压计', '{"unit":"°C"}');
    expect(f.readUInt16BE(2)).toBe(Buffer.byteLength('community/gw/health/血压计'));
    expect(f.subarray(4 + Buffer.byteLength('community/gw/health/血压计')).toString()).toBe('{"unit":"°C"}');
  });
});

describe('direct delivery of the gateway\'s live messages', () => {
  it('reaches mqtt.js and mosquitto_sub byte for byte, at every Remaining Length size', async () => {
    ({ broker: suite.broker } = await startBrokerWithAccess());
    const c = await connectClient(url());
    suite.clients.push(c);
    await subscribe(c, 'community/#');
    const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(suite.broker.port), '-t', 'community/#', '-F', '%t %l', '-C', '4']);
    const exited = new Promise((r) => sub.once('exit', r));
    let out = '';
    sub.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await sleep(300); // mosquitto_sub has subscribed
    const payloads = ['', 'x'.repeat(100), '值'.repeat(6000), 'y'.repeat(3_000_000)];
    for (const [i, p] of payloads.entries()) suite.broker.publish(`community/gw/health/设备-${i}/p`, p);
    await waitFor(() => c.received.length === 4, 10_000, 'four messages');
    expect(c.received.map((m) => [m.topic, m.payload.length])).toEqual(payloads.map((p, i) => [`community/gw/health/设备-${i}/p`, p.length]));
    expect(c.received[2]!.payload).toBe(payloads[2]);
    await exited;
    expect(out.trim().split('\n')).toEqual(payloads.map((p, i) => `community/gw/health/设备-${i}/p ${Buffer.byteLength(p)}`));
  });

  it('delivers to matching filters only, once per client however many of its filters match', async () => {
    ({ broker: suite.broker } = await startBrokerWithAccess());
    const [both, plus, other] = [await connectClient(url()), await connectClient(url()), await connectClient(url())];
    suite.clients.push(both, plus, other);
    await subscribe(both, 'community/#');
    await subscribe(both, 'community/gw/canteen/+/p');
    await subscribe(plus, 'community/gw/+/m1/p');
    await subscribe(other, 'community/gw/security/#');
    suite.broker.publish('community/gw/canteen/m1/p', '1');
    suite.broker.publish('community/gw/canteen/m2/p', '2');
    await waitFor(() => both.received.length >= 2 && plus.received.length >= 1, 3000, 'deliveries');
    await sleep(100);
    expect(both.received.map((m) => m.payload)).toEqual(['1', '2']);
    expect(plus.received.map((m) => m.payload)).toEqual(['1']);
    expect(other.received).toEqual([]);
  });

  it('follows subscriptions made, dropped and restored after a topic was first published', async () => {
    ({ broker: suite.broker } = await startBrokerWithAccess());
    const topic = 'community/gw/canteen/m1/p';
    const early = await connectClient(url());
    suite.clients.push(early);
    await subscribe(early, 'community/#');
    suite.broker.publish(topic, 'a');
    await waitFor(() => early.received.length === 1, 3000, 'first');
    // A new subscriber of a topic already published: the per-topic index must be rebuilt.
    const late = await connectClient(url(), { clientId: 'late', clean: false });
    await sleep(20);
    suite.broker.publish(topic, 'a2');
    await waitFor(() => early.received.length === 2, 3000, 'second');
    await subscribe(late, topic, 1);
    suite.broker.publish(topic, 'b');
    await waitFor(() => late.received.length === 1, 3000, 'the late subscriber');
    expect(late.received[0]!.payload).toBe('b');
    await early.unsubscribeAsync('community/#');
    suite.broker.publish(topic, 'c');
    await waitFor(() => late.received.length === 2, 3000, 'c at late');
    // A persistent session's subscription, restored at CONNECT without a new SUBSCRIBE.
    await late.endAsync(true);
    await waitFor(() => suite.broker!.clients === 1, 3000, 'late gone');
    suite.broker.publish(topic, 'offline'); // QoS 0: not kept for an offline session
    const back = await connectClient(url(), { clientId: 'late', clean: false });
    suite.clients.push(back);
    // Live messages reach a client from the turn after its CONNACK was written ('connackSent').
    await sleep(20);
    suite.broker.publish(topic, 'd');
    await waitFor(() => back.received.length === 1, 3000, 'the restored subscription');
    await sleep(100);
    expect(early.received.map((m) => m.payload)).toEqual(['a', 'a2', 'b']);
    expect(back.received.map((m) => [m.payload, m.topic])).toEqual([['d', topic]]);
  });

  it('keeps the order of a retained QoS 1 message published just before (an "online" before the readings)', async () => {
    ({ broker: suite.broker } = await startBrokerWithAccess());
    const c = await connectClient(url());
    suite.clients.push(c);
    await subscribe(c, 'community/#', 1);
    for (let i = 0; i < 20; i++) {
      suite.broker.publish(`community/gw/canteen/m${i}/availability`, 'online', { retain: true, qos: 1 });
      suite.broker.publish(`community/gw/canteen/m${i}/p`, String(i));
    }
    await waitFor(() => c.received.length === 40, 3000, 'forty messages');
    expect(c.received.map((m) => m.topic.split('/').slice(3).join('/'))).toEqual(Array.from({ length: 20 }, (_, i) => [`m${i}/availability`, `m${i}/p`]).flat());
  });

  it('checks each delivery against the account as it is now and its personal-topic right', async () => {
    const staff = await account('staff', ['community/#']);
    let access;
    ({ broker: suite.broker, access } = await startBrokerWithAccess({}, [staff, await account('nurse', ['community/#'], [], true)]));
    access.setPersonalTopics(new Set(['community/gw/health/bp-1/systolic']));
    const s = await connectClient(url(), { username: 'staff', password: 'staff-pass-1' });
    const n = await connectClient(url(), { username: 'nurse', password: 'nurse-pass-1' });
    suite.clients.push(s, n);
    await subscribe(s, 'community/#');
    await subscribe(n, 'community/#');
    suite.broker.publish('community/gw/health/bp-1/systolic', '120');
    suite.broker.publish('community/gw/canteen/m1/p', '1');
    await waitFor(() => n.received.length === 2 && s.received.length === 1, 3000, 'deliveries');
    // A reload narrows staff to security only: its subscription stays, the deliveries stop.
    access.setAccounts([{ ...staff, subscribe: ['community/gw/security/#'] }, await account('nurse', ['community/#'], [], true)]);
    suite.broker.publish('community/gw/canteen/m1/p', '2');
    suite.broker.publish('community/gw/security/io-1/door', '3');
    await waitFor(() => s.received.length === 2, 3000, 'the allowed one');
    await sleep(100);
    expect(s.received.map((m) => m.payload)).toEqual(['1', '3']);
    expect(n.received.map((m) => m.payload)).toEqual(['120', '1', '2', '3']);
  });
});
