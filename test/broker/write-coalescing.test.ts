// The gateway's own publishes are coalesced into one socket write per subscriber while they
// are in flight (LocalBroker.cork), and a steady stream is still flushed as it goes.
import { afterEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { LIVE_MAX_BUFFERED_BYTES } from '../../src/broker/broker-defaults.js';
import type { LocalBroker } from '../../src/broker/local-broker.js';
import { sleep, waitFor } from '../helpers/peers.js';
import { APP_PASSWORD, connectClient, end, startBroker, startBrokerWithAccess, subscribe, tryConnect } from './broker-helpers.js';

let broker: LocalBroker | null = null;
const clients: MqttClient[] = [];

afterEach(async () => {
  await end(...clients.splice(0));
  await broker?.stop();
  broker = null;
});

const url = () => `mqtt://127.0.0.1:${broker!.port}`;

describe('local broker write coalescing', () => {
  it("delivers one reply's readings to each subscriber in one write", async () => {
    broker = await startBroker();
    const subs = [await connectClient(url()), await connectClient(url())];
    clients.push(...subs);
    const chunks = subs.map(() => 0);
    for (const [i, c] of subs.entries()) {
      await subscribe(c, 'community/#');
      c.stream.on('data', () => chunks[i]!++);
    }
    for (let reply = 0; reply < 5; reply++) {
      for (let p = 0; p < 4; p++) broker.publish(`community/gw/canteen/dev-${reply}/p${p}`, JSON.stringify({ value: p }));
      await waitFor(() => subs.every((c) => c.received.length === 4 * (reply + 1)), 2000, `reply ${reply}`);
      await sleep(20); // apart in time, as replies are
    }
    expect(subs[0]!.received.slice(0, 4).map((m) => m.topic)).toEqual([0, 1, 2, 3].map((p) => `community/gw/canteen/dev-0/p${p}`));
    // One read per reply. Uncorked, aedes' setImmediate between two messages lets a reply go
    // out in more than one write (checked: [6, 6] without the cork).
    expect(chunks).toEqual([5, 5]);
    expect(broker.pending).toBe(0);
  });

  it('in a round of polls: writes when it ends, or at a publish once the window is coalesceMs old, with no timer', async () => {
    broker = await startBroker({ live: { coalesceMs: 40 } });
    const c = await connectClient(url());
    clients.push(c);
    await subscribe(c, 'community/#');
    broker.liveRound(true);
    for (let p = 0; p < 4; p++) broker.publish(`community/gw/canteen/dev-1/p${p}`, String(p));
    await sleep(200);
    expect(c.received).toEqual([]); // no window timer while the round is open
    broker.publish('community/gw/canteen/dev-2/p0', '4'); // the window is 200 ms old: written now, this one too
    await waitFor(() => c.received.length === 4, 1000, 'the first four at the next publish');
    broker.liveRound(false);
    await waitFor(() => c.received.length === 5, 1000, 'the rest at the round\'s end');
    expect(c.received.map((m) => m.payload)).toEqual(['0', '1', '2', '3', '4']);
    // Outside a round the window timer is back.
    broker.publish('community/gw/security/io-1/door', '5');
    await waitFor(() => c.received.length === 6, 1000, 'by the timer');
  });

  it('flushes a stream that never pauses for the coalescing window, without waiting for its end', async () => {
    broker = await startBroker();
    const c = await connectClient(url());
    clients.push(c);
    await subscribe(c, 'community/#');
    let published = 0;
    let publishedAtFirstArrival = -1;
    c.on('message', () => {
      if (publishedAtFirstArrival < 0) publishedAtFirstArrival = published;
    });
    // A burst every millisecond: never 10 ms without a publish.
    const until = Date.now() + 300;
    while (Date.now() < until) {
      for (let i = 0; i < 10; i++) broker.publish(`community/gw/security/io-1/in${i}`, 'x');
      published += 10;
      await sleep(1);
    }
    await waitFor(() => c.received.length === published, 10_000, 'every message');
    expect(publishedAtFirstArrival).toBeGreaterThan(0);
    expect(publishedAtFirstArrival).toBeLessThan(published / 2);
    expect(broker.stats.droppedLive).toBe(0);
  });

  it('keeps delivering to the others while one subscriber stops reading; drops its live messages, then closes it', async () => {
    broker = await startBroker({ live: { drainTimeoutMs: 1500 } });
    const stuck = await connectClient(url());
    const live = await connectClient(url());
    clients.push(stuck, live);
    await subscribe(stuck, 'community/#');
    await subscribe(live, 'community/#');
    // The stuck client stops reading: its kernel buffers fill, then its connection's own
    // buffer. Nothing may stay corked waiting for it, and it may not hold more than
    // LIVE_MAX_BUFFERED_BYTES of the gateway's messages.
    stuck.stream.pause();
    const payload = 'x'.repeat(2000);
    let sent = 0;
    const stuckConn = () => [...(broker as unknown as { readyConns: Set<{ writableLength: number; destroyed: boolean }> }).readyConns].find((k) => k.writableLength > 0);
    let maxWaiting = 0;
    // Until closed: loopback's kernel buffers take several MB before the connection's fills.
    const until = Date.now() + 15_000;
    while (Date.now() < until && broker.stats.slowSubscribersClosed === 0) {
      for (let p = 0; p < 4; p++) broker.publish(`community/gw/canteen/dev-1/p${p}`, payload);
      sent += 4;
      maxWaiting = Math.max(maxWaiting, stuckConn()?.writableLength ?? 0);
      await sleep(2);
    }
    await waitFor(() => live.received.length === sent, 10_000, 'every message at the reading subscriber');
    expect(broker.stats.droppedLive).toBeGreaterThan(0);
    expect(maxWaiting).toBeLessThanOrEqual(LIVE_MAX_BUFFERED_BYTES + 4 * 2100);
    // Closed by the broker (the paused client notices once it reads again).
    expect(broker.stats.slowSubscribersClosed).toBe(1);
    await waitFor(() => broker!.clients === 1, 2000, 'one client left');
    stuck.stream.resume();
    await waitFor(() => stuck.closed, 5000, 'the stuck client sees the close');
    broker.publish('community/gw/canteen/dev-1/after', 'y');
    await waitFor(() => live.received.some((m) => m.topic.endsWith('/after')), 2000, 'a later message');
  });

  it('never holds back the CONNACK of a refused login while the gateway publishes (it would be lost with the close)', async () => {
    ({ broker } = await startBrokerWithAccess());
    const watcher = await connectClient(url());
    clients.push(watcher);
    await subscribe(watcher, 'community/#');
    // The gateway's live stream: some connection is corked nearly all the time.
    const stream = setInterval(() => broker!.publish('community/gw/canteen/dev-1/p', '1'), 1);
    try {
      for (let i = 0; i < 10; i++) {
        const r = await tryConnect(url(), { username: 'app', password: `${APP_PASSWORD}-wrong` });
        expect(r.outcome).toBe('closed');
        // A refusing CONNACK arrived (mqtt.js turns it into "Connection refused: ..."; 4, or 3
        // once the login back-off holds the address), not a bare close.
        expect(r.error?.message ?? 'no CONNACK').toMatch(/^Connection refused/i);
      }
    } finally {
      clearInterval(stream);
    }
  });
});
