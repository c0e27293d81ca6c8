// The optional TLS and WebSocket listeners: same broker, same accounts, same limits.
// TLS with mosquitto_sub/mosquitto_pub (--cafile, and client certificates for mutual TLS),
// WebSocket with mqtt.js on ws://127.0.0.1:PORT/mqtt.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { WebSocket } from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LocalBroker } from '../../src/broker/local-broker.js';
import { makeCerts, type Certs } from '../helpers/certs.js';
import { MosquittoSub, sleep, tmpDir, waitFor } from '../helpers/peers.js';
import { APP_PASSWORD, connectClient, end, startBroker, subscribe, tryConnect } from './broker-helpers.js';
import { RawClient, connectPacket } from './raw-mqtt.js';

let certs: Certs;
let broker: LocalBroker | null = null;
const clients: MqttClient[] = [];
const subs: MosquittoSub[] = [];

beforeAll(() => {
  certs = makeCerts();
});

afterEach(async () => {
  for (const s of subs.splice(0)) s.stop();
  await end(...clients.splice(0));
  await broker?.stop();
  broker = null;
});

/** Runs a mosquitto client without blocking: the broker under test lives in this process. */
function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Publishes from the gateway every 100 ms until `until()` holds. */
async function publishUntil(b: LocalBroker, topic: string, payload: string, until: () => boolean, what: string): Promise<void> {
  const stop = Date.now() + 8000;
  while (!until()) {
    if (Date.now() > stop) throw new Error(`timed out waiting for ${what}`);
    await b.publishAsync(topic, payload);
    await sleep(100);
  }
}

/** A non-loopback address of this machine, to connect from "the LAN". */
function lanAddress(): string | undefined {
  return Object.values(os.networkInterfaces())
    .flat()
    .find((a) => a && !a.internal && a.family === 'IPv4')?.address;
}

describe('TLS listener', () => {
  it('serves mosquitto_sub --cafile; a plain-TCP client on the TLS port fails', async () => {
    broker = await startBroker({ tls: { port: 0, certFile: certs.serverCert, keyFile: certs.serverKey } });
    const tlsPort = broker.tlsPort!;
    expect(tlsPort).toBeGreaterThan(0);
    expect(tlsPort).not.toBe(broker.port);

    const sub = new MosquittoSub(tlsPort, 'community/tls/#', ['--cafile', certs.caCert]);
    subs.push(sub);
    await publishUntil(broker, 'community/tls/x', 'over-tls', () => sub.lines.length > 0, 'a message over TLS');
    expect(sub.lines[0]).toMatchObject({ topic: 'community/tls/x', payload: 'over-tls' });

    // Accounts apply on the TLS listener as on the plain one.
    const ok = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tlsPort), '--cafile', certs.caCert, '-u', 'app', '-P', APP_PASSWORD, '-t', 'apps/x', '-m', 'hi']);
    expect(ok.status, ok.stderr).toBe(0);
    const wrong = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tlsPort), '--cafile', certs.caCert, '-u', 'app', '-P', 'wrong', '-t', 'apps/x', '-m', 'hi']);
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/not authori[sz]ed|bad user name or password/i);

    // Plain MQTT on the TLS port: no CONNACK, the handshake fails and is counted.
    const plain = await tryConnect(`mqtt://127.0.0.1:${tlsPort}`, { connectTimeout: 3000 });
    clients.push(plain.client);
    expect(plain.outcome).toBe('closed');
    const raw = new RawClient(tlsPort);
    await raw.write(connectPacket('plain-on-tls'));
    await Promise.race([raw.done, sleep(3000)]);
    expect(raw.closed).toBe(true);
    expect(raw.connack).toBeUndefined();
    expect(broker.stats.tlsHandshakeFailures).toBeGreaterThanOrEqual(1);
    // A client that does not trust the CA refuses the broker.
    const untrusted = await run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(tlsPort), '--cafile', certs.rogueCaCert, '-t', 'community/#', '-C', '1', '-W', '3']);
    expect(untrusted.status).not.toBe(0);
    expect(untrusted.stdout).toBe('');
  });

  it('with requireClientCert, only clients with a certificate from caFile get in', async () => {
    broker = await startBroker({ tls: { port: 0, certFile: certs.serverCert, keyFile: certs.serverKey, caFile: certs.caCert, requireClientCert: true } });
    const tlsPort = broker.tlsPort!;
    const sub = new MosquittoSub(tlsPort, 'community/mtls/#', ['--cafile', certs.caCert, '--cert', certs.clientCert, '--key', certs.clientKey]);
    subs.push(sub);
    await publishUntil(broker, 'community/mtls/x', 'mutual', () => sub.lines.length > 0, 'a message over mutual TLS');

    const args = ['-h', '127.0.0.1', '-p', String(tlsPort), '--cafile', certs.caCert, '-t', 'community/#', '-C', '1', '-W', '3'];
    const noCert = await run('mosquitto_sub', args);
    expect(noCert.status).not.toBe(0);
    const rogue = await run('mosquitto_sub', [...args, '--cert', certs.rogueClientCert, '--key', certs.rogueClientKey]);
    expect(rogue.status).not.toBe(0);
    expect(noCert.stdout + rogue.stdout).toBe('');
    await waitFor(() => broker!.stats.tlsHandshakeFailures >= 2, 3000, 'handshake failures counted');
  });

  it('refuses to start on a missing or unusable file, naming the field and the file', async () => {
    const missing = path.join(tmpDir(), 'nope.key');
    await expect(startBroker({ tls: { port: 0, certFile: certs.serverCert, keyFile: missing } })).rejects.toThrow(`localBroker.tls.keyFile: cannot read ${missing}: ENOENT`);
    await expect(startBroker({ tls: { port: 0, certFile: certs.serverCert, keyFile: certs.serverKey, caFile: missing, requireClientCert: true } })).rejects.toThrow(/^localBroker\.tls\.caFile: cannot read .*nope\.key/);
    const notPem = path.join(tmpDir(), 'cert.pem');
    fs.writeFileSync(notPem, 'not a certificate\n');
    await expect(startBroker({ tls: { port: 0, certFile: notPem, keyFile: certs.serverKey } })).rejects.toThrow(/^localBroker\.tls: cannot use certFile .*cert\.pem/);
  });
});

