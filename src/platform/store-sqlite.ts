// The consumer's store in one SQLite file: for a laptop, a test, a single site. WAL and
// synchronous=FULL, so what was committed (and then acknowledged) survives a power cut. The
// schema version is PRAGMA user_version; each step below runs once, in order, in a transaction.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { ConfigResultMessage, StatusMessage } from '../uplink/contract.js';
import { canonical } from '../remote/bundle.js';
import { itemTime, type AnyItem, type ConsumerStore, type ItemKind, type ItemQuery, type RegisterDevice, type RegisterFacility, type StoredConfigResult, type StoredItem, type StoredStatus, type StoreResult } from './store.js';
import { facilityRows, fromDeviceRow, fromFacilityRow, registerRows, type DeviceRow, type FacilityRow } from './register.js';

/** Schema steps; the index + 1 is the user_version after it. Never edit a step: add one. */
const STEPS: string[] = [
  // 1: the tables of the first consumer (before PostgreSQL existed).
  `CREATE TABLE IF NOT EXISTS items (
     gateway_id TEXT NOT NULL, seq INTEGER NOT NULL, community_code TEXT NOT NULL,
     kind TEXT NOT NULL, body TEXT NOT NULL, received_at INTEGER NOT NULL,
     PRIMARY KEY (gateway_id, seq));
   CREATE TABLE IF NOT EXISTS status (gateway_id TEXT PRIMARY KEY, body TEXT NOT NULL, received_at INTEGER NOT NULL);
   CREATE TABLE IF NOT EXISTS config_results (
     id INTEGER PRIMARY KEY, gateway_id TEXT NOT NULL, community_code TEXT NOT NULL, ts INTEGER NOT NULL,
     version INTEGER, outcome TEXT NOT NULL, reason TEXT, body TEXT NOT NULL, received_at INTEGER NOT NULL,
     UNIQUE (gateway_id, body));
   CREATE TABLE IF NOT EXISTS rejected (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, reason TEXT NOT NULL, payload TEXT NOT NULL, received_at INTEGER NOT NULL);`,
  // 2: the item's own time (the report's range), status history, the facility register.
  `ALTER TABLE items ADD COLUMN item_ts INTEGER;
   UPDATE items SET item_ts = coalesce(json_extract(body, '$.windowStart'), json_extract(body, '$.ts'));
   CREATE INDEX items_by_time ON items (item_ts, community_code);
   CREATE TABLE statuses (gateway_id TEXT NOT NULL, ts INTEGER NOT NULL, community_code TEXT NOT NULL, body TEXT NOT NULL, received_at INTEGER NOT NULL, PRIMARY KEY (gateway_id, ts, body));
   INSERT INTO statuses (gateway_id, ts, community_code, body, received_at)
     SELECT gateway_id, json_extract(body, '$.ts'), json_extract(body, '$.communityCode'), body, received_at FROM status;
   CREATE TABLE gateways (gateway_id TEXT PRIMARY KEY, community_code TEXT NOT NULL, inventory_seq INTEGER NOT NULL, inventory_ts INTEGER NOT NULL, updated_at INTEGER NOT NULL);
   CREATE TABLE register_devices (
     gateway_id TEXT NOT NULL, device_id TEXT NOT NULL, community_code TEXT NOT NULL, facility TEXT NOT NULL,
     profile TEXT NOT NULL, profile_source TEXT, manufacturer TEXT NOT NULL, model TEXT NOT NULL, points INTEGER NOT NULL,
     inventory_seq INTEGER NOT NULL, inventory_ts INTEGER NOT NULL, PRIMARY KEY (gateway_id, device_id));`,
  // 3: facilities (issue 20): each device's facility id and house code, the facilities table.
  `ALTER TABLE register_devices ADD COLUMN facility_id TEXT;
   ALTER TABLE register_devices ADD COLUMN house_code TEXT;
   CREATE TABLE register_facilities (
     gateway_id TEXT NOT NULL, facility_id TEXT NOT NULL, community_code TEXT NOT NULL, type TEXT NOT NULL, code TEXT NOT NULL,
     name TEXT, house_code TEXT, listed INTEGER NOT NULL, devices INTEGER NOT NULL,
     inventory_seq INTEGER NOT NULL, inventory_ts INTEGER NOT NULL, PRIMARY KEY (gateway_id, facility_id));
   CREATE INDEX register_facilities_by_house ON register_facilities (house_code);`,
];

