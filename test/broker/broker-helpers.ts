// An embedded LocalBroker on ephemeral ports for the limit, fuzz and listener tests, and
// mqtt.js clients against it.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterEach } from 'vitest';
import type { RawClient } from './raw-mqtt.js';
import { AccessControl, hashPassword, type Account } from '../../src/broker/access.js';
import { LocalBroker, type LocalBrokerOptions } from '../../src/broker/local-broker.js';
import { silentLogger, type Logger } from '../../src/log.js';

export const APP_PASSWORD = 'app-pass-1';
let appHash: Promise<string> | null = null;

/** Account "app": publishes and subscribes under apps/#, reads community/#. */
export async function appAccount(): Promise<Account> {
  appHash ??= hashPassword(APP_PASSWORD);
  return { username: 'app', passwordHash: await appHash, publish: ['apps/#'], subscribe: ['apps/#', 'community/#'], personal: false };
}

export async function startBroker(opts: Partial<LocalBrokerOptions> = {}, anonymous: 'off' | 'loopback' | 'lan' = 'loopback', log: Logger = silentLogger()): Promise<LocalBroker> {
  return (await startBrokerWithAccess(opts, [], anonymous, log)).broker;
}

const hashes = new Map<string, Promise<string>>();

/** Another account with password `${username}-pass-1`. */
export async function account(username: string, subscribe: string[], publish: string[] = [], personal = false): Promise<Account> {
  if (!hashes.has(username)) hashes.set(username, hashPassword(`${username}-pass-1`));
  return { username, passwordHash: await hashes.get(username)!, publish, subscribe, personal };
}

/** The broker with the "app" account and `more`, and its AccessControl (for reload tests). */
export async function startBrokerWithAccess(opts: Partial<LocalBrokerOptions> = {}, more: Account[] = [], anonymous: 'off' | 'loopback' | 'lan' = 'loopback', log: Logger = silentLogger()): Promise<{ broker: LocalBroker; access: AccessControl }> {
  const access = new AccessControl({ anonymous, accounts: [await appAccount(), ...more], personalTopics: new Set(), anonymousSubscribe: ['community/#'] });
  const broker = new LocalBroker({ host: '127.0.0.1', port: 0, ...opts }, log, access);
  await broker.start();
  return { broker, access };
}

export interface Received {
  topic: string;
  payload: string;
}

/** An mqtt.js client that never reconnects; resolves once CONNACK 0 arrived. */
export function connectClient(url: string, opts: IClientOptions = {}): Promise<MqttClient & { received: Received[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts }) as MqttClient & { received: Received[]; closed: boolean };
    c.received = [];
    c.closed = false;
    c.on('message', (topic, payload) => c.received.push({ topic, payload: payload.toString() }));
    c.on('close', () => {
      c.closed = true;
      reject(new Error(`${url}: closed before CONNACK`));
    });
    c.on('error', () => undefined);
    c.once('connect', () => resolve(c));
  });
}

/** Connects and waits for the outcome: 'connected' or 'closed' (refused before or at CONNACK). */
export function tryConnect(url: string, opts: IClientOptions = {}): Promise<{ outcome: 'connected' | 'closed'; client: MqttClient; error?: Error }> {
  return new Promise((resolve) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    let error: Error | undefined;
    c.on('error', (e) => (error = e));
    c.once('connect', () => resolve({ outcome: 'connected', client: c }));
    c.once('close', () => resolve({ outcome: 'closed', client: c, ...(error ? { error } : {}) }));
  });
}

/** The granted QoS, or 128 for SUBACK failure (mqtt.js 5 rejects those). */
export async function subscribe(c: MqttClient, topic: string, qos: 0 | 1 = 0): Promise<number> {
  try {
    const granted = await c.subscribeAsync(topic, { qos });
    return granted[0]!.qos;
  } catch (err) {
    const g = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (g?.[0] === 128) return 128;
    throw err;
  }
}

export function end(...clients: (MqttClient | undefined)[]): Promise<unknown> {
  return Promise.all(clients.map((c) => c?.endAsync(true).catch(() => undefined)));
}

/** One test file's broker, clients and raw sockets, all closed after each test. */
export interface BrokerSuite {
  broker: LocalBroker | null;
  readonly clients: MqttClient[];
  readonly raws: RawClient[];
  url(): string;
}

export function brokerSuite(): BrokerSuite {
  const s: BrokerSuite = { broker: null, clients: [], raws: [], url: () => `mqtt://127.0.0.1:${s.broker!.port}` };
  afterEach(async () => {
    for (const r of s.raws.splice(0)) r.destroy();
    await end(...s.clients.splice(0));
    await s.broker?.stop();
    s.broker = null;
  });
  return s;
}