describe('WebSocket listener', () => {
  const wsUrl = (b: LocalBroker, host = '127.0.0.1') => `ws://${host}:${b.websocketPort}/mqtt`;

  it('serves mqtt.js on ws://127.0.0.1:PORT/mqtt with subprotocol mqtt', async () => {
    broker = await startBroker({ websocket: { port: 0 } });
    expect(broker.websocketPort).toBeGreaterThan(0);
    // Anonymous from loopback is allowed in this broker (anonymous: loopback): the WebSocket
    // client's address is seen as 127.0.0.1.
    const c = await connectClient(wsUrl(broker), { clientId: 'ws-anon' });
    clients.push(c);
    expect(await subscribe(c, 'community/ws/#')).toBe(0);
    await broker.publishAsync('community/ws/a', 'one');
    await broker.publishAsync('community/ws/b', 'two');
    await waitFor(() => c.received.length === 2, 3000, 'messages over WebSocket');
    expect(c.received).toEqual([
      { topic: 'community/ws/a', payload: 'one' },
      { topic: 'community/ws/b', payload: 'two' },
    ]);
    // An account publishes over WebSocket, a TCP client receives.
    const tcp = await connectClient(`mqtt://127.0.0.1:${broker.port}`, { username: 'app', password: APP_PASSWORD });
    const wsApp = await connectClient(wsUrl(broker), { username: 'app', password: APP_PASSWORD });
    clients.push(tcp, wsApp);
    await subscribe(tcp, 'apps/#');
    await wsApp.publishAsync('apps/from-ws', 'hello');
    await waitFor(() => tcp.received.length === 1, 3000, 'WebSocket publish reaching a TCP client');

    // The handshake selects "mqtt"; other paths and plain HTTP get nothing.
    const proto = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(wsUrl(broker!), ['mqtt']);
      ws.once('open', () => {
        resolve(ws.protocol);
        ws.close();
      });
      ws.once('error', reject);
    });
    expect(proto).toBe('mqtt');
    const wrongPath = await tryConnect(`ws://127.0.0.1:${broker.websocketPort}/other`);
    clients.push(wrongPath.client);
    expect(wrongPath.outcome).toBe('closed');
    const status = await new Promise<number>((resolve, reject) => http.get(`http://127.0.0.1:${broker!.websocketPort}/mqtt`, (res) => (res.resume(), resolve(res.statusCode!))).on('error', reject));
    expect(status).toBe(426);
  });

  it('applies the anonymous rules to WebSocket clients by their real address', async () => {
    const lan = lanAddress();
    broker = await startBroker({ host: '0.0.0.0', websocket: { port: 0 } }, 'loopback');
    const local = await tryConnect(wsUrl(broker), { clientId: 'ws-local' });
    clients.push(local.client);
    expect(local.outcome).toBe('connected');
    if (lan) {
      // The same anonymous client from the LAN address is refused (CONNACK 5).
      const remote = await tryConnect(wsUrl(broker, lan), { clientId: 'ws-lan' });
      clients.push(remote.client);
      expect(remote.outcome).toBe('closed');
      expect(remote.error?.message).toMatch(/not authori[sz]ed/i);
      const withAccount = await tryConnect(wsUrl(broker, lan), { username: 'app', password: APP_PASSWORD });
      clients.push(withAccount.client);
      expect(withAccount.outcome).toBe('connected');
    }
    await broker.stop();

    broker = await startBroker({ websocket: { port: 0 } }, 'off');
    const anon = await tryConnect(wsUrl(broker), { clientId: 'ws-anon-off' });
    clients.push(anon.client);
    expect(anon.outcome).toBe('closed');
    expect(anon.error?.message).toMatch(/not authori[sz]ed/i);
    const wrong = await tryConnect(wsUrl(broker), { username: 'app', password: 'wrong' });
    clients.push(wrong.client);
    expect(wrong.outcome).toBe('closed');
    expect(wrong.error?.message).toMatch(/bad user ?name or password/i);
    expect(broker.stats.refusedLogins).toBe(2);
  });

  it('applies maxPacketBytes and the shared connection cap to WebSocket clients', async () => {
    broker = await startBroker({ maxPacketBytes: 1024, maxConnections: 3, websocket: { port: 0 }, tls: { port: 0, certFile: certs.serverCert, keyFile: certs.serverKey } });
    const watcher = await connectClient(`mqtt://127.0.0.1:${broker.port}`, { username: 'app', password: APP_PASSWORD });
    clients.push(watcher);
    await subscribe(watcher, 'apps/#');
    const bad = await connectClient(wsUrl(broker), { username: 'app', password: APP_PASSWORD });
    clients.push(bad);
    await bad.publishAsync('apps/small', 'fine');
    void bad.publishAsync('apps/big', Buffer.alloc(4000, 0x61)).catch(() => undefined);
    await waitFor(() => bad.closed, 3000, 'the WebSocket offender disconnected');
    expect(broker.stats.oversizedPackets).toBe(1);
    await waitFor(() => watcher.received.length === 1, 3000, 'the small message');
    expect(watcher.received.map((m) => m.topic)).toEqual(['apps/small']);

    // Three connections over three listeners fill the cap; a fourth on any listener is refused.
    await waitFor(() => broker!.stats.connections === 1, 3000, 'the offender gone');
    const ws = await connectClient(wsUrl(broker), { clientId: 'ws-2' });
    const sub = new MosquittoSub(broker.tlsPort!, 'community/cap/#', ['--cafile', certs.caCert]);
    subs.push(sub);
    clients.push(ws);
    await waitFor(() => broker!.stats.connections === 3, 3000, 'three connections');
    // Logged in over TCP, WebSocket and TLS: none of them counts against maxPendingConnections.
    await waitFor(() => broker!.stats.pendingConnections === 0, 3000, 'no connection pending once logged in');
    for (const url of [wsUrl(broker), `mqtt://127.0.0.1:${broker.port}`]) {
      const r = await tryConnect(url);
      clients.push(r.client);
      expect(r.outcome, url).toBe('closed');
    }
    const tlsRefused = await run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(broker.tlsPort), '--cafile', certs.caCert, '-t', 'community/#', '-C', '1', '-W', '3']);
    expect(tlsRefused.status).not.toBe(0);
    expect(broker.stats.refusedConnections).toBe(3);
    await publishUntil(broker, 'community/cap/x', 'still', () => sub.lines.length > 0, 'the TLS subscriber still served');
    expect(broker.stats.tlsHandshakeFailures).toBe(0); // refusals are not handshake failures
  });
});
