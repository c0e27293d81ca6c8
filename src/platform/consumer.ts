// The reference platform consumer: the integrators' working example and the tests' witness.
// Subscribes with an MQTT 5 shared subscription ($share/<group>/fc/v1/#) so several run side
// by side, validates every message against the contract, de-duplicates items on
// (gatewayId, seq) and stores them in SQLite. A message is acknowledged (PUBACK) only after
// its rows are committed, so a consumer crash loses nothing the broker still holds.
// Remote configuration (docs/UPLINK.md): config/set is the platform's own topic (bundles it
// sends) and is ignored; every config/result a gateway answers is validated and kept.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from '../log.js';
import { ConfigResultMessage, DiagnosticsMessage, UplinkMessage } from '../uplink/contract.js';
import { formatIssues } from '../config/issues.js';

export interface ConsumerOptions {
  url: string;
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
}

export interface StoredConfigResult {
  ts: number;
  version: number | null;
  outcome: ConfigResultMessage['outcome'];
  reason: string | null;
  body: ConfigResultMessage;
}

export class PlatformConsumer {
  private client: MqttClient | null = null;
  private db: Database.Database | null = null;
  readonly stats: ConsumerStats = { messages: 0, items: 0, duplicates: 0, conflicts: 0, rejected: 0, statuses: 0, configResults: 0, ignored: 0, diagnostics: 0 };
  private st!: {
    insert: Database.Statement;
    existing: Database.Statement;
    status: Database.Statement;
    reject: Database.Statement;
    configResult: Database.Statement;
  };

