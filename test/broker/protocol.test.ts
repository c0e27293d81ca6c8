// Protocol rules aedes does not enforce for MQTT 3.1.1 (security review finding 11): the
// client id length (CONNACK 2, MQTT 3.1.1 section 3.1.3.1 / 3.2.2.3), U+0000 in a topic (the
// receiver closes the connection, section 1.5.3), wildcards in a PUBLISH topic (section 4.7.1).
// Each offender is closed, counted as malformed, and its message goes nowhere.
import { describe, expect, it } from 'vitest';
import { sleep, waitFor } from '../helpers/peers.js';
import { APP_PASSWORD, connectClient, startBroker, subscribe, tryConnect, brokerSuite } from './broker-helpers.js';
import { RawClient, connectPacket, publishQosPacket, subscribePacket } from './raw-mqtt.js';

const suite = brokerSuite();
const { clients, raws, url } = suite;

async function rawApp(clientId: string): Promise<RawClient> {
  const r = new RawClient(suite.broker!.port);
  raws.push(r);
  await r.connected();
  await r.write(connectPacket(clientId, 'app', APP_PASSWORD));
  expect(await r.connackOrClose()).toBe(0);
  return r;
}

describe('local broker protocol checks', () => {
  it('refuses a 3.1.1 client id longer than maxClientIdLength with CONNACK 2', async () => {
    suite.broker = await startBroker({ maxClientIdLength: 23 });
    const long = await tryConnect(url(), { clientId: 'x'.repeat(24), protocolVersion: 4 });
    clients.push(long.client);
    expect(long.outcome).toBe('closed');
    expect((long.error as Error & { code?: number }).code).toBe(2);
    expect(suite.broker.stats.loginRefusals.client_id_invalid).toBe(1);
    // 23 bytes is fine; the limit is in UTF-8 bytes (section 1.5.3), so 12 two-byte letters are not.
    const ok = await connectClient(url(), { clientId: 'y'.repeat(23) });
    clients.push(ok);
    const raw = new RawClient(suite.broker.port);
    raws.push(raw);
    await raw.connected();
    await raw.write(connectPacket('é'.repeat(12)));
    expect(await raw.connackOrClose()).toBe(2);
  });

  it('refuses an empty client id with CleanSession 0 (CONNACK 2, MQTT 3.1.1 section 3.1.3-8)', async () => {
    suite.broker = await startBroker();
    const raw = new RawClient(suite.broker.port);
    raws.push(raw);
    await raw.connected();
    await raw.write(connectPacket('', undefined, undefined, 30, false));
    expect(await raw.connackOrClose()).toBe(2);
  });

  it('closes a connection whose PUBLISH topic has U+0000, without PUBACK; the message goes nowhere', async () => {
    suite.broker = await startBroker();
    const watcher = await connectClient(url(), { username: 'app', password: APP_PASSWORD, clientId: 'watcher' });
    clients.push(watcher);
    await subscribe(watcher, 'apps/#');
    const r = await rawApp('nul');
    await r.write(publishQosPacket('apps/a\u0000b', 'x', 1, 7));
    await r.done;
    expect(r.count(4)).toBe(0); // no PUBACK
    expect(suite.broker.stats.malformedPackets).toBe(1);
    // A U+0000 in a SUBSCRIBE filter closes the connection as well.
    const s = await rawApp('nul-sub');
    await s.write(subscribePacket(1, 'apps/\u0000'));
    await s.done;
    expect(s.count(9)).toBe(0); // no SUBACK
    expect(suite.broker.stats.malformedPackets).toBe(2);
    await sleep(50);
    expect(watcher.received).toEqual([]);
  });

  it('closes a connection whose PUBLISH topic has a wildcard (MQTT 3.1.1 section 4.7.1)', async () => {
    suite.broker = await startBroker();
    const watcher = await connectClient(url(), { username: 'app', password: APP_PASSWORD, clientId: 'watcher' });
    clients.push(watcher);
    await subscribe(watcher, 'apps/#');
    for (const [i, topic] of ['apps/+', 'apps/#', 'apps/a+b'].entries()) {
      const r = await rawApp(`wild-${i}`);
      await r.write(publishQosPacket(topic, 'x', 1, 9));
      await r.done;
      expect(r.count(4)).toBe(0);
    }
    await waitFor(() => suite.broker!.stats.malformedPackets === 3, 2000, 'counted as malformed');
    expect(watcher.received).toEqual([]);
  });
});
