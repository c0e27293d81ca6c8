// The consumer's store in PostgreSQL (15 and later), for the province: several consumers write
// one database. Items and the status history are partitioned by month of their own time (the
// item's windowStart or ts, the status' ts), so old months are detached or dropped whole.
//
// The de-duplication key: PostgreSQL requires a unique key of a partitioned table to include
// the partition key, so it is (gateway_id, seq, item_ts). An item's time is part of its
// content, so a resend of (gatewayId, seq) always lands in the same partition on the same key
// and ON CONFLICT DO NOTHING drops it: exactly a unique key on (gatewayId, seq) for every
// gateway that follows the contract. The one case it cannot see is a conflicting item (same
// seq, other content) with another time: it is stored beside the first, and integrity
// queries find it (docs/UPLINK.md, "Running a platform consumer").
//
// Migrations: schema_migrations lists the steps applied; each runs once, in a transaction,
// under an advisory lock, so consumers starting together do not race.
import pg from 'pg';
import type { ConfigResultMessage, StatusMessage } from '../uplink/contract.js';
import { canonical, configHash } from '../remote/bundle.js';
import { itemTime, type AnyItem, type ConsumerStore, type ItemKind, type ItemQuery, type RegisterDevice, type RegisterFacility, type StoredConfigResult, type StoredItem, type StoredStatus, type StoreResult } from './store.js';
import { facilityRows, fromDeviceRow, fromFacilityRow, registerRows, type DeviceRow, type FacilityRow } from './register.js';

/** Advisory lock keys (any fixed 64-bit numbers, ours alone in the database). */
const LOCK_MIGRATE = 7_340_001;
const LOCK_PARTITION = 7_340_002;
const PAGE = 2000;

export const MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'items, statuses, results, rejected, facility register',
    sql: `
      CREATE TABLE items (
        gateway_id text NOT NULL, seq bigint NOT NULL, item_ts timestamptz NOT NULL,
        community_code char(12) NOT NULL, kind text NOT NULL, body jsonb NOT NULL, received_at timestamptz NOT NULL,
        PRIMARY KEY (gateway_id, seq, item_ts)
      ) PARTITION BY RANGE (item_ts);
      -- The report reads a time range of one community.
      CREATE INDEX items_by_community ON items (community_code, item_ts);
      CREATE TABLE statuses (
        gateway_id text NOT NULL, ts timestamptz NOT NULL, body_hash text NOT NULL,
        community_code char(12) NOT NULL, body jsonb NOT NULL, received_at timestamptz NOT NULL,
        PRIMARY KEY (gateway_id, ts, body_hash)
      ) PARTITION BY RANGE (ts);
      -- The last status received per gateway (a will arrives after the statuses it follows: the
      -- last one received wins, not the newest ts).
      CREATE TABLE gateway_status (gateway_id text PRIMARY KEY, community_code char(12) NOT NULL, body jsonb NOT NULL, received_at timestamptz NOT NULL);
      CREATE TABLE config_results (
        id bigserial PRIMARY KEY, gateway_id text NOT NULL, community_code char(12) NOT NULL, ts timestamptz NOT NULL,
        version bigint, outcome text NOT NULL, reason text, body jsonb NOT NULL, body_hash text NOT NULL, received_at timestamptz NOT NULL,
        UNIQUE (gateway_id, body_hash)
      );
      CREATE TABLE rejected (id bigserial PRIMARY KEY, topic text NOT NULL, reason text NOT NULL, payload text NOT NULL, received_at timestamptz NOT NULL);
      -- The facility register: each gateway's newest inventory, one row per device.
      CREATE TABLE gateways (gateway_id text PRIMARY KEY, community_code char(12) NOT NULL, inventory_seq bigint NOT NULL, inventory_ts timestamptz NOT NULL, updated_at timestamptz NOT NULL);
      CREATE TABLE register_devices (
        gateway_id text NOT NULL REFERENCES gateways ON DELETE CASCADE, device_id text NOT NULL, community_code char(12) NOT NULL,
        facility text NOT NULL, profile text NOT NULL, profile_source text, manufacturer text NOT NULL, model text NOT NULL,
        points integer NOT NULL, inventory_seq bigint NOT NULL, inventory_ts timestamptz NOT NULL,
        PRIMARY KEY (gateway_id, device_id)
      );
      CREATE INDEX register_by_community ON register_devices (community_code);`,
  },
  {
    version: 2,
    name: 'facilities: facility id and house code of each device, the facilities of each gateway',
    sql: `
      ALTER TABLE register_devices ADD COLUMN facility_id text, ADD COLUMN house_code text;
      CREATE TABLE register_facilities (
        gateway_id text NOT NULL REFERENCES gateways ON DELETE CASCADE, facility_id text NOT NULL, community_code char(12) NOT NULL,
        type text NOT NULL, code text NOT NULL, name text, house_code text, listed boolean NOT NULL, devices integer NOT NULL,
        inventory_seq bigint NOT NULL, inventory_ts timestamptz NOT NULL,
        PRIMARY KEY (gateway_id, facility_id)
      );
      CREATE INDEX register_facilities_by_community ON register_facilities (community_code);
      -- The house code joins a facility to the province's building register.
      CREATE INDEX register_facilities_by_house ON register_facilities (house_code);`,
  },
];

