// The embedded broker's limits, seen by real clients on real sockets: the connection cap,
// oversized packets, and a bounded fuzz loop of malformed input. Each offender is
// disconnected; the other clients keep receiving throughout.
import { describe, expect, it } from 'vitest';
import { sleep, waitFor } from '../helpers/peers.js';
import { APP_PASSWORD, connectClient, end, startBroker, subscribe, tryConnect, brokerSuite } from './broker-helpers.js';
import { RawClient, connectPacket, packet, publishPacket, subscribePacket, varint } from './raw-mqtt.js';
import { seededRandom } from '../../src/sim/random.js';

const suite = brokerSuite();
const { clients, raws, url } = suite;
const app = { username: 'app', password: APP_PASSWORD };

describe('local broker limits', () => {
  it('closes connections past maxConnections at once; the first ones keep receiving', async () => {
    suite.broker = await startBroker({ maxConnections: 3 });
    const subs = [];
    for (let i = 0; i < 3; i++) {
      const c = await connectClient(url(), { clientId: `cap-${i}` });
      clients.push(c);
      await subscribe(c, 'community/cap/#');
      subs.push(c);
    }
    expect(suite.broker.stats).toMatchObject({ connections: 3, clients: 3, refusedConnections: 0 });

    const t0 = Date.now();
    const fourth = await tryConnect(url(), { clientId: 'cap-3' });
    clients.push(fourth.client);
    expect(fourth.outcome).toBe('closed');
    expect(Date.now() - t0).toBeLessThan(2000); // refused at once, not left to time out
    expect(suite.broker.stats.refusedConnections).toBe(1);
    // A raw socket is refused just the same (no CONNACK, closed).
    const raw = new RawClient(suite.broker.port);
    raws.push(raw);
    await raw.done;
    expect(raw.received.length).toBe(0);
    expect(suite.broker.stats.refusedConnections).toBe(2);

    for (let i = 0; i < 5; i++) await suite.broker.publishAsync('community/cap/x', `m${i}`);
    for (const c of subs) {
      await waitFor(() => (c as unknown as { received: unknown[] }).received.length === 5, 3000, 'the first three receive');
    }
    expect(suite.broker.stats).toMatchObject({ connections: 3, clients: 3 });

    // A slot freed is a slot again.
    await end(subs[0]);
    await waitFor(() => suite.broker!.stats.connections === 2, 3000, 'slot freed');
    const again = await connectClient(url(), { clientId: 'cap-4' });
    clients.push(again);
    expect(suite.broker.stats.refusedConnections).toBe(2);
  });

  it('disconnects a client publishing over maxPacketBytes; others keep receiving, the big message goes nowhere', async () => {
    suite.broker = await startBroker({ maxPacketBytes: 1024 });
    const watcher = await connectClient(url(), { ...app, clientId: 'watcher' });
    clients.push(watcher);
    await subscribe(watcher, 'apps/#');
    await subscribe(watcher, 'community/#');
    const good = await connectClient(url(), { ...app, clientId: 'good' });
    const bad = await connectClient(url(), { ...app, clientId: 'bad' });
    clients.push(good, bad);

    await suite.broker.publishAsync('community/gw/before', 'gw-1');
    await good.publishAsync('apps/good', 'good-1');
    await waitFor(() => watcher.received.length === 2, 3000, 'messages before');

    // Just under the limit passes (1024 bytes with the fixed header) ...
    await bad.publishAsync('apps/bad', Buffer.alloc(1024 - 3 - 2 - 'apps/bad'.length, 0x61));
    await waitFor(() => watcher.received.some((m) => m.topic === 'apps/bad'), 3000, 'a packet of exactly maxPacketBytes');
    // ... one byte more closes the connection.
    void bad.publishAsync('apps/bad', Buffer.alloc(2000, 0x62)).catch(() => undefined);
    await waitFor(() => bad.closed, 3000, 'the offender disconnected');
    expect(suite.broker.stats.oversizedPackets).toBe(1);

    await suite.broker.publishAsync('community/gw/after', 'gw-2');
    await good.publishAsync('apps/good', 'good-2');
    await waitFor(() => watcher.received.length === 5, 3000, 'messages after');
    expect(watcher.received.map((m) => m.payload.slice(0, 6))).toEqual(['gw-1', 'good-1', 'aaaaaa', 'gw-2', 'good-2']);
    expect(watcher.closed || good.closed).toBe(false);
  });

  it('closes a raw connection as soon as a packet announces too much, before any body byte', async () => {
    suite.broker = await startBroker({ maxPacketBytes: 4096 });
    const raw = new RawClient(suite.broker.port);
    raws.push(raw);
    await raw.write(connectPacket('raw-big'));
    await waitFor(() => raw.connack === 0, 3000, 'CONNACK');
    // 268,435,455 bytes announced, none sent: the broker must not wait for them.
    await raw.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]));
    await Promise.race([raw.done, sleep(2000)]);
    expect(raw.closed).toBe(true);
    expect(suite.broker.stats.oversizedPackets).toBe(1);
  });
});

