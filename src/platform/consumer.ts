// The reference platform consumer: the integrators' working example and the tests' witness.
// Subscribes with an MQTT 5 shared subscription ($share/<group>/fc/v1/#) so several run side
// by side, validates every message against the contract, de-duplicates items on
// (gatewayId, seq) and stores them: SQLite for a laptop (--db FILE), PostgreSQL for the
// province (--db postgres://...). A message is acknowledged (PUBACK) only after its rows are
// committed, so a consumer crash loses nothing the broker still holds; while the database is
// away (a restart, a lost connection) the message is retried and not acknowledged.
// Remote configuration (docs/UPLINK.md): config/set is the platform's own topic (bundles it
// sends) and is ignored; every config/result a gateway answers is validated and kept.
import fs from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from '../log.js';
import { ConfigResultMessage, DiagnosticsMessage, StatusMessage, UplinkMessage } from '../uplink/contract.js';
import { formatIssues } from '../config/issues.js';
import type { ConsumerStore, ItemKind, RegisterFacility, StoredConfigResult, StoredItem } from './store.js';
import { SqliteStore } from './store-sqlite.js';
import { isTransient, PostgresStore } from './store-postgres.js';

export interface ConsumerOptions {
  url: string;
  /** A SQLite file, or a PostgreSQL URL (postgres://user@host:port/db). */
  db: string;
  /** Shared-subscription group (default "ingest"); "none" subscribes without sharing, which a
   * broker restores with the persistent session after a restart (one consumer only). */
  group?: string;
  clientId?: string;
  username?: string;
  password?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface ConsumerStats {
  messages: number;
  items: number;
  duplicates: number;
  conflicts: number;
  rejected: number;
  statuses: number;
  /** config/result messages stored. */
  configResults: number;
  /** Messages on config/set (the platform's own bundles, or the empty message that clears a retained one). */
  ignored: number;
  /** Parts of diagnostics bundles (checked, counted, not stored: `platform push` collects them). */
  diagnostics: number;
  /** Store attempts that failed and were tried again (the database away). */
  retries: number;
}

export type { StoredConfigResult };

export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//.test(db);
}

export function openStore(db: string): ConsumerStore {
  return isPostgresUrl(db) ? new PostgresStore(db) : new SqliteStore(db);
}

/** SQLite errors worth waiting out: the file locked, the disk full or failing for a moment. */
function transient(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  if (code.startsWith('SQLITE_')) return /^SQLITE_(BUSY|LOCKED|FULL|IOERR)/.test(code);
  return isTransient(err);
}

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;

export class PlatformConsumer {
  private client: MqttClient | null = null;
  private storeImpl: ConsumerStore | null = null;
  private stopping = false;
  readonly stats: ConsumerStats = { messages: 0, items: 0, duplicates: 0, conflicts: 0, rejected: 0, statuses: 0, configResults: 0, ignored: 0, diagnostics: 0, retries: 0 };

  constructor(
    private readonly opts: ConsumerOptions,
    private readonly log: Logger,
  ) {}

  get store(): ConsumerStore {
    if (!this.storeImpl) throw new Error('the consumer is not started');
    return this.storeImpl;
  }