const PAGE = 2000;

export class SqliteStore implements ConsumerStore {
  private db: Database.Database | null = null;
  private st!: Record<'insert' | 'existing' | 'status' | 'statusLog' | 'reject' | 'configResult' | 'gateway' | 'dropDevices' | 'device' | 'dropFacilities' | 'facility', Database.Statement>;

  constructor(private readonly file: string) {}

  async openForReading(): Promise<void> {
    const db = new Database(this.file, { readonly: true, fileMustExist: true });
    const at = db.pragma('user_version', { simple: true }) as number;
    if (at !== STEPS.length) {
      db.close();
      throw new Error(`${this.file}: schema version ${at}, this version reads ${STEPS.length}: run community-gateway platform migrate --db ${this.file}`);
    }
    this.db = db;
  }

  async migrate(): Promise<void> {
    if (this.file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(this.file)), { recursive: true });
    const db = new Database(this.file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    const at = db.pragma('user_version', { simple: true }) as number;
    // A file of the first consumer has the tables of step 1 and user_version 0: step 1 is
    // written with IF NOT EXISTS for it.
    for (let v = at; v < STEPS.length; v++) {
      db.transaction(() => {
        db.exec(STEPS[v]!);
        db.pragma(`user_version = ${v + 1}`);
      })();
    }
    this.db = db;
    this.st = {
      insert: db.prepare('INSERT OR IGNORE INTO items (gateway_id, seq, community_code, kind, body, received_at, item_ts) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      existing: db.prepare('SELECT body FROM items WHERE gateway_id = ? AND seq = ?'),
      status: db.prepare(
        // The last one received wins: a will is composed at connect time and published later,
        // so its ts is older than statuses it follows.
        'INSERT INTO status (gateway_id, body, received_at) VALUES (?, ?, ?) ON CONFLICT(gateway_id) DO UPDATE SET body = excluded.body, received_at = excluded.received_at',
      ),
      statusLog: db.prepare('INSERT OR IGNORE INTO statuses (gateway_id, ts, community_code, body, received_at) VALUES (?, ?, ?, ?, ?)'),
      reject: db.prepare('INSERT INTO rejected (topic, reason, payload, received_at) VALUES (?, ?, ?, ?)'),
      configResult: db.prepare('INSERT OR IGNORE INTO config_results (gateway_id, community_code, ts, version, outcome, reason, body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      gateway: db.prepare(
        `INSERT INTO gateways (gateway_id, community_code, inventory_seq, inventory_ts, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(gateway_id) DO UPDATE SET community_code = excluded.community_code, inventory_seq = excluded.inventory_seq,
           inventory_ts = excluded.inventory_ts, updated_at = excluded.updated_at
         WHERE excluded.inventory_seq > gateways.inventory_seq`,
      ),
      dropDevices: db.prepare('DELETE FROM register_devices WHERE gateway_id = ?'),
      device: db.prepare(
        `INSERT INTO register_devices (gateway_id, device_id, community_code, facility, facility_id, house_code, profile, profile_source, manufacturer, model, points, inventory_seq, inventory_ts)
         VALUES (@gatewayId, @deviceId, @communityCode, @facility, @facilityId, @houseCode, @profile, @profileSource, @manufacturer, @model, @points, @inventorySeq, @inventoryTs)`,
      ),
      dropFacilities: db.prepare('DELETE FROM register_facilities WHERE gateway_id = ?'),
      facility: db.prepare(
        `INSERT INTO register_facilities (gateway_id, facility_id, community_code, type, code, name, house_code, listed, devices, inventory_seq, inventory_ts)
         VALUES (@gatewayId, @facilityId, @communityCode, @type, @code, @name, @houseCode, @listed, @devices, @inventorySeq, @inventoryTs)`,
      ),
    };
  }

  private get d(): Database.Database {
    if (!this.db) throw new Error('the store is not open (migrate() first)');
    return this.db;
  }

  async storeItems(gatewayId: string, communityCode: string, kind: ItemKind, items: readonly AnyItem[], receivedAt: number): Promise<StoreResult> {
    const r: StoreResult = { inserted: 0, duplicates: 0, conflicts: 0 };
    this.d.transaction(() => {
      for (const item of items) {
        const body = JSON.stringify(item);
        if (this.st.insert.run(gatewayId, item.seq, communityCode, kind, body, receivedAt, itemTime(kind, item)).changes === 1) r.inserted++;
        else if (canonical(JSON.parse((this.st.existing.get(gatewayId, item.seq) as { body: string }).body)) === canonical(item)) r.duplicates++;
        else r.conflicts++;
      }
      if (kind === 'inventory') {
        // The register keeps each gateway's newest inventory; an older one delivered late changes nothing.
        const newest = items.reduce((a, b) => (b.seq > a.seq ? b : a));
        const rows = registerRows(gatewayId, communityCode, newest);
        if (this.st.gateway.run(gatewayId, communityCode, newest.seq, itemTime(kind, newest), receivedAt).changes === 1) {
          this.st.dropDevices.run(gatewayId);
          for (const row of rows) this.st.device.run(row);
          this.st.dropFacilities.run(gatewayId);
          for (const f of facilityRows(gatewayId, communityCode, newest)) this.st.facility.run({ ...f, listed: f.listed ? 1 : 0 });
        }
      }
    })();
    return r;
  }

  async storeStatus(m: StatusMessage, receivedAt: number): Promise<void> {
    const body = JSON.stringify(m);
    this.d.transaction(() => {
      this.st.status.run(m.gatewayId, body, receivedAt);
      this.st.statusLog.run(m.gatewayId, m.ts, m.communityCode, body, receivedAt);
    })();
  }

  async storeConfigResult(m: ConfigResultMessage, receivedAt: number): Promise<boolean> {
    return this.st.configResult.run(m.gatewayId, m.communityCode, m.ts, m.version, m.outcome, m.reason ?? null, JSON.stringify(m), receivedAt).changes === 1;
  }

  async storeRejected(topic: string, reason: string, payload: string, receivedAt: number): Promise<void> {
    this.st.reject.run(topic, reason, payload, receivedAt);
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = null;
  }

  async seqs(gatewayId: string): Promise<number[]> {
    return (this.d.prepare('SELECT seq FROM items WHERE gateway_id = ? ORDER BY seq').all(gatewayId) as { seq: number }[]).map((r) => r.seq);
  }

  async countSeqs(gatewayId: string, lo: number, hi: number): Promise<number> {
    return (this.d.prepare('SELECT count(*) AS n FROM items WHERE gateway_id = ? AND seq BETWEEN ? AND ?').get(gatewayId, lo, hi) as { n: number }).n;
  }

  async items(gatewayId: string, kind?: ItemKind): Promise<StoredItem[]> {
    const rows = (kind
      ? this.d.prepare('SELECT * FROM items WHERE gateway_id = ? AND kind = ? ORDER BY seq').all(gatewayId, kind)
      : this.d.prepare('SELECT * FROM items WHERE gateway_id = ? ORDER BY seq').all(gatewayId)) as ItemRow[];
    return rows.map(toItem);
  }

  async lastStatus(gatewayId: string): Promise<StatusMessage | null> {
    const r = this.d.prepare('SELECT body FROM status WHERE gateway_id = ?').get(gatewayId) as { body: string } | undefined;
    return r ? (JSON.parse(r.body) as StatusMessage) : null;
  }

  async configResults(gatewayId: string): Promise<StoredConfigResult[]> {
    const rows = this.d.prepare('SELECT ts, version, outcome, reason, body FROM config_results WHERE gateway_id = ? ORDER BY id').all(gatewayId) as { ts: number; version: number | null; outcome: string; reason: string | null; body: string }[];
    return rows.map((r) => ({ ts: r.ts, version: r.version, outcome: r.outcome as StoredConfigResult['outcome'], reason: r.reason, body: JSON.parse(r.body) as ConfigResultMessage }));
  }

  async *scanItems(q: ItemQuery): AsyncIterable<StoredItem> {
    const kinds = q.kinds ?? ['agg', 'alarm', 'inventory'];
    const where = `item_ts >= ? AND item_ts < ? ${q.community ? 'AND community_code = ?' : ''} AND kind IN (${kinds.map(() => '?').join(',')})`;
    const page = this.d.prepare(`SELECT * FROM items WHERE ${where} AND (gateway_id, seq) > (?, ?) ORDER BY gateway_id, seq LIMIT ${PAGE}`);
    let after: [string, number] = ['', 0];
    for (;;) {
      const rows = page.all(q.from, q.to, ...(q.community ? [q.community] : []), ...kinds, ...after) as ItemRow[];
      for (const r of rows) yield toItem(r);
      if (rows.length < PAGE) return;
      const last = rows[rows.length - 1]!;
      after = [last.gateway_id, last.seq];
    }
  }

  async *scanStatuses(q: { from: number; to: number; community?: string }): AsyncIterable<StoredStatus> {
    const c = q.community ? 'AND community_code = ?' : '';
    const args = q.community ? [q.community] : [];
    // Per gateway the last one before `from` (the baseline of cumulative counters), then the range.
    const before = this.d.prepare(`SELECT s.* FROM statuses s JOIN (SELECT gateway_id, max(ts) AS ts FROM statuses WHERE ts < ? ${c} GROUP BY gateway_id) b USING (gateway_id, ts) ORDER BY gateway_id`).all(q.from, ...args) as StatusRow[];
    for (const r of before) yield toStatus(r);
    for (const r of this.d.prepare(`SELECT * FROM statuses WHERE ts >= ? AND ts < ? ${c} ORDER BY gateway_id, ts`).iterate(q.from, q.to, ...args) as IterableIterator<StatusRow>) yield toStatus(r);
  }

  async register(community?: string): Promise<RegisterDevice[]> {
    const rows = (community
      ? this.d.prepare('SELECT * FROM register_devices WHERE community_code = ? ORDER BY gateway_id, device_id').all(community)
      : this.d.prepare('SELECT * FROM register_devices ORDER BY gateway_id, device_id').all()) as DeviceRow[];
    return rows.map(fromDeviceRow);
  }

  async facilities(community?: string): Promise<RegisterFacility[]> {
    const rows = (community
      ? this.d.prepare('SELECT * FROM register_facilities WHERE community_code = ? ORDER BY gateway_id, facility_id').all(community)
      : this.d.prepare('SELECT * FROM register_facilities ORDER BY gateway_id, facility_id').all()) as FacilityRow[];
    return rows.map(fromFacilityRow);
  }
}

interface ItemRow {
  gateway_id: string;
  seq: number;
  community_code: string;
  kind: ItemKind;
  body: string;
  received_at: number;
  item_ts: number;
}
interface StatusRow {
  gateway_id: string;
  ts: number;
  community_code: string;
  body: string;
  received_at: number;
}

function toItem(r: ItemRow): StoredItem {
  return { gatewayId: r.gateway_id, communityCode: r.community_code, kind: r.kind, seq: r.seq, itemTs: r.item_ts, body: JSON.parse(r.body) as AnyItem, receivedAt: r.received_at };
}

function toStatus(r: StatusRow): StoredStatus {
  return { gatewayId: r.gateway_id, communityCode: r.community_code, ts: r.ts, body: JSON.parse(r.body) as StatusMessage, receivedAt: r.received_at };
}
