// The uplink to the provincial platform broker (mqtt.js; MQTT 3.1.1 or 5; mqtt:// or mqtts://
// with mutual TLS). QoS 1 with a bounded in-flight window, rows read from the outbox in
// priority and seq order and deleted on PUBACK. SQLite stays the single source of truth: each
// connection is a fresh mqtt.js client with reconnectPeriod 0, so mqtt.js never holds a second
// copy to resend; after a drop the unacknowledged rows are simply read again from the outbox,
// in seq order. Reconnects use capped exponential backoff with jitter.
import fs from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { UplinkConfig } from '../config/site-schema.js';
import type { Logger } from '../log.js';
import { newCursor, type Outbox, type OutboxBatch } from '../store/outbox.js';
import { AckOnlyStore } from './ack-only-store.js';
import { PayloadSlots } from './payload-slots.js';
import { CONTRACT_VERSION, diagnosticsTopic, remoteTopic, uplinkTopic, type ConfigResultMessage, type DiagnosticsMessage, type StatusHealth, type StatusMessage } from './contract.js';
import { CLOCK_CODES, clockMessage, probeValidity, type Validity } from './tls-clock.js';

export interface UplinkIdentity {
  communityCode: string;
  gatewayId: string;
  version: string;
}

export type UplinkState = 'stopped' | 'connecting' | 'connected' | 'waiting';

/** Remote configuration's hooks (src/remote/, docs/UPLINK.md "Remote configuration: the gateway"). */
export interface UplinkRemote {
  /** The running config for status messages (sent whether remote is on or not). */
  config?: () => NonNullable<StatusMessage['config']>;
  /** Set when remote configuration is on: the uplink subscribes to config/set and hands each
   * message over. Off: no subscription at all. */
  onBundle?: (payload: Buffer) => void;
}

/** Results waiting for a connection (a restart-apply answers on the new uplink, still connecting). */
const MAX_PENDING_RESULTS = 16;
/** MQTT 5 ends a session at disconnect unless told otherwise: a week, so that a bundle sent
 * while the box is offline (a 4G outage) is still delivered when it is back. */
const SESSION_EXPIRY_SECONDS = 7 * 86400;

/** Items per message at most, besides the byte limit. */
const MAX_ITEMS = 2000;

export class Uplink {
  private client: MqttClient | null = null;
  private generation = 0;
  private inflight = 0;
  private cursor = newCursor();
  private slots = new PayloadSlots(0);
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private tls: Pick<IClientOptions, 'ca' | 'cert' | 'key'> = {};
  private idleWaiters: (() => void)[] = [];
  /** The broker certificate's validity, read once per run of clock-like TLS failures
   * (undefined: not read yet; null: could not be read). */
  private certValidity: Validity | null | undefined = undefined;
  private probing = false;
  private pendingResults: { m: ConfigResultMessage; sent?: (err?: Error) => void }[] = [];
  state: UplinkState = 'stopped';
  lastError = '';
  connectedSince: number | null = null;
  readonly stats = { connects: 0, failedConnects: 0, messages: 0, items: 0, acked: 0 };

  constructor(
    private readonly cfg: UplinkConfig,
    private readonly id: UplinkIdentity,
    private readonly outbox: Outbox,
    private readonly log: Logger,
    /** Bus, device and pin health, sent with the live status messages (not the will). */
    private readonly health?: () => StatusHealth,
    private readonly remote: UplinkRemote = {},
  ) {}