  async start(): Promise<void> {
    const store = openStore(this.opts.db);
    await store.migrate();
    this.storeImpl = store;
    this.stopping = false;
    const read = (f?: string) => (f ? fs.readFileSync(f) : undefined);
    const options: IClientOptions = {
      protocolVersion: 5,
      clientId: this.opts.clientId ?? `platform-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      clean: false,
      properties: { sessionExpiryInterval: 7 * 24 * 3600 },
      // Fast: after a Mosquitto restart the shared subscription is gone until we subscribe again,
      // and what a gateway publishes before that is dropped by the broker (docs/SCALE.md).
      reconnectPeriod: 250,
      // We subscribe ourselves on every connect (below). With mqtt.js' own resubscribe on, a
      // repeated subscribe() of a known topic is skipped, and mqtt.js does not resubscribe
      // when the broker reports the session present: the shared subscription would be lost.
      resubscribe: false,
      username: this.opts.username,
      password: this.opts.password,
      ca: read(this.opts.caFile),
      cert: read(this.opts.certFile),
      key: read(this.opts.keyFile),
    };
    const client = mqtt.connect(this.opts.url, options);
    this.client = client;
    // Store first, acknowledge after: mqtt.js sends the PUBACK when `done` runs, and reads the
    // next packet only then, so messages are stored one at a time in arrival order.
    client.handleMessage = (packet, done) => {
      if (packet.cmd !== 'publish') return done();
      this.handle(packet.topic, packet.payload as Buffer).then(
        (stored) => {
          if (stored) done();
        },
        (err: Error) => this.log.error({ err: err.message, topic: packet.topic }, 'platform consumer: message not stored, not acknowledged'),
      );
    };
    const filter = this.opts.group === 'none' ? 'fc/v1/#' : `$share/${this.opts.group ?? 'ingest'}/fc/v1/#`;
    // Subscribe on every connect: Mosquitto 2.0 does not restore a shared subscription of a
    // persistent session after a broker restart, although it reports the session present.
    // Messages published before this SUBSCRIBE reaches a restarted broker are dropped by it.
    client.on('connect', () => {
      client.subscribe(filter, { qos: 1 }, (err) => {
        if (err) this.log.error({ err: err.message, filter }, 'platform consumer: subscribe failed');
        else this.log.info({ url: this.opts.url, filter }, 'platform consumer subscribed');
      });
    });
    client.on('error', (err) => this.log.warn({ err: err.message }, 'platform consumer: connection error'));
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const c = this.client;
    this.client = null;
    if (c) await new Promise<void>((resolve) => c.end(false, {}, () => resolve()));
    await this.storeImpl?.close();
    this.storeImpl = null;
  }

  /** One message, stored (or rejected) for good: true to acknowledge it. A database that is
   * away is waited for; a stopping consumer gives up without acknowledging (the broker sends
   * the message again, to this group's next consumer). */
  private async handle(topic: string, payload: Buffer): Promise<boolean> {
    let wait = RETRY_MIN_MS;
    for (;;) {
      try {
        await this.onMessage(topic, payload);
        return true;
      } catch (err) {
        if (!transient(err)) {
          // The database will never take it (a bug, a value it refuses): kept as rejected, acknowledged.
          this.log.error({ err: (err as Error).message, topic }, 'platform consumer: the database refused the message');
          try {
            await this.store.storeRejected(topic, `not stored: ${(err as Error).message}`, payload.toString('utf8').slice(0, 65536), Date.now());
            this.stats.rejected++;
            return true;
          } catch (again) {
            if (!transient(again)) throw again;
          }
        }
        if (this.stopping) return false;
        this.stats.retries++;
        this.log.warn({ err: (err as Error).message, topic, retryInMs: wait }, 'platform consumer: database unavailable, the message waits (not acknowledged)');
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(wait * 2, RETRY_MAX_MS);
        if (this.stopping) return false;
      }
    }
  }

  /** Validates and stores one message; rejects (stores in `rejected`) what fails the contract. */
  async onMessage(topic: string, payload: Buffer): Promise<void> {
    const now = Date.now();
    const store = this.store;
    const reject = async (reason: string) => {
      await store.storeRejected(topic, reason, payload.toString('utf8').slice(0, 65536), now);
      this.stats.rejected++;
      this.log.warn({ topic, reason }, 'platform consumer: message rejected');
    };
    const parts = topic.split('/');
    // The platform's own bundles (and the empty retained message that clears one) come back on
    // fc/v1/#: they are ours, not a gateway's message.
    if (parts.length === 6 && parts[4] === 'config' && parts[5] === 'set') {
      this.stats.messages++;
      this.stats.ignored++;
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      await reject(`not JSON: ${(err as Error).message}`);
      this.stats.messages++;
      return;
    }
    await this.route(parts, json, reject, now);
    // Counted once handled: a message retried after a database error counts once.
    this.stats.messages++;
  }

  private async route(parts: string[], json: unknown, reject: (reason: string) => Promise<void>, now: number): Promise<void> {
    if (parts.length === 6 && parts[4] === 'config' && parts[5] === 'result') return this.onConfigResult(parts, json, reject, now);
    // A diagnostics command's answer (redacted, in parts): `platform push` collects it; the
    // consumer checks and counts it, it is not an item and is not stored.
    if (parts.length === 5 && parts[4] === 'diagnostics') {
      const d = DiagnosticsMessage.safeParse(json);
      if (!d.success) return reject(formatIssues(d.error).join('; '));
      if (d.data.gatewayId !== parts[3] || d.data.communityCode !== parts[2]) return reject('topic does not match the payload');
      this.stats.diagnostics++;
      return;
    }
    const parsed = UplinkMessage.safeParse(json);
    if (!parsed.success) return reject(formatIssues(parsed.error).join('; '));
    const m = parsed.data;
    if (parts.length !== 5 || parts[0] !== 'fc' || parts[1] !== 'v1' || parts[2] !== m.communityCode || parts[3] !== m.gatewayId || parts[4] !== m.kind) {
      return reject(`topic does not match the payload (communityCode ${m.communityCode}, gatewayId ${m.gatewayId}, kind ${m.kind})`);
    }
    if (m.kind === 'status') {
      await this.store.storeStatus(m as StatusMessage, now);
      this.stats.statuses++;
      return;
    }
    const r = await this.store.storeItems(m.gatewayId, m.communityCode, m.kind, m.items, now);
    this.stats.items += r.inserted;
    this.stats.duplicates += r.duplicates;
    this.stats.conflicts += r.conflicts;
    if (r.conflicts) this.log.error({ gatewayId: m.gatewayId, conflicts: r.conflicts }, 'platform consumer: same seq, different content');
  }

  private async onConfigResult(parts: string[], json: unknown, reject: (reason: string) => Promise<void>, now: number): Promise<void> {
    const parsed = ConfigResultMessage.safeParse(json);
    if (!parsed.success) return reject(formatIssues(parsed.error).join('; '));
    const m = parsed.data;
    if (parts[0] !== 'fc' || parts[1] !== 'v1' || parts[2] !== m.communityCode || parts[3] !== m.gatewayId) {
      return reject(`topic does not match the payload (communityCode ${m.communityCode}, gatewayId ${m.gatewayId}, kind config-result)`);
    }
    if (await this.store.storeConfigResult(m, now)) this.stats.configResults++;
    const fields = { gatewayId: m.gatewayId, version: m.version, outcome: m.outcome, reason: m.reason, detail: m.detail, hash: m.config.hash };
    if (m.outcome === 'applied') this.log.info(fields, 'platform consumer: config applied');
    else this.log.warn(fields, `platform consumer: config ${m.outcome}`);
  }

  // Reads, for tests and integrity checks (the store's own, async).

  /** A gateway's answers to bundles, oldest first. */
  configResults(gatewayId: string): Promise<StoredConfigResult[]> {
    return this.store.configResults(gatewayId);
  }

  /** Every stored seq of a gateway, ascending. */
  seqs(gatewayId: string): Promise<number[]> {
    return this.store.seqs(gatewayId);
  }

  items(gatewayId: string, kind?: ItemKind): Promise<StoredItem[]> {
    return this.store.items(gatewayId, kind);
  }

  lastStatus(gatewayId: string): Promise<StatusMessage | null> {
    return this.store.lastStatus(gatewayId);
  }

  /** The facility register's facilities (each gateway's newest inventory). */
  facilities(community?: string): Promise<RegisterFacility[]> {
    return this.store.facilities(community);
  }
}
