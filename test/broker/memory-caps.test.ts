// Memory caps (security review finding 7): what one publishing account can make the broker
// hold is bounded. Inbound QoS 2 awaiting PUBREL (count and bytes per client: the connection
// is closed past it), messages queued for a persistent session (past the cap they are not
// queued, counted), retained messages per account (a retained publish past it is refused and
// the connection closed), and a persistent session offline for sessionExpirySeconds is
// expired, which frees what it held. The counts are the broker's own (stats), read from the
// wrapped aedes persistence; no RSS figures.
import { describe, expect, it } from 'vitest';
import { sleep, waitFor } from '../helpers/peers.js';
import { APP_PASSWORD, connectClient, end, startBroker, subscribe, tryConnect, brokerSuite } from './broker-helpers.js';
import { RawClient, connectPacket, publishQosPacket, subscribePacket } from './raw-mqtt.js';

const suite = brokerSuite();
const { clients, raws, url } = suite;
const app = { username: 'app', password: APP_PASSWORD };

async function rawApp(clientId: string, clean: boolean): Promise<RawClient> {
  const r = new RawClient(suite.broker!.port);
  raws.push(r);
  await r.connected();
  await r.write(connectPacket(clientId, 'app', APP_PASSWORD, 30, clean));
  expect(await r.connackOrClose()).toBe(0);
  return r;
}

