// The localBroker section of the site config: limit defaults and ranges, TLS and WebSocket
// listeners, their port clashes and TLS files.
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { parseSiteConfig } from '../../src/config/site-config.js';
import { LocalBrokerSchema } from '../../src/config/site-schema.js';
import { baseConfig, makeGateway } from '../helpers/gateway.js';
import { makeCerts } from '../helpers/certs.js';
import { connectClient, end } from './broker-helpers.js';

const profiles = loadProfiles(DRIVERS_DIR);

function parse(localBroker: Record<string, unknown>, over: Record<string, unknown> = {}) {
  return parseSiteConfig(stringify(baseConfig({ localBroker, web: { host: '127.0.0.1', port: 8080 }, ...over })), profiles);
}

function errors(localBroker: Record<string, unknown>, over: Record<string, unknown> = {}): string[] {
  const r = parse(localBroker, over);
  return r.ok ? [] : r.errors.map((e) => e.replace(/ \(line \d+\)$/, ''));
}

describe('localBroker config', () => {
  it('has safe defaults: 200 connections, 256 KiB packets, 23-character client ids, no TLS or WebSocket', () => {
    expect(LocalBrokerSchema.parse({})).toEqual({
      host: '0.0.0.0',
      port: 1883,
      anonymous: 'off',
      accounts: [],
      maxConnections: 200,
      maxPacketBytes: 262_144,
      maxClientIdLength: 23,
      maxConnectionsPerAddress: 20,
      connectTimeoutMs: 5000,
      maxKeepaliveSeconds: 300,
      sessionExpirySeconds: 259_200,
      maxSessionsPerAccount: 50,
      loginBackoff: { freeFailures: 5, baseDelayMs: 1000, maxDelayMs: 60_000, maxConcurrent: 2, maxQueued: 16 },
      memory: {
        inflightPerClient: 20,
        inflightBytesPerClient: 512 * 1024,
        inflightBytesTotal: 4 * 1024 ** 2,
        queuedPerClient: 1000,
        queuedBytesPerClient: 2 * 1024 ** 2,
        queuedBytesTotal: 16 * 1024 ** 2,
        retainedPerAccount: 100,
        retainedBytesPerAccount: 1 * 1024 ** 2,
        retainedTotal: 1000,
        retainedBytesTotal: 4 * 1024 ** 2,
      },
      live: { perPoint: true, perScan: false, coalesceMs: 10 },
    });
    const r = parse({ host: '127.0.0.1', port: 1883 });
    expect(r.ok && r.config.localBroker).toMatchObject({ maxConnections: 200, maxPacketBytes: 262_144, maxClientIdLength: 23 });
  });

  it('checks the limits\' ranges', () => {
    expect(errors({ maxConnections: 0 })).toEqual(['localBroker.maxConnections: must be 1..100000']);
    expect(errors({ maxPacketBytes: 100 })).toEqual(['localBroker.maxPacketBytes: must be 1024..268435455']);
    expect(errors({ maxPacketBytes: 268_435_456 })).toEqual(['localBroker.maxPacketBytes: must be 1024..268435455']);
    expect(errors({ maxClientIdLength: 10 })).toEqual(['localBroker.maxClientIdLength: must be 23..65535']);
    expect(errors({ connectTimeoutMs: 50 })).toEqual(['localBroker.connectTimeoutMs: must be 100..60000']);
    expect(errors({ maxConnectionsPerAddress: 0 })).toEqual(['localBroker.maxConnectionsPerAddress: must be 1..100000']);
    expect(errors({ sessionExpirySeconds: 0 })).toEqual(['localBroker.sessionExpirySeconds: must be 1..2592000']);
    expect(errors({ loginBackoff: { maxConcurrent: 0 } })).toEqual(['localBroker.loginBackoff.maxConcurrent: must be 1..64']);
    expect(errors({ memory: { queuedPerClient: 0 } })).toEqual(['localBroker.memory.queuedPerClient: must be 1..1000000']);
    expect(errors({ memory: { retained: 5 } })).toEqual(['localBroker.memory.retained: unknown key']);
    // A partial group keeps the other defaults.
    const r = parse({ memory: { retainedTotal: 10 }, loginBackoff: { freeFailures: 3 } });
    expect(r.ok && r.config.localBroker.memory).toMatchObject({ retainedTotal: 10, retainedPerAccount: 100 });
    expect(r.ok && r.config.localBroker.loginBackoff).toMatchObject({ freeFailures: 3, maxDelayMs: 60_000 });
  });

  it('takes TLS and WebSocket listeners with their defaults', () => {
    const c = makeCerts();
    const r = parse({ tls: { certFile: c.serverCert, keyFile: c.serverKey }, websocket: { host: '127.0.0.1' } });
    expect(r.ok, r.ok ? '' : r.errors.join('\n')).toBe(true);
    if (!r.ok) return;
    expect(r.config.localBroker.tls).toEqual({ port: 8883, certFile: c.serverCert, keyFile: c.serverKey, requireClientCert: false });
    expect(r.config.localBroker.websocket).toEqual({ host: '127.0.0.1', port: 8083 });
    expect(errors({ tls: { certFile: c.serverCert, keyFile: c.serverKey, requireClientCert: true } })).toEqual([
      'localBroker.tls.caFile: requireClientCert needs caFile (the CA that signs client certificates)',
    ]);
    expect(errors({ tls: { certFile: c.serverCert } })).toEqual(['localBroker.tls.keyFile: is required']);
    expect(errors({ websocket: { port: 9001, path: '/ws' } })).toEqual(['localBroker.websocket.path: unknown key']);
  });

  it('says which TLS file is missing', () => {
    const c = makeCerts();
    expect(errors({ tls: { certFile: c.serverCert, keyFile: '/nonexistent/server.key', caFile: '/nonexistent/ca.crt', requireClientCert: true } })).toEqual([
      'localBroker.tls.keyFile: file not found: /nonexistent/server.key',
      'localBroker.tls.caFile: file not found: /nonexistent/ca.crt',
    ]);
  });

  it('refuses TLS and WebSocket ports that clash with another listener', () => {
    const c = makeCerts();
    const tls = { certFile: c.serverCert, keyFile: c.serverKey };
    expect(errors({ port: 1883, tls: { ...tls, port: 1883 } })).toEqual(['localBroker.tls.port: port 1883 is also localBroker.port']);
    expect(errors({ port: 1883, websocket: { port: 8080 } })).toEqual(['localBroker.websocket.port: port 8080 is also web.port']);
    expect(errors({ port: 1883, tls: { ...tls, port: 9000 }, websocket: { port: 9000 } })).toEqual(['localBroker.websocket.port: port 9000 is also localBroker.tls.port']);
    // The defaults clash too: TLS on 8883 (default) and WebSocket on 8883.
    expect(errors({ port: 1883, tls, websocket: { port: 8883 } })).toEqual(['localBroker.websocket.port: port 8883 is also localBroker.tls.port']);
    expect(errors({ port: 1883, websocket: { port: 5020 } }, { simulator: { enabled: true, host: '127.0.0.1', port: 5020 } })).toEqual(['simulator.port: port 5020 is also localBroker.websocket.port']);
    // Port 0 (any free port, for tests) never clashes.
    expect(errors({ port: 0, tls: { ...tls, port: 0 }, websocket: { port: 0 } })).toEqual([]);
  });
});

describe('localBroker config in the gateway', () => {
  it('starts the WebSocket listener and the limits from the site config', async () => {
    const gw = makeGateway(baseConfig({ localBroker: { host: '127.0.0.1', port: 0, anonymous: 'loopback', maxConnections: 5, maxPacketBytes: 2048, websocket: { port: 0 } } }));
    await gw.start();
    try {
      const c = await connectClient(`ws://127.0.0.1:${gw.broker.websocketPort}/mqtt`);
      try {
        await c.subscribeAsync('community/gw-test/bridge/state');
        await new Promise((r) => setTimeout(r, 200));
        expect(c.received).toEqual([{ topic: 'community/gw-test/bridge/state', payload: 'online' }]);
        expect(gw.broker.stats).toMatchObject({ connections: 1, clients: 1, refusedConnections: 0 });
      } finally {
        await end(c);
      }
    } finally {
      await gw.stop();
    }
  });
});