describe('local broker fuzz', () => {
  it('survives 300 malformed connections; a control subscriber gets every message during and after', async () => {
    const seed = 20261126;
    const rnd = seededRandom(seed); // the same seed gives the same fuzz run
    const int = (n: number) => Math.floor(rnd() * n);
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
    // All fuzz clients come from 127.0.0.1: the per-address cap and the login back-off (its
    // bad logins) would otherwise refuse some of them, which is tested elsewhere
    // (connection-caps.test.ts, login-backoff.test.ts); here every connection must reach aedes.
    suite.broker = await startBroker({ maxPacketBytes: 8192, maxConnections: 100, maxConnectionsPerAddress: 100, loginBackoff: { freeFailures: 1000 } });
    const b = suite.broker;

    const control = await connectClient(url(), { ...app, clientId: 'control' });
    clients.push(control);
    await subscribe(control, 'community/control/#', 1);
    await subscribe(control, 'apps/control/#', 1);
    const publisher = await connectClient(url(), { ...app, clientId: 'publisher' });
    clients.push(publisher);

    // Messages throughout: the gateway's own (QoS 1) and a well-behaved client's.
    let sent = 0;
    let running = true;
    const rounds: number[] = []; // when each round of the ticker was acknowledged
    const ticker = (async () => {
      while (running) {
        const n = sent++;
        await Promise.all([b.publishAsync(`community/control/${n}`, `gw-${n}`, { qos: 1 }), publisher.publishAsync(`apps/control/${n}`, `app-${n}`, { qos: 1 })]);
        rounds.push(Date.now());
        await sleep(15);
      }
    })();

    const cases: Record<string, () => Buffer[]> = {
      randomBytes: () => [bytes(1 + int(300))],
      truncatedConnect: () => {
        const c = connectPacket(`fz-${int(1e6)}`);
        return [c.subarray(0, 1 + int(c.length - 1))];
      },
      fiveByteLength: () => [Buffer.from([0x10, 0x80, 0x80, 0x80, 0x80, 0x01]), bytes(int(20))],
      connectThenFiveByteLength: () => [connectPacket(`fz-${int(1e6)}`), Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])],
      connectThenGarbage: () => [connectPacket(`fz-${int(1e6)}`), bytes(1 + int(200))],
      randomPacketTypes: () => {
        const out = [connectPacket(`fz-${int(1e6)}`)];
        for (let k = 0; k < 1 + int(5); k++) out.push(packet(int(256), bytes(int(60))));
        return out;
      },
      connectThenOversized: () => [connectPacket(`fz-${int(1e6)}`), Buffer.concat([Buffer.from([0x30]), varint(8192 + int(1e6)), bytes(int(100))])],
      badProtocol: () => {
        const c = Buffer.from(connectPacket(`fz-${int(1e6)}`));
        c[4 + int(6)] = int(256); // protocol name or level
        return [c];
      },
      badLoginThenPublish: () => [connectPacket(`fz-${int(1e6)}`, 'nobody', 'x'), publishPacket('community/control/spoof', 'spoof')],
      anonymousPublish: () => [connectPacket(`fz-${int(1e6)}`), publishPacket(rnd() < 0.5 ? 'community/control/spoof' : '$SYS/x', bytes(int(50)))],
      oddSubscribe: () => [connectPacket(`fz-${int(1e6)}`), subscribePacket(1 + int(65535), ['#', '+/+', 'a/#/b', '', '\u0000', 'community/#'][int(6)]!)],
      duplicateConnect: () => [connectPacket(`fz-${int(1e6)}`), connectPacket('control')],
    };
    const names = Object.keys(cases);
    const seen: Record<string, number> = {};

    const one = async (): Promise<void> => {
      const name = names[int(names.length)]!;
      seen[name] = (seen[name] ?? 0) + 1;
      const chunks = cases[name]!();
      const raw = new RawClient(b.port);
      await raw.connected().catch(() => undefined);
      for (const c of chunks) {
        // Sometimes split a chunk in two, to cross a boundary inside a header.
        if (c.length > 2 && rnd() < 0.3) {
          const cut = 1 + int(c.length - 1);
          await raw.write(c.subarray(0, cut));
          await raw.write(c.subarray(cut));
        } else {
          await raw.write(c);
        }
      }
      // Leave it open briefly (the broker may act), then half-close; never more than 1 s.
      await Promise.race([raw.done, sleep(int(40))]);
      raw.socket.end();
      await Promise.race([raw.done, sleep(1000)]);
      raw.destroy();
    };

    const before = { ...b.stats };
    const t0 = Date.now();
    const ITERATIONS = 300;
    const PARALLEL = 10;
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < ITERATIONS) {
          next++;
          await one();
        }
      }),
    );
    const fuzzMs = Date.now() - t0;
    const duringFuzz = sent;
    await sleep(200);
    running = false;
    await ticker;
    // And a few more after the fuzz.
    for (let n = sent; n < sent + 5; n++) await b.publishAsync(`community/control/${n}`, `gw-${n}`, { qos: 1 });
    const total = sent + 5;

    await waitFor(() => control.received.filter((m) => m.topic.startsWith('community/')).length >= total, 5000, 'every gateway message');
    await waitFor(() => control.received.filter((m) => m.topic.startsWith('apps/')).length >= sent, 5000, 'every publisher message');
    const gw = control.received.filter((m) => m.topic.startsWith('community/')).map((m) => m.payload);
    expect(gw).toEqual(Array.from({ length: total }, (_, n) => `gw-${n}`));
    const apps = control.received.filter((m) => m.topic.startsWith('apps/')).map((m) => m.payload);
    expect(apps).toEqual(Array.from({ length: sent }, (_, n) => `app-${n}`));
    expect(control.received.some((m) => m.payload === 'spoof')).toBe(false);
    expect(control.closed || publisher.closed).toBe(false);
    // Traffic kept moving during the fuzz: no pause between acknowledged rounds longer than
    // 2 s (a count would depend on how fast the fuzz happens to finish on this machine).
    const during = rounds.filter((t) => t >= t0 && t <= t0 + fuzzMs);
    const points = [t0, ...during, t0 + fuzzMs];
    const gaps = points.slice(1).map((t, i) => t - points[i]!);
    expect(during.length, `${duringFuzz} rounds in ${fuzzMs} ms`).toBeGreaterThan(2);
    expect(Math.max(...gaps), `${duringFuzz} rounds in ${fuzzMs} ms`).toBeLessThan(2000);
    expect(fuzzMs).toBeLessThan(20_000);

    // Every case ran, the counters moved, and no connection was left behind.
    expect(Object.keys(seen).sort()).toEqual([...names].sort());
    const after = b.stats;
    expect(after.malformedPackets).toBeGreaterThan(before.malformedPackets);
    expect(after.oversizedPackets).toBeGreaterThan(before.oversizedPackets);
    expect(after.clientErrors).toBeGreaterThan(before.clientErrors);
    expect(after.refusedLogins).toBeGreaterThan(before.refusedLogins);
    expect(after.refusedPublishes).toBeGreaterThan(before.refusedPublishes);
    expect(after.acceptedConnections - before.acceptedConnections).toBe(ITERATIONS);
    await waitFor(() => b.stats.connections === 2 && b.stats.clients === 2, 5000, 'only the two control clients left');
  }, 40_000);
});