describe('local broker memory caps', () => {
  it('caps inbound QoS 2 awaiting PUBREL per client (count): the next one closes the connection; expiry frees the rest', async () => {
    suite.broker = await startBroker({ memory: { inflightPerClient: 5 }, sessionExpirySeconds: 1 });
    const r = await rawApp('half-open', false);
    // Half-open QoS 2 flows: PUBLISH, PUBREC back, never PUBREL.
    for (let id = 1; id <= 5; id++) await r.write(publishQosPacket('apps/q2', `m${id}`, 2, id));
    await waitFor(() => r.count(5) === 5, 3000, 'five PUBRECs');
    expect(suite.broker.stats.inflightMessages).toBe(5);
    await r.write(publishQosPacket('apps/q2', 'm6', 2, 6));
    await r.done;
    expect(r.count(5)).toBe(5); // no PUBREC for the sixth
    expect(suite.broker.stats.inflightMessages).toBe(5); // kept: it is session state (CleanSession 0) ...
    // ... until the session has been offline for sessionExpirySeconds.
    await waitFor(() => suite.broker!.stats.expiredSessions === 1, 4000, 'the session expired');
    expect(suite.broker.stats).toMatchObject({ inflightMessages: 0, inflightBytes: 0, persistentSessions: 0 });
  });

  it('caps inbound QoS 2 bytes per client and in total', async () => {
    suite.broker = await startBroker({ memory: { inflightBytesPerClient: 3000, inflightBytesTotal: 5000 } });
    const a = await rawApp('big-a', false);
    for (let id = 1; id <= 2; id++) await a.write(publishQosPacket('apps/q2', Buffer.alloc(1400), 2, id));
    await waitFor(() => a.count(5) === 2, 3000, 'two PUBRECs');
    await a.write(publishQosPacket('apps/q2', Buffer.alloc(1400), 2, 3));
    await a.done;
    expect(a.count(5)).toBe(2);
    const b = await rawApp('big-b', false);
    await b.write(publishQosPacket('apps/q2', Buffer.alloc(1400), 2, 1));
    await waitFor(() => b.count(5) === 1, 3000, 'one PUBREC');
    await b.write(publishQosPacket('apps/q2', Buffer.alloc(1400), 2, 2));
    await b.done; // 4 x 1,400+ bytes would pass the 5,000-byte total
    expect(b.count(5)).toBe(1);
    expect(suite.broker.stats.refusedInflight).toBe(2);
    expect(suite.broker.stats.inflightBytes).toBeLessThanOrEqual(5000);
  });

  it('caps messages queued for an offline persistent session; the rest is dropped and counted', async () => {
    suite.broker = await startBroker({ memory: { queuedPerClient: 5 } });
    const a = await connectClient(url(), { ...app, clientId: 'away', clean: false });
    await subscribe(a, 'apps/q', 1);
    await end(a);
    for (let i = 0; i < 20; i++) await suite.broker.publishAsync('apps/q', `m${i}`, { qos: 1 });
    expect(suite.broker.stats).toMatchObject({ queuedMessages: 5, droppedQueued: 15 });
    const back = await connectClient(url(), { ...app, clientId: 'away', clean: false });
    clients.push(back);
    await waitFor(() => back.received.length === 5, 3000, 'the five queued');
    await sleep(100);
    expect(back.received.map((r) => r.payload)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    await waitFor(() => suite.broker!.stats.queuedMessages === 0, 3000, 'acknowledged ones freed');
  });

  it('a session its owner wiped (a clean CONNECT) does not hold the total queue cap for others', async () => {
    suite.broker = await startBroker({ memory: { queuedBytesTotal: 10_000 } });
    const a = await connectClient(url(), { ...app, clientId: 'wiped', clean: false });
    await subscribe(a, 'apps/q', 1);
    await end(a);
    for (let i = 0; i < 8; i++) await suite.broker.publishAsync('apps/q', Buffer.alloc(1000), { qos: 1 });
    expect(suite.broker.stats.queuedMessages).toBe(8);
    // The owner comes back with CleanSession 1: aedes drops that session and its queue.
    const clean = await connectClient(url(), { ...app, clientId: 'wiped', clean: true });
    await end(clean);
    await sleep(100);
    // Another persistent session, offline: its messages must still be queued.
    const away = await connectClient(url(), { ...app, clientId: 'away-total', clean: false });
    await subscribe(away, 'apps/r', 1);
    await end(away);
    for (let i = 0; i < 5; i++) await suite.broker.publishAsync('apps/r', Buffer.alloc(1000), { qos: 1 });
    expect(suite.broker.stats.droppedQueued).toBe(0);
    const back = await connectClient(url(), { ...app, clientId: 'away-total', clean: false });
    clients.push(back);
    await waitFor(() => back.received.length === 5, 3000, 'the five queued');
  });

  it('caps queued bytes per client', async () => {
    suite.broker = await startBroker({ memory: { queuedBytesPerClient: 4096 } });
    const a = await connectClient(url(), { ...app, clientId: 'away-bytes', clean: false });
    await subscribe(a, 'apps/q', 1);
    await end(a);
    for (let i = 0; i < 10; i++) await suite.broker.publishAsync('apps/q', Buffer.alloc(1000), { qos: 1 });
    expect(suite.broker.stats.queuedMessages).toBe(4);
    expect(suite.broker.stats.queuedBytes).toBeLessThanOrEqual(4096);
    expect(suite.broker.stats.droppedQueued).toBe(6);
  });

  it('caps retained messages per account (count and bytes): the publish over it is refused and its connection closed', async () => {
    suite.broker = await startBroker({ memory: { retainedPerAccount: 3, retainedBytesPerAccount: 10_000 } });
    const pub = await connectClient(url(), { ...app, clientId: 'retainer' });
    for (let i = 1; i <= 3; i++) await pub.publishAsync(`apps/r${i}`, `v${i}`, { qos: 1, retain: true });
    // Replacing one of its own retained messages is fine.
    await pub.publishAsync('apps/r1', 'v1-new', { qos: 1, retain: true });
    pub.publish('apps/r4', 'v4', { qos: 1, retain: true });
    await waitFor(() => pub.closed, 3000, 'the over-cap publisher disconnected');
    expect(suite.broker.stats).toMatchObject({ refusedRetained: 1, retainedMessages: 3 });

    // Bytes: 6,000 + 6,000 would pass 10,000; deleting one (an empty retained message) makes room.
    const big = await connectClient(url(), { ...app, clientId: 'big' });
    clients.push(big);
    await big.publishAsync('apps/r2', Buffer.alloc(6000), { qos: 1, retain: true });
    big.publish('apps/r3', Buffer.alloc(6000), { qos: 1, retain: true });
    await waitFor(() => big.closed, 3000, 'disconnected on the byte cap');
    expect(suite.broker.stats.refusedRetained).toBe(2);
    expect(suite.broker.stats.retainedBytes).toBeLessThanOrEqual(10_000);

    const sub = await connectClient(url(), { ...app, clientId: 'reader' });
    clients.push(sub);
    await subscribe(sub, 'apps/#');
    await waitFor(() => sub.received.length === 3, 3000, 'the retained messages');
    await sleep(100);
    expect(sub.received.map((r) => r.topic).sort()).toEqual(['apps/r1', 'apps/r2', 'apps/r3']);
    expect(sub.received.find((r) => r.topic === 'apps/r3')!.payload).toBe('v3');
  });

  it('caps retained messages in total, and never refuses the gateway its own', async () => {
    suite.broker = await startBroker({ memory: { retainedTotal: 2 } });
    const pub = await connectClient(url(), { ...app, clientId: 'retainer' });
    clients.push(pub);
    await pub.publishAsync('apps/t1', 'a', { qos: 1, retain: true });
    await pub.publishAsync('apps/t2', 'b', { qos: 1, retain: true });
    const refused = await tryConnect(url(), { ...app, clientId: 'retainer-2' });
    clients.push(refused.client);
    refused.client.publish('apps/t3', 'c', { qos: 1, retain: true });
    await waitFor(() => refused.client.disconnected || !refused.client.connected, 3000, 'refused');
    for (let i = 0; i < 5; i++) await suite.broker.publishAsync(`community/gw/dev-${i}/availability`, 'online', { retain: true, qos: 1 });
    const sub = await connectClient(url(), { clientId: 'reader' });
    clients.push(sub);
    await subscribe(sub, 'community/#');
    await waitFor(() => sub.received.length === 5, 3000, 'the gateway retained all five');
    expect(suite.broker.stats.refusedRetained).toBe(1);
  });
});
