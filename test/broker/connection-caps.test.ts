// Connection-cap exhaustion (security review finding 8): idle sockets that never send
// CONNECT must not keep a legitimate client out. Sockets without CONNECT time out quickly,
// one address may hold only maxConnectionsPerAddress, connections not logged in may hold only
// maxPendingConnections (the oldest is closed for a new one), and a client asking keepalive 0
// is still closed after 1.5x maxKeepaliveSeconds of silence. Other loopback addresses
// (127.0.0.2 ...) stand in for other LAN hosts.
import { describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { waitFor } from '../helpers/peers.js';
import { connectClient, startBroker, subscribe, brokerSuite } from './broker-helpers.js';
import { RawClient } from './raw-mqtt.js';

const suite = brokerSuite();
const { clients, raws, url } = suite;

async function idleSockets(n: number, address: (i: number) => string): Promise<RawClient[]> {
  const out: RawClient[] = [];
  for (let i = 0; i < n; i++) {
    const r = new RawClient(suite.broker!.port, address(i));
    raws.push(r);
    out.push(r);
    await r.connected();
  }
  return out;
}

describe('local broker connection caps', () => {
  it('closes a socket that sends no CONNECT after connectTimeoutMs', async () => {
    suite.broker = await startBroker({ connectTimeoutMs: 300 });
    const [idle] = await idleSockets(1, () => '127.0.0.2');
    const t0 = Date.now();
    await idle!.done;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(idle!.received.length).toBe(0);
  });

  it('caps connections per source address: idle sockets from one host leave room for others', async () => {
    suite.broker = await startBroker({ maxConnections: 12, maxConnectionsPerAddress: 5, connectTimeoutMs: 30_000 });
    const idle = await idleSockets(15, () => '127.0.0.2');
    await waitFor(() => idle.filter((r) => r.closed).length === 10, 3000, 'ten refused');
    expect(suite.broker.stats).toMatchObject({ connections: 5, refusedPerAddress: 10 });
    const c = await connectClient(url(), { clientId: 'legit' });
    clients.push(c);
    expect(await subscribe(c, 'community/#')).toBe(0);
  });

  it('keeps room for clients that log in: idle sockets from many hosts cannot fill maxConnections', async () => {
    suite.broker = await startBroker({ maxConnections: 20, maxConnectionsPerAddress: 5, connectTimeoutMs: 30_000 });
    // 30 idle sockets, 3 from each of 10 addresses: over maxConnections, within the per-address cap.
    const idle = await idleSockets(30, (i) => `127.0.1.${1 + (i % 10)}`);
    await waitFor(() => suite.broker!.stats.connections === 10, 3000, 'pending connections capped at half of maxConnections');
    expect(idle.filter((r) => !r.closed).length).toBe(10);
    expect(suite.broker.stats.evictedPending).toBe(20);
    // Logged-in clients are not counted against the pending share and are never evicted.
    const legit: MqttClient[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await connectClient(url(), { clientId: `legit-${i}` });
      legit.push(c);
      await subscribe(c, 'community/#');
    }
    clients.push(...legit);
    await idleSockets(10, (i) => `127.0.2.${1 + i}`);
    await suite.broker.publishAsync('community/gw/x', 'x');
    for (const c of legit) await waitFor(() => c.received.length === 1, 3000, 'logged-in clients keep receiving');
    expect(legit.every((c) => !c.closed)).toBe(true);
  });

  it('bounds keepalive: a client asking keepalive 0 is closed after 1.5x maxKeepaliveSeconds of silence', async () => {
    suite.broker = await startBroker({ maxKeepaliveSeconds: 1 });
    const quiet = await connectClient(url(), { clientId: 'quiet', keepalive: 0 });
    clients.push(quiet);
    const pinging = await connectClient(url(), { clientId: 'pinging', keepalive: 1 });
    clients.push(pinging);
    const t0 = Date.now();
    await waitFor(() => quiet.closed, 4000, 'the silent client closed');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(suite.broker.stats.idleTimeouts).toBe(1);
    expect(pinging.closed).toBe(false); // it sends PINGREQ every second
  });
});