/** PostgreSQL errors worth waiting out (the server restarting, a connection lost, a deadlock),
 * as opposed to a message the database will never take. */
export function isTransient(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (typeof e?.code !== 'string') return true; // a network error of the client: ECONNREFUSED, a reset, a timeout
  if (/^E[A-Z]+$/.test(e.code)) return true;
  return /^(08|53|57P0[1-4]|40001|40P01|55P03|58)/.test(e.code);
}

function monthOf(ms: number): { name: string; from: string; to: string } {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const start = new Date(Date.UTC(y, m, 1));
  const end = new Date(Date.UTC(y, m + 1, 1));
  return { name: `${y}_${String(m + 1).padStart(2, '0')}`, from: start.toISOString(), to: end.toISOString() };
}

export class PostgresStore implements ConsumerStore {
  private pool: pg.Pool | null = null;
  /** Partitions known to exist ("items_2026_12"). */
  private readonly partitions = new Set<string>();

  constructor(private readonly url: string) {}

  private get p(): pg.Pool {
    if (!this.pool) throw new Error('the store is not open (migrate() first)');
    return this.pool;
  }

  private openPool(): void {
    // Two connections: one message's transaction and, beside it, a partition being made.
    const pool = new pg.Pool({ connectionString: this.url, max: 3, connectionTimeoutMillis: 10_000 });
    // An idle client whose server went away emits 'error' on the pool: without a listener the
    // process would exit. The next query gets a new connection.
    pool.on('error', () => undefined);
    this.pool = pool;
  }