  /** Reads the TLS files (a missing file is a start-up error naming it) and starts connecting. */
  start(): void {
    const read = (field: 'caFile' | 'certFile' | 'keyFile') => {
      const f = this.cfg[field];
      if (!f) return undefined;
      try {
        return fs.readFileSync(f);
      } catch (err) {
        throw new Error(`uplink.${field}: cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
    this.tls = { ca: read('caFile'), cert: read('certFile'), key: read('keyFile') };
    this.outbox.onAppend(() => this.pump());
    this.connect();
  }

  /** Says offline (retained) on a clean stop, waits briefly for in-flight acks, disconnects
   * cleanly so the broker does not publish the will. */
  async stop(): Promise<void> {
    const wasConnected = this.state === 'connected';
    this.state = 'stopped';
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.reconnectTimer = this.statusTimer = null;
    const c = this.client;
    if (!c) return;
    if (wasConnected) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1500);
        c.publish(this.statusTopic, JSON.stringify(this.status('offline', 'shutdown')), { qos: 1, retain: true }, () => {
          clearTimeout(t);
          resolve();
        });
      });
      await this.waitIdle(1500);
    }
    this.generation++;
    this.client = null;
    await new Promise<void>((resolve) => c.end(!wasConnected, {}, () => resolve()));
  }

  get inFlight(): number {
    return this.inflight;
  }

  private get statusTopic(): string {
    return uplinkTopic(this.id.communityCode, this.id.gatewayId, 'status');
  }

  private status(state: 'online' | 'offline', reason: NonNullable<StatusMessage['reason']>): StatusMessage {
    const s = this.outbox.stats();
    return {
      v: CONTRACT_VERSION,
      gatewayId: this.id.gatewayId,
      communityCode: this.id.communityCode,
      kind: 'status',
      state,
      seq: s.lastSeq,
      ts: Date.now(),
      version: this.id.version,
      reason,
      backlog: { rows: s.rows, bytes: s.bytes, oldestTs: s.oldestTs },
      shed: { rows: s.shedRows, bytes: s.shedBytes, dropped: s.droppedRows },
      ...(this.health && (reason === 'connected' || reason === 'periodic') ? { health: this.health() } : {}),
      ...(this.remote.config ? { config: this.remote.config() } : {}),
    };
  }

  /** A status message now (e.g. right after a config change), when connected; reason periodic. */
  publishStatus(): void {
    if (this.state === 'connected' && this.client) this.client.publish(this.statusTopic, JSON.stringify(this.status('online', 'periodic')), { qos: 1, retain: true });
  }

  /** The answer to a bundle on config/result, QoS 1 (not retained: each answers one bundle).
   * Kept in memory until connected; a gateway stopped before that loses it, and the platform
   * sees the outcome in the next status' config instead. */
  publishResult(m: ConfigResultMessage, sent?: (err?: Error) => void): void {
    this.pendingResults.push({ m, sent });
    if (this.pendingResults.length > MAX_PENDING_RESULTS) this.pendingResults.shift()?.sent?.(new Error('dropped: too many results waiting for a connection'));
    this.flushResults();
  }

  private flushResults(): void {
    const c = this.client;
    if (this.state !== 'connected' || !c) return;
    const topic = remoteTopic(this.id.communityCode, this.id.gatewayId, 'result');
    for (const { m, sent } of this.pendingResults.splice(0)) c.publish(topic, JSON.stringify(m), { qos: 1 }, (err) => sent?.(err ?? undefined));
  }

  /** The parts of a diagnostic bundle (a `diagnostics` command) on .../diagnostics, QoS 1, not
   * retained; only while connected (the command came in on this connection), else false. */
  publishDiagnostics(parts: DiagnosticsMessage[]): boolean {
    const c = this.client;
    if (this.state !== 'connected' || !c) return false;
    const topic = diagnosticsTopic(this.id.communityCode, this.id.gatewayId);
    for (const m of parts) c.publish(topic, JSON.stringify(m), { qos: 1 });
    return true;
  }

  private connect(): void {
    const gen = ++this.generation;
    this.state = 'connecting';
    const will = this.status('offline', 'will');
    delete will.backlog; // a will is composed now and published later: no stale figures
    delete will.shed;
    const opts: IClientOptions = {
      clientId: this.cfg.clientId ?? `cgw-${this.id.gatewayId}`,
      protocolVersion: this.cfg.protocolVersion,
      // Remote on: a persistent session, so that the broker keeps config/set messages (QoS 1)
      // that arrive while the box is offline. Off: a clean session also drops one kept from
      // when it was on. Outgoing rows do not depend on it: they are read again from the outbox.
      clean: !this.remote.onBundle,
      ...(this.remote.onBundle && this.cfg.protocolVersion === 5 ? { properties: { sessionExpiryInterval: SESSION_EXPIRY_SECONDS } } : {}),
      reconnectPeriod: 0,
      connectTimeout: this.cfg.connectTimeoutMs,
      keepalive: this.cfg.keepaliveSeconds,
      queueQoSZero: false,
      resubscribe: false,
      outgoingStore: new AckOnlyStore(),
      // mqtt-packet would pre-build 65,536 small Buffers (about 6 MB of heap, for the process:
      // the option switches the module's cache off, for aedes' writes too); numbers are
      // written as they come instead (PERFORMANCE.md, "Scale").
      writeCache: false,
      username: this.cfg.username,
      password: this.cfg.password,
      will: { topic: this.statusTopic, payload: Buffer.from(JSON.stringify(will)), qos: 1, retain: true },
      ...this.tls,
      rejectUnauthorized: true,
    };
    const client = mqtt.connect(this.cfg.url, opts);
    this.client = client;
    const onBundle = this.remote.onBundle;
    if (onBundle) {
      // Before CONNACK: a kept session's messages may follow it in the same read.
      const topic = remoteTopic(this.id.communityCode, this.id.gatewayId, 'set');
      client.on('message', (t, payload) => {
        if (gen === this.generation && t === topic) onBundle(payload);
      });
    }
    client.on('connect', () => {
      if (gen !== this.generation) return;
      this.state = 'connected';
      this.connectedSince = Date.now();
      this.attempt = 0;
      this.lastError = '';
      this.certValidity = undefined;
      this.stats.connects++;
      this.cursor = newCursor();
      this.slots = new PayloadSlots(this.cfg.maxMessageBytes);
      this.log.info({ url: this.cfg.url, backlog: this.outbox.stats().rows }, 'uplink connected');
      // Status goes ahead of the backlog (alarms, then aggregates, follow in pump()).
      client.publish(this.statusTopic, JSON.stringify(this.status('online', 'connected')), { qos: 1, retain: true });
      this.subscribeRemote(client, gen);
      this.flushResults();
      this.statusTimer = setInterval(() => {
        if (this.state === 'connected') client.publish(this.statusTopic, JSON.stringify(this.status('online', 'periodic')), { qos: 1, retain: true });
      }, this.cfg.statusIntervalSeconds * 1000);
      this.pump();
    });
    client.on('error', (err) => {
      if (gen !== this.generation) return;
      const code = String((err as { code?: unknown }).code ?? '');
      if (CLOCK_CODES.has(code)) this.clockError(code);
      else this.lastError = describe(err);
    });
    client.on('close', () => {
      if (gen !== this.generation) return;
      this.dropped();
    });
  }

  /** Subscribed again on every connect: the broker may have lost the session (a restart without
   * persistence, an expired session), and with one kept it is harmless. */
  private subscribeRemote(client: MqttClient, gen: number): void {
    if (!this.remote.onBundle) return;
    const topic = remoteTopic(this.id.communityCode, this.id.gatewayId, 'set');
    client.subscribe(topic, { qos: 1 }, (err, granted) => {
      if (gen !== this.generation) return;
      const refused = granted?.some((g) => g.qos === 128);
      if (err || refused) this.log.error({ topic, err: err?.message ?? 'the broker refused the subscription' }, 'uplink: cannot subscribe to remote configuration; bundles will not arrive');
      else this.log.info({ topic }, 'uplink: subscribed to remote configuration');
    });
  }

  /** "Not yet valid" / "expired": most likely this box's clock (no RTC, not synced yet). The
   * message shows the box's time now, and the certificate's validity once it has been read. */
  private clockError(code: string): void {
    this.lastError = clockMessage(code, Date.now(), this.certValidity);
    if (this.probing || this.certValidity !== undefined) return;
    this.probing = true;
    void probeValidity(this.cfg.url, this.tls, Date.now(), this.cfg.connectTimeoutMs).then((v) => {
      this.probing = false;
      this.certValidity = v;
      if (this.state === 'stopped' || this.state === 'connected') return;
      this.lastError = clockMessage(code, Date.now(), v);
      this.log.warn({ url: this.cfg.url, err: this.lastError }, "uplink: the broker's certificate does not cover this box's time; data stays in the outbox");
    });
  }

  private dropped(): void {
    const wasConnected = this.state === 'connected';
    this.generation++; // callbacks of the old client are ignored from here on
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.statusTimer = null;
    const c = this.client;
    this.client = null;
    c?.end(true);
    this.inflight = 0;
    this.connectedSince = null;
    this.resolveIdle();
    if (this.state === 'stopped') return;
    if (wasConnected) {
      this.log.warn({ url: this.cfg.url, err: this.lastError || 'connection closed', backlog: this.outbox.stats().rows }, 'uplink lost; data stays in the outbox');
    } else {
      this.stats.failedConnects++;
      if (this.attempt === 0 || this.attempt % 10 === 0) {
        this.log.warn({ url: this.cfg.url, err: this.lastError || 'connection refused', attempt: this.attempt + 1 }, 'uplink cannot connect; data stays in the outbox');
      }
    }
    this.state = 'waiting';
    const base = Math.min(this.cfg.reconnectMaxMs, this.cfg.reconnectMinMs * 2 ** Math.min(this.attempt, 20));
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.state === 'waiting') this.connect();
    }, delay);
  }

  /** "Reconnect now" from the page: ends the backoff wait and connects at once, with the
   * backoff started over. Nothing to do while connected or already connecting. */
  reconnectNow(): 'connecting' | 'connected' | 'stopped' {
    if (this.state === 'stopped' || this.state === 'connected') return this.state;
    if (this.state === 'waiting') {
      if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
      this.attempt = 0;
      this.log.info({ url: this.cfg.url }, 'uplink: reconnecting now (asked from the page)');
      this.connect();
    }
    return 'connecting';
  }

  /** Fills the in-flight window from the outbox. */
  private pump(): void {
    const c = this.client;
    if (!c || this.state !== 'connected') return;
    const gen = this.generation;
    const slots = this.slots;
    // mqtt-packet writes a PUBLISH in six pieces; corked, the round's messages leave in one
    // writev instead of six writes (and six write requests to keep) each.
    const stream = c.stream;
    stream.cork();
    process.nextTick(() => stream.uncork());
    while (this.inflight < this.cfg.inflight) {
      const batch = this.outbox.next(this.cursor, MAX_ITEMS, this.cfg.maxMessageBytes - 160);
      if (!batch) {
        if (this.inflight === 0) slots.clear(); // caught up: keep no payload buffers
        break;
      }
      // The callback keeps numbers only: not the batch and its items string.
      const { kind, after, last, count } = batch;
      this.cursor[kind] = last;
      this.inflight++;
      this.stats.messages++;
      this.stats.items += count;
      const slot = slots.take(this.messageBytes(batch));
      const payload = this.message(batch, slot);
      c.publish(uplinkTopic(this.id.communityCode, this.id.gatewayId, kind), payload, { qos: 1 }, (err) => {
        // A dropped connection's slots are not reused (its socket may not be done with them):
        // each connection has its own PayloadSlots.
        if (gen !== this.generation) return;
        slots.give(slot);
        this.inflight--;
        if (!err) {
          this.stats.acked += count;
          this.outbox.ackRange(kind, after, last);
        }
        if (this.inflight === 0) this.resolveIdle();
        this.pump();
      });
    }
  }

  private head(kind: OutboxBatch['kind']): string {
    return `{"v":${CONTRACT_VERSION},"gatewayId":${JSON.stringify(this.id.gatewayId)},"communityCode":${JSON.stringify(this.id.communityCode)},"kind":"${kind}","items":[`;
  }

  private messageBytes(batch: OutboxBatch): number {
    return Buffer.byteLength(this.head(batch.kind)) + batch.bytes + 2;
  }

  /** The message written into `slot` (see PayloadSlots), as a view of the bytes used. */
  private message(batch: OutboxBatch, slot: Buffer): Buffer {
    let n = slot.write(this.head(batch.kind));
    n += slot.write(batch.items, n);
    n += slot.write(']}', n);
    return slot.subarray(0, n);
  }

  private waitIdle(ms: number): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private resolveIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }
}

/** One line a technician can act on. */
function describe(err: Error & { code?: string | number }): string {
  const m = err.message || String(err.code);
  const alert = /alert (unknown ca|bad certificate|certificate unknown|certificate required|handshake failure|certificate expired|certificate revoked)/i.exec(m);
  if (alert) {
    return `TLS handshake refused by the broker (alert: ${alert[1]!.toLowerCase()}): the platform does not accept this gateway's client certificate (uplink.certFile / uplink.keyFile)`;
  }
  if (/self[- ]signed|unable to verify|UNABLE_TO_VERIFY|CERT_|Hostname\/IP does not match/i.test(m) || /CERT|SELF_SIGNED/.test(String(err.code))) {
    return `TLS: the broker's certificate is not trusted (${m}); check uplink.caFile and the host name`;
  }
  if (err.code === 'ECONNREFUSED') return `connection refused (${m})`;
  if (/Not authorized|Bad username or password/i.test(m)) return `the broker refused the credentials (${m})`;
  return m;
}