  constructor(
    private readonly opts: ConsumerOptions,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    if (this.opts.db !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(this.opts.db)), { recursive: true });
    const db = new Database(this.opts.db);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(`
      CREATE TABLE IF NOT EXISTS items (
        gateway_id TEXT NOT NULL, seq INTEGER NOT NULL, community_code TEXT NOT NULL,
        kind TEXT NOT NULL, body TEXT NOT NULL, received_at INTEGER NOT NULL,
        PRIMARY KEY (gateway_id, seq)
      );
      CREATE TABLE IF NOT EXISTS status (gateway_id TEXT PRIMARY KEY, body TEXT NOT NULL, received_at INTEGER NOT NULL);
      -- Every answer of a gateway to a bundle; a QoS 1 resend is the same body and kept once.
      CREATE TABLE IF NOT EXISTS config_results (
        id INTEGER PRIMARY KEY, gateway_id TEXT NOT NULL, community_code TEXT NOT NULL, ts INTEGER NOT NULL,
        version INTEGER, outcome TEXT NOT NULL, reason TEXT, body TEXT NOT NULL, received_at INTEGER NOT NULL,
        UNIQUE (gateway_id, body)
      );
      CREATE TABLE IF NOT EXISTS rejected (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, reason TEXT NOT NULL, payload TEXT NOT NULL, received_at INTEGER NOT NULL);
    `);
    this.db = db;
    this.st = {
      insert: db.prepare('INSERT OR IGNORE INTO items (gateway_id, seq, community_code, kind, body, received_at) VALUES (?, ?, ?, ?, ?, ?)'),
      existing: db.prepare('SELECT body FROM items WHERE gateway_id = ? AND seq = ?'),
      status: db.prepare('INSERT INTO status (gateway_id, body, received_at) VALUES (?, ?, ?) ON CONFLICT(gateway_id) DO UPDATE SET body = excluded.body, received_at = excluded.received_at'),
      reject: db.prepare('INSERT INTO rejected (topic, reason, payload, received_at) VALUES (?, ?, ?, ?)'),
      configResult: db.prepare('INSERT OR IGNORE INTO config_results (gateway_id, community_code, ts, version, outcome, reason, body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
    };
    const read = (f?: string) => (f ? fs.readFileSync(f) : undefined);
    const options: IClientOptions = {
      protocolVersion: 5,
      clientId: this.opts.clientId ?? `platform-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      clean: false,
      properties: { sessionExpiryInterval: 7 * 24 * 3600 },
      reconnectPeriod: 1000,
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
    // Store first, acknowledge after: mqtt.js sends the PUBACK when this callback runs.
    client.handleMessage = (packet, done) => {
      try {
        if (packet.cmd === 'publish') this.onMessage(packet.topic, packet.payload as Buffer);
        done();
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'platform consumer: message not stored, not acknowledged');
      }
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
    const c = this.client;
    this.client = null;
    if (c) await new Promise<void>((resolve) => c.end(false, {}, () => resolve()));
    this.db?.close();
    this.db = null;
  }

  /** Validates and stores one message. Exported for tests of the validation rules. */
  onMessage(topic: string, payload: Buffer): void {
    const now = Date.now();
    this.stats.messages++;
    const reject = (reason: string) => {
      this.stats.rejected++;
      this.st.reject.run(topic, reason, payload.toString('utf8').slice(0, 65536), now);
      this.log.warn({ topic, reason }, 'platform consumer: message rejected');
    };
    const parts = topic.split('/');
    // The platform's own bundles (and the empty retained message that clears one) come back on
    // fc/v1/#: they are ours, not a gateway's message.
    if (parts.length === 6 && parts[4] === 'config' && parts[5] === 'set') {
      this.stats.ignored++;
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      return reject(`not JSON: ${(err as Error).message}`);
    }
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
      this.stats.statuses++;
      this.st.status.run(m.gatewayId, JSON.stringify(m), now);
      return;
    }
    this.db!.transaction(() => {
      for (const item of m.items) {
        const body = JSON.stringify(item);
        if (this.st.insert.run(m.gatewayId, item.seq, m.communityCode, m.kind, body, now).changes === 1) {
          this.stats.items++;
        } else if ((this.st.existing.get(m.gatewayId, item.seq) as { body: string }).body === body) {
          this.stats.duplicates++;
        } else {
          this.stats.conflicts++;
          this.log.error({ gatewayId: m.gatewayId, seq: item.seq }, 'platform consumer: same seq, different content');
        }
      }
    })();
  }

  private onConfigResult(parts: string[], json: unknown, reject: (reason: string) => void, now: number): void {
    const parsed = ConfigResultMessage.safeParse(json);
    if (!parsed.success) return reject(formatIssues(parsed.error).join('; '));
    const m = parsed.data;
    if (parts[0] !== 'fc' || parts[1] !== 'v1' || parts[2] !== m.communityCode || parts[3] !== m.gatewayId) {
      return reject(`topic does not match the payload (communityCode ${m.communityCode}, gatewayId ${m.gatewayId}, kind config-result)`);
    }
    if (this.st.configResult.run(m.gatewayId, m.communityCode, m.ts, m.version, m.outcome, m.reason ?? null, JSON.stringify(m), now).changes === 1) this.stats.configResults++;
    const fields = { gatewayId: m.gatewayId, version: m.version, outcome: m.outcome, reason: m.reason, detail: m.detail, hash: m.config.hash };
    if (m.outcome === 'applied') this.log.info(fields, 'platform consumer: config applied');
    else this.log.warn(fields, `platform consumer: config ${m.outcome}`);
  }

  /** A gateway's answers to bundles, oldest first. */
  configResults(gatewayId: string): StoredConfigResult[] {
    const rows = this.db!.prepare('SELECT ts, version, outcome, reason, body FROM config_results WHERE gateway_id = ? ORDER BY id').all(gatewayId) as { ts: number; version: number | null; outcome: string; reason: string | null; body: string }[];
    return rows.map((r) => ({ ts: r.ts, version: r.version, outcome: r.outcome as StoredConfigResult['outcome'], reason: r.reason, body: JSON.parse(r.body) as ConfigResultMessage }));
  }

  /** Every stored seq of a gateway, ascending (tests and integrity checks). */
  seqs(gatewayId: string): number[] {
    return (this.db!.prepare('SELECT seq FROM items WHERE gateway_id = ? ORDER BY seq').all(gatewayId) as { seq: number }[]).map((r) => r.seq);
  }

  items(gatewayId: string, kind?: string): { seq: number; kind: string; body: Record<string, unknown> }[] {
    const rows = (kind
      ? this.db!.prepare('SELECT seq, kind, body FROM items WHERE gateway_id = ? AND kind = ? ORDER BY seq').all(gatewayId, kind)
      : this.db!.prepare('SELECT seq, kind, body FROM items WHERE gateway_id = ? ORDER BY seq').all(gatewayId)) as { seq: number; kind: string; body: string }[];
    return rows.map((r) => ({ seq: r.seq, kind: r.kind, body: JSON.parse(r.body) as Record<string, unknown> }));
  }

  lastStatus(gatewayId: string): Record<string, unknown> | null {
    const r = this.db!.prepare('SELECT body FROM status WHERE gateway_id = ?').get(gatewayId) as { body: string } | undefined;
    return r ? (JSON.parse(r.body) as Record<string, unknown>) : null;
  }
}