  async openForReading(): Promise<void> {
    this.openPool();
    const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
    let at = 0;
    try {
      at = (await this.p.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations')).rows[0]?.v ?? 0;
    } catch (err) {
      if ((err as { code?: string }).code !== '42P01') throw err; // no such table: nothing made yet
    }
    if (at !== latest) throw new Error(`schema version ${at}, this version reads ${latest}: run community-gateway platform migrate --db URL`);
  }

  async migrate(): Promise<void> {
    this.openPool();
    await this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_MIGRATE]);
      await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
      const done = new Set((await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      }
    });
  }

  /** The schema versions applied (the `platform migrate` command prints them). */
  async applied(): Promise<{ version: number; name: string; appliedAt: string }[]> {
    const r = await this.p.query<{ version: number; name: string; applied_at: Date }>('SELECT version, name, applied_at FROM schema_migrations ORDER BY version');
    return r.rows.map((x) => ({ version: x.version, name: x.name, appliedAt: x.applied_at.toISOString() }));
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.p.connect();
    try {
      await c.query('BEGIN');
      const r = await fn(c);
      await c.query('COMMIT');
      return r;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  /** The month partitions of `table` for these times exist (made once, under a lock). */
  private async ensurePartitions(table: 'items' | 'statuses', times: readonly number[]): Promise<void> {
    const months = new Map<string, ReturnType<typeof monthOf>>();
    for (const t of times) {
      const m = monthOf(t);
      if (!this.partitions.has(`${table}_${m.name}`)) months.set(m.name, m);
    }
    if (months.size === 0) return;
    await this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK_PARTITION]);
      for (const m of months.values()) {
        await c.query(`CREATE TABLE IF NOT EXISTS ${table}_${m.name} PARTITION OF ${table} FOR VALUES FROM ('${m.from}') TO ('${m.to}')`);
      }
    });
    for (const m of months.values()) this.partitions.add(`${table}_${m.name}`);
  }

  /** Runs `fn` once the partitions exist; once more if one was dropped meanwhile (retention
   * by another process: "no partition of relation ... found for row", 23514). */
  private async inPartitions<T>(table: 'items' | 'statuses', times: readonly number[], fn: () => Promise<T>): Promise<T> {
    await this.ensurePartitions(table, times);
    try {
      return await fn();
    } catch (err) {
      if ((err as { code?: string }).code !== '23514') throw err;
      for (const name of [...this.partitions]) if (name.startsWith(`${table}_`)) this.partitions.delete(name);
      await this.ensurePartitions(table, times);
      return fn();
    }
  }

  async storeItems(gatewayId: string, communityCode: string, kind: ItemKind, items: readonly AnyItem[], receivedAt: number): Promise<StoreResult> {
    const times = items.map((i) => itemTime(kind, i));
    return this.inPartitions('items', times, () => this.insertItems(gatewayId, communityCode, kind, items, times, receivedAt));
  }

  private insertItems(gatewayId: string, communityCode: string, kind: ItemKind, items: readonly AnyItem[], times: number[], receivedAt: number): Promise<StoreResult> {
    return this.tx(async (c) => {
      const ins = await c.query<{ seq: string }>(
        `INSERT INTO items (gateway_id, seq, item_ts, community_code, kind, body, received_at)
         SELECT $1, u.seq, to_timestamp(u.t / 1000.0), $2, $3, u.body, to_timestamp($4 / 1000.0)
         FROM unnest($5::bigint[], $6::float8[], $7::jsonb[]) AS u(seq, t, body)
         ON CONFLICT DO NOTHING RETURNING seq`,
        [gatewayId, communityCode, kind, receivedAt, items.map((i) => i.seq), times, items.map((i) => JSON.stringify(i))],
      );
      const r: StoreResult = { inserted: ins.rowCount ?? 0, duplicates: 0, conflicts: 0 };
      if (r.inserted < items.length) {
        // Not inserted: the same key is there. The same content is a resend; other content a conflict.
        const fresh = new Set(ins.rows.map((x) => Number(x.seq)));
        const rest = items.filter((i) => !fresh.has(i.seq));
        const there = await c.query<{ seq: string; body: unknown }>('SELECT seq, body FROM items WHERE gateway_id = $1 AND seq = ANY($2::bigint[])', [gatewayId, rest.map((i) => i.seq)]);
        const bodies = new Map<number, string[]>();
        for (const row of there.rows) bodies.set(Number(row.seq), [...(bodies.get(Number(row.seq)) ?? []), canonical(row.body)]);
        for (const i of rest) {
          if (bodies.get(i.seq)?.includes(canonical(i))) r.duplicates++;
          else r.conflicts++;
        }
      }
      if (kind === 'inventory') await this.register_(c, gatewayId, communityCode, items, receivedAt);
      return r;
    });
  }

  /** The register keeps each gateway's newest inventory; an older one delivered late (another
   * consumer, a resend) changes nothing. The gateways row is the lock between consumers. */
  private async register_(c: pg.PoolClient, gatewayId: string, communityCode: string, items: readonly AnyItem[], receivedAt: number): Promise<void> {
    const newest = items.reduce((a, b) => (b.seq > a.seq ? b : a));
    const up = await c.query(
      `INSERT INTO gateways (gateway_id, community_code, inventory_seq, inventory_ts, updated_at) VALUES ($1, $2, $3, to_timestamp($4 / 1000.0), to_timestamp($5 / 1000.0))
       ON CONFLICT (gateway_id) DO UPDATE SET community_code = excluded.community_code, inventory_seq = excluded.inventory_seq,
         inventory_ts = excluded.inventory_ts, updated_at = excluded.updated_at
       WHERE gateways.inventory_seq < excluded.inventory_seq`,
      [gatewayId, communityCode, newest.seq, itemTime('inventory', newest), receivedAt],
    );
    if (up.rowCount !== 1) return;
    await c.query('DELETE FROM register_devices WHERE gateway_id = $1', [gatewayId]);
    await c.query('DELETE FROM register_facilities WHERE gateway_id = $1', [gatewayId]);
    const facilities = facilityRows(gatewayId, communityCode, newest);
    if (facilities.length) {
      await c.query(
        `INSERT INTO register_facilities (gateway_id, facility_id, community_code, type, code, name, house_code, listed, devices, inventory_seq, inventory_ts)
         SELECT $1, u.id, $2, u.type, u.code, u.name, u.house, u.listed, u.devices, $3, to_timestamp($4 / 1000.0)
         FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::boolean[], $11::int[]) AS u(id, type, code, name, house, listed, devices)`,
        [
          gatewayId,
          communityCode,
          newest.seq,
          itemTime('inventory', newest),
          facilities.map((f) => f.facilityId),
          facilities.map((f) => f.type),
          facilities.map((f) => f.code),
          facilities.map((f) => f.name),
          facilities.map((f) => f.houseCode),
          facilities.map((f) => f.listed),
          facilities.map((f) => f.devices),
        ],
      );
    }
    const rows = registerRows(gatewayId, communityCode, newest);
    if (rows.length === 0) return;
    await c.query(
      `INSERT INTO register_devices (gateway_id, device_id, community_code, facility, facility_id, house_code, profile, profile_source, manufacturer, model, points, inventory_seq, inventory_ts)
       SELECT $1, u.id, $2, u.facility, u.facility_id, u.house, u.profile, u.source, u.manufacturer, u.model, u.points, $3, to_timestamp($4 / 1000.0)
       FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::int[]) AS u(id, facility, facility_id, house, profile, source, manufacturer, model, points)`,
      [
        gatewayId,
        communityCode,
        newest.seq,
        itemTime('inventory', newest),
        rows.map((r) => r.deviceId),
        rows.map((r) => r.facility),
        rows.map((r) => r.facilityId),
        rows.map((r) => r.houseCode),
        rows.map((r) => r.profile),
        rows.map((r) => r.profileSource),
        rows.map((r) => r.manufacturer),
        rows.map((r) => r.model),
        rows.map((r) => r.points),
      ],
    );
  }

  async storeStatus(m: StatusMessage, receivedAt: number): Promise<void> {
    const body = JSON.stringify(m);
    await this.inPartitions('statuses', [m.ts], () => this.tx(async (c) => {
      await c.query(
        `INSERT INTO statuses (gateway_id, ts, body_hash, community_code, body, received_at) VALUES ($1, to_timestamp($2 / 1000.0), $3, $4, $5, to_timestamp($6 / 1000.0))
         ON CONFLICT DO NOTHING`,
        [m.gatewayId, m.ts, configHash(body), m.communityCode, body, receivedAt],
      );
      await c.query(
        `INSERT INTO gateway_status (gateway_id, community_code, body, received_at) VALUES ($1, $2, $3, to_timestamp($4 / 1000.0))
         ON CONFLICT (gateway_id) DO UPDATE SET community_code = excluded.community_code, body = excluded.body, received_at = excluded.received_at`,
        [m.gatewayId, m.communityCode, body, receivedAt],
      );
    }));
  }

  async storeConfigResult(m: ConfigResultMessage, receivedAt: number): Promise<boolean> {
    const body = JSON.stringify(m);
    const r = await this.p.query(
      `INSERT INTO config_results (gateway_id, community_code, ts, version, outcome, reason, body, body_hash, received_at)
       VALUES ($1, $2, to_timestamp($3 / 1000.0), $4, $5, $6, $7, $8, to_timestamp($9 / 1000.0)) ON CONFLICT DO NOTHING`,
      [m.gatewayId, m.communityCode, m.ts, m.version, m.outcome, m.reason ?? null, body, configHash(body), receivedAt],
    );
    return r.rowCount === 1;
  }

  async storeRejected(topic: string, reason: string, payload: string, receivedAt: number): Promise<void> {
    // A NUL cannot be stored in a text column: it is shown, not lost.
    await this.p.query('INSERT INTO rejected (topic, reason, payload, received_at) VALUES ($1, $2, $3, to_timestamp($4 / 1000.0))', [topic, reason, payload.replaceAll('\0', '\\u0000'), receivedAt]);
  }

  async close(): Promise<void> {
    const p = this.pool;
    this.pool = null;
    await p?.end();
  }

  async seqs(gatewayId: string): Promise<number[]> {
    const r = await this.p.query<{ seq: string }>('SELECT seq FROM items WHERE gateway_id = $1 ORDER BY seq', [gatewayId]);
    return r.rows.map((x) => Number(x.seq));
  }

  async countSeqs(gatewayId: string, lo: number, hi: number): Promise<number> {
    const r = await this.p.query<{ n: string }>('SELECT count(*) AS n FROM items WHERE gateway_id = $1 AND seq BETWEEN $2 AND $3', [gatewayId, lo, hi]);
    return Number(r.rows[0]!.n);
  }

  async items(gatewayId: string, kind?: ItemKind): Promise<StoredItem[]> {
    const r = kind
      ? await this.p.query<ItemRow>(`${SELECT_ITEM} WHERE gateway_id = $1 AND kind = $2 ORDER BY seq`, [gatewayId, kind])
      : await this.p.query<ItemRow>(`${SELECT_ITEM} WHERE gateway_id = $1 ORDER BY seq`, [gatewayId]);
    return r.rows.map(toItem);
  }

  async lastStatus(gatewayId: string): Promise<StatusMessage | null> {
    const r = await this.p.query<{ body: StatusMessage }>('SELECT body FROM gateway_status WHERE gateway_id = $1', [gatewayId]);
    return r.rows[0]?.body ?? null;
  }

  async configResults(gatewayId: string): Promise<StoredConfigResult[]> {
    const r = await this.p.query<{ ts: Date; version: string | null; outcome: StoredConfigResult['outcome']; reason: string | null; body: ConfigResultMessage }>(
      'SELECT ts, version, outcome, reason, body FROM config_results WHERE gateway_id = $1 ORDER BY id',
      [gatewayId],
    );
    return r.rows.map((x) => ({ ts: x.ts.getTime(), version: x.version === null ? null : Number(x.version), outcome: x.outcome, reason: x.reason, body: x.body }));
  }

  async *scanItems(q: ItemQuery): AsyncIterable<StoredItem> {
    const kinds = q.kinds ?? ['agg', 'alarm', 'inventory'];
    let after: [string, number] = ['', 0];
    for (;;) {
      // Keyset pages: each is one short query, so a long report holds no transaction open.
      const r = await this.p.query<ItemRow>(
        `${SELECT_ITEM} WHERE item_ts >= to_timestamp($1 / 1000.0) AND item_ts < to_timestamp($2 / 1000.0)
           AND ($3::text IS NULL OR community_code = $3) AND kind = ANY($4::text[]) AND (gateway_id, seq) > ($5, $6)
         ORDER BY gateway_id, seq LIMIT ${PAGE}`,
        [q.from, q.to, q.community ?? null, kinds, after[0], after[1]],
      );
      for (const row of r.rows) yield toItem(row);
      if (r.rows.length < PAGE) return;
      const last = r.rows[r.rows.length - 1]!;
      after = [last.gateway_id, Number(last.seq)];
    }
  }

  async *scanStatuses(q: { from: number; to: number; community?: string }): AsyncIterable<StoredStatus> {
    const before = await this.p.query<StatusRow>(
      `SELECT DISTINCT ON (gateway_id) gateway_id, community_code, ts, body, received_at FROM statuses
       WHERE ts < to_timestamp($1 / 1000.0) AND ($2::text IS NULL OR community_code = $2) ORDER BY gateway_id, ts DESC`,
      [q.from, q.community ?? null],
    );
    for (const r of before.rows) yield toStatus(r);
    let after: [string, Date] = ['', new Date(0)];
    for (;;) {
      const r = await this.p.query<StatusRow>(
        `SELECT gateway_id, community_code, ts, body, received_at FROM statuses
         WHERE ts >= to_timestamp($1 / 1000.0) AND ts < to_timestamp($2 / 1000.0) AND ($3::text IS NULL OR community_code = $3) AND (gateway_id, ts) > ($4, $5)
         ORDER BY gateway_id, ts LIMIT ${PAGE}`,
        [q.from, q.to, q.community ?? null, after[0], after[1]],
      );
      for (const row of r.rows) yield toStatus(row);
      if (r.rows.length < PAGE) return;
      const last = r.rows[r.rows.length - 1]!;
      after = [last.gateway_id, last.ts];
    }
  }

  async facilities(community?: string): Promise<RegisterFacility[]> {
    const r = await this.p.query<FacilityRow>('SELECT * FROM register_facilities WHERE ($1::text IS NULL OR community_code = $1) ORDER BY gateway_id, facility_id', [community ?? null]);
    return r.rows.map(fromFacilityRow);
  }

  async register(community?: string): Promise<RegisterDevice[]> {
    const r = await this.p.query<DeviceRow>('SELECT * FROM register_devices WHERE ($1::text IS NULL OR community_code = $1) ORDER BY gateway_id, device_id', [community ?? null]);
    return r.rows.map(fromDeviceRow);
  }
}

const SELECT_ITEM = 'SELECT gateway_id, seq, item_ts, community_code, kind, body, received_at FROM items';

interface ItemRow {
  gateway_id: string;
  seq: string;
  item_ts: Date;
  community_code: string;
  kind: ItemKind;
  body: AnyItem;
  received_at: Date;
}
interface StatusRow {
  gateway_id: string;
  community_code: string;
  ts: Date;
  body: StatusMessage;
  received_at: Date;
}

function toItem(r: ItemRow): StoredItem {
  return { gatewayId: r.gateway_id, communityCode: r.community_code, kind: r.kind, seq: Number(r.seq), itemTs: r.item_ts.getTime(), body: r.body, receivedAt: r.received_at.getTime() };
}

function toStatus(r: StatusRow): StoredStatus {
  return { gatewayId: r.gateway_id, communityCode: r.community_code, ts: r.ts.getTime(), body: r.body, receivedAt: r.received_at.getTime() };
}
