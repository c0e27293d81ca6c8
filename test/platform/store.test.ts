// The consumer's two stores, the same checks on each: a real PostgreSQL 15 cluster started by
// the test (bench/peers/postgres.ts) and a SQLite file on disk. De-duplication on
// (gatewayId, seq), conflicts, the facility register (newest inventory wins), the streamed
// scans the report reads, results and rejected messages; PostgreSQL's monthly partitions and
// its migration step run twice at once.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster } from '../../bench/peers/postgres.js';
import { PostgresStore, MIGRATIONS } from '../../src/platform/store-postgres.js';
import { SqliteStore } from '../../src/platform/store-sqlite.js';
import type { AnyItem, ConsumerStore, StoredItem } from '../../src/platform/store.js';
import { AggItem, AlarmItem, InventoryItem, StatusMessage } from '../../src/uplink/contract.js';
import { tmpDir } from '../helpers/peers.js';

const CC = '330106001001';
const DEC = Date.UTC(2026, 11, 1, 8); // 2026-12-01 08:00 UTC
const NOV = Date.UTC(2026, 10, 30, 23, 59); // the month before

const point = (seq: number, windowStart: number, mean = 4.2): AnyItem =>
  AggItem.parse({ seq, type: 'point', windowStart, windowSeconds: 60, facility: 'canteen', device: 'fridge-1', point: 'fridge_1_temperature', unit: '°C', kind: 'gauge', count: 6, bad: 0, mean, min: mean, max: mean, sum: mean * 6, last: mean });
const alarm = (seq: number, ts: number): AnyItem =>
  AlarmItem.parse({ seq, ts, alarm: 'fridge-warm', state: 'raised', severity: 'warning', facility: 'canteen', device: 'fridge-1', point: 'fridge_1_temperature', value: 9.1, condition: '> 8 for 600 s' });
const inventory = (seq: number, ts: number, devices: string[]): AnyItem =>
  InventoryItem.parse({
    seq,
    ts,
    devices: devices.map((id) => ({ id, facility: 'canteen', profile: 'r4dcb08', profileSource: 'shipped', manufacturer: 'unbranded', model: 'R4DCB08', points: [{ id: 'fridge_1_temperature', unit: '°C', kind: 'gauge', privacy: 'public', uplinked: 'aggregate' }] })),
  });
const status = (gw: string, ts: number, reason: 'connected' | 'periodic' | 'will' = 'periodic') => StatusMessage.parse({ v: 1, gatewayId: gw, communityCode: CC, kind: 'status', state: reason === 'will' ? 'offline' : 'online', seq: 1, ts, reason });

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

let cluster: PgCluster;
beforeAll(async () => {
  cluster = await PgCluster.start();
}, 60_000);
afterAll(async () => {
  await cluster?.destroy();
});

const kinds: [string, () => Promise<ConsumerStore>][] = [
  [
    'PostgreSQL',
    async () => {
      const s = new PostgresStore(await cluster.createDatabase());
      await s.migrate();
      return s;
    },
  ],
  [
    'SQLite',
    async () => {
      const s = new SqliteStore(path.join(tmpDir('cgw-store-'), 'p.db'));
      await s.migrate();
      return s;
    },
  ],
];

describe.each(kinds)('consumer store: %s', (_name, open) => {
  it('stores the items of a message once: a resend is counted as duplicates, other content under a known seq as a conflict', async () => {
    const s = await open();
    const items = [point(1, DEC), point(2, DEC + 60_000), alarm(3, DEC + 90_000)];
    expect(await s.storeItems('gw-a', CC, 'agg', items.slice(0, 2), DEC + 100_000)).toEqual({ inserted: 2, duplicates: 0, conflicts: 0 });
    expect(await s.storeItems('gw-a', CC, 'alarm', items.slice(2), DEC + 100_000)).toEqual({ inserted: 1, duplicates: 0, conflicts: 0 });
    // The same message again (a QoS 1 resend), and one overlapping it with a new item.
    expect(await s.storeItems('gw-a', CC, 'agg', items.slice(0, 2), DEC + 200_000)).toEqual({ inserted: 0, duplicates: 2, conflicts: 0 });
    expect(await s.storeItems('gw-a', CC, 'agg', [point(2, DEC + 60_000), point(4, DEC + 120_000)], DEC + 200_000)).toEqual({ inserted: 1, duplicates: 1, conflicts: 0 });
    // Same seq and time, other content: kept out, counted.
    expect(await s.storeItems('gw-a', CC, 'agg', [point(1, DEC, 9.9)], DEC + 200_000)).toEqual({ inserted: 0, duplicates: 0, conflicts: 1 });
    // Another gateway's seq 1 is its own.
    expect(await s.storeItems('gw-b', CC, 'agg', [point(1, DEC)], DEC + 200_000)).toEqual({ inserted: 1, duplicates: 0, conflicts: 0 });
    expect(await s.seqs('gw-a')).toEqual([1, 2, 3, 4]);
    const stored = await s.items('gw-a', 'agg');
    expect(stored.map((i) => [i.seq, i.itemTs, i.kind])).toEqual([
      [1, DEC, 'agg'],
      [2, DEC + 60_000, 'agg'],
      [4, DEC + 120_000, 'agg'],
    ]);
    // The body as the gateway sent it, the first one kept.
    expect(stored[0]!.body).toEqual(point(1, DEC));
    expect(stored[0]!.receivedAt).toBe(DEC + 100_000);
    await s.close();
  });

  it('the facility register holds each gateway\'s newest inventory: an older one delivered late changes nothing', async () => {
    const s = await open();
    await s.storeItems('gw-a', CC, 'inventory', [inventory(5, DEC, ['fridge-1', 'fridge-2'])], DEC);
    await s.storeItems('gw-b', '330106001002', 'inventory', [inventory(1, DEC, ['kiosk-1'])], DEC);
    await s.storeItems('gw-a', CC, 'inventory', [inventory(9, DEC + 60_000, ['fridge-1'])], DEC + 60_000);
    await s.storeItems('gw-a', CC, 'inventory', [inventory(7, DEC + 30_000, ['fridge-1', 'fridge-2', 'fridge-3'])], DEC + 90_000);
    const reg = await s.register();
    expect(reg.map((d) => [d.gatewayId, d.deviceId, d.inventorySeq, d.communityCode])).toEqual([
      ['gw-a', 'fridge-1', 9, CC],
      ['gw-b', 'kiosk-1', 1, '330106001002'],
    ]);
    expect(reg[0]).toMatchObject({ facility: 'canteen', profile: 'r4dcb08', profileSource: 'shipped', model: 'R4DCB08', points: 1, inventoryTs: DEC + 60_000 });
    expect((await s.register('330106001002')).map((d) => d.deviceId)).toEqual(['kiosk-1']);
    // An inventory of an older gateway has no facilities and no facility ids.
    expect(reg[0]).toMatchObject({ facilityId: null, houseCode: null });
    expect(await s.facilities()).toEqual([]);
    await s.close();
  });

  it('the register keeps the facilities of the newest inventory, with each device\'s facility id and house code', async () => {
    const s = await open();
    const withFacilities = (seq: number, ts: number, houses: string[]): AnyItem => {
      const base = inventory(seq, ts, ['fridge-1', 'air-1']) as unknown as { devices: Record<string, unknown>[] };
      const devices = base.devices.map((d, i) => ({ ...d, facility: i === 0 ? 'canteen' : 'childcare', facilityId: i === 0 ? 'canteen-north' : 'nursery', ...(houses[i] ? { houseCode: houses[i] } : {}) }));
      const facilities = [
        { id: 'canteen-north', type: 'canteen', code: '05', typeName: { zh: '老年食堂', en: 'Elderly canteen' }, name: '北区食堂', ...(houses[0] ? { houseCode: houses[0] } : {}), listed: true, devices: 1 },
        { id: 'nursery', type: 'childcare', code: '03', typeName: { zh: '托育服务设施', en: 'Childcare facility' }, ...(houses[1] ? { houseCode: houses[1] } : {}), listed: true, devices: 1 },
      ];
      return InventoryItem.parse({ ...base, devices, facilities, site: { name: '测试' } }) as unknown as AnyItem;
    };
    await s.storeItems('gw-a', CC, 'inventory', [withFacilities(3, DEC, ['H-1', 'H-2'])], DEC);
    await s.storeItems('gw-a', CC, 'inventory', [withFacilities(4, DEC + 60_000, ['H-9', ''])], DEC + 60_000);
    // Delivered late: changes nothing.
    await s.storeItems('gw-a', CC, 'inventory', [withFacilities(2, DEC - 60_000, ['H-0', 'H-0'])], DEC + 90_000);
    const f = await s.facilities(CC);
    expect(f).toEqual([
      { gatewayId: 'gw-a', communityCode: CC, facilityId: 'canteen-north', type: 'canteen', code: '05', name: '北区食堂', houseCode: 'H-9', listed: true, devices: 1, inventorySeq: 4, inventoryTs: DEC + 60_000 },
      { gatewayId: 'gw-a', communityCode: CC, facilityId: 'nursery', type: 'childcare', code: '03', name: null, houseCode: null, listed: true, devices: 1, inventorySeq: 4, inventoryTs: DEC + 60_000 },
    ]);
    const reg = await s.register(CC);
    expect(reg.map((d) => [d.deviceId, d.facility, d.facilityId, d.houseCode])).toEqual([
      ['air-1', 'childcare', 'nursery', null],
      ['fridge-1', 'canteen', 'canteen-north', 'H-9'],
    ]);
    expect(await s.facilities('330106001002')).toEqual([]);
    await s.close();
  });

  it('streams items of a time range and a community in (gatewayId, seq) order, across pages; statuses with the last one before the range', async () => {
    const s = await open();
    // 4,500 items over two months and two communities: more than two pages.
    for (let b = 0; b < 45; b++) {
      const items = Array.from({ length: 100 }, (_, i) => point(b * 100 + i + 1, (b % 2 ? DEC : NOV) + i * 60_000));
      await s.storeItems(b % 3 ? 'gw-a' : 'gw-c', b % 3 ? CC : '330106001002', 'agg', items, DEC);
    }
    const dec = await all(s.scanItems({ from: DEC, to: DEC + 86_400_000, community: CC }));
    const expected = [];
    for (let b = 0; b < 45; b++) if (b % 2 && b % 3) for (let i = 0; i < 100; i++) expected.push(b * 100 + i + 1);
    expect(dec.map((i) => i.seq)).toEqual(expected);
    expect(dec.every((i: StoredItem) => i.gatewayId === 'gw-a' && i.itemTs >= DEC)).toBe(true);
    expect((await all(s.scanItems({ from: NOV - 86_400_000, to: DEC + 86_400_000 }))).length).toBe(4500);
    expect((await all(s.scanItems({ from: DEC, to: DEC + 86_400_000, kinds: ['alarm'] }))).length).toBe(0);

    await s.storeStatus(status('gw-a', DEC - 7200_000), DEC);
    await s.storeStatus(status('gw-a', DEC - 3600_000), DEC);
    await s.storeStatus(status('gw-a', DEC + 600_000), DEC);
    await s.storeStatus(status('gw-a', DEC + 600_000), DEC); // the same message again: once
    await s.storeStatus(status('gw-a', DEC + 300_000, 'will'), DEC + 900_000); // a will arrives late
    const st = await all(s.scanStatuses({ from: DEC, to: DEC + 86_400_000 }));
    expect(st.map((x) => [x.gatewayId, x.ts])).toEqual([
      ['gw-a', DEC - 3600_000],
      ['gw-a', DEC + 300_000],
      ['gw-a', DEC + 600_000],
    ]);
    // The last status received is the gateway's state, not the one with the newest ts.
    expect((await s.lastStatus('gw-a'))?.reason).toBe('will');
    await s.close();
  });

  it('keeps a config result once (a resend) and a rejected message with its reason', async () => {
    const s = await open();
    const r = { v: 1 as const, gatewayId: 'gw-a', communityCode: CC, kind: 'config-result' as const, ts: DEC, version: 3, outcome: 'applied' as const, applied: 'reload' as const, config: { hash: `sha256:${'a'.repeat(64)}`, version: 2, remoteVersion: 3, remote: true } };
    expect(await s.storeConfigResult(r, DEC)).toBe(true);
    expect(await s.storeConfigResult(r, DEC + 1)).toBe(false);
    expect((await s.configResults('gw-a')).map((x) => [x.version, x.outcome, x.ts])).toEqual([[3, 'applied', DEC]]);
    await s.storeRejected('fc/v1/x', 'not JSON', 'a\0b', DEC);
    await s.close();
  });
});

describe('consumer store: PostgreSQL only', () => {
  it('partitions by month of the item\'s own time; migrate twice at once runs each step once', async () => {
    const url = cluster.url.replace(/\/cgw$/, '/tpart');
    const admin = new pg.Client(cluster.url);
    await admin.connect();
    await admin.query('CREATE DATABASE tpart');
    await admin.end();
    const [a, b] = [new PostgresStore(url), new PostgresStore(url)];
    await Promise.all([a.migrate(), b.migrate()]);
    expect((await a.applied()).map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
    // Two consumers making the same month's partition at once.
    await Promise.all([a.storeItems('gw-a', CC, 'agg', [point(1, DEC)], DEC), b.storeItems('gw-b', CC, 'agg', [point(1, DEC), point(2, NOV)], DEC)]);
    const c = new pg.Client(url);
    await c.connect();
    const parts = await c.query<{ child: string }>("SELECT c.relname AS child FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'items' ORDER BY 1");
    expect(parts.rows.map((r) => r.child)).toEqual(['items_2026_11', 'items_2026_12']);
    const rows = await c.query<{ tableoid: string; seq: string }>("SELECT tableoid::regclass::text AS tableoid, seq FROM items WHERE gateway_id = 'gw-b' ORDER BY seq");
    expect(rows.rows).toEqual([
      { tableoid: 'items_2026_12', seq: '1' },
      { tableoid: 'items_2026_11', seq: '2' },
    ]);
    // A partition dropped by retention while the consumer runs is made again.
    await c.query('DROP TABLE items_2026_11');
    expect(await a.storeItems('gw-a', CC, 'agg', [point(7, NOV)], DEC)).toEqual({ inserted: 1, duplicates: 0, conflicts: 0 });
    await c.end();
    await a.close();
    await b.close();
  });
});

describe('opening for reading (a report)', () => {
  it('refuses a database whose schema is missing or older, naming platform migrate; reads one that is up to date', async () => {
    const admin = spawnSync('psql', [cluster.url, '-q', '-c', 'CREATE DATABASE tread'], { encoding: 'utf8' });
    expect(admin.status, admin.stderr).toBe(0);
    const url = cluster.url.replace(/\/cgw$/, '/tread');
    await expect(new PostgresStore(url).openForReading()).rejects.toThrow(/schema version 0, .*platform migrate/);
    const m = new PostgresStore(url);
    await m.migrate();
    await m.storeItems('gw-a', CC, 'agg', [point(1, DEC)], DEC);
    await m.close();
    const r = new PostgresStore(url);
    await r.openForReading();
    expect(await r.seqs('gw-a')).toEqual([1]);
    await r.close();
    // SQLite: a file that does not exist is not made; an old one is not changed.
    const dir = tmpDir('cgw-store-');
    await expect(new SqliteStore(path.join(dir, 'none.db')).openForReading()).rejects.toThrow();
    expect(fs.existsSync(path.join(dir, 'none.db'))).toBe(false);
    const old = new Database(path.join(dir, 'old.db'));
    old.pragma('user_version = 1');
    old.close();
    await expect(new SqliteStore(path.join(dir, 'old.db')).openForReading()).rejects.toThrow(/schema version 1, this version reads 3: run community-gateway platform migrate/);
  });
});

describe('platform migrate', () => {
  it('creates the schema of an empty database and lists its steps; says which option is wrong; exit 1 when the database is unreachable', () => {
    const admin = spawnSync('psql', [cluster.url, '-q', '-c', 'CREATE DATABASE tmig'], { encoding: 'utf8' });
    expect(admin.status, admin.stderr).toBe(0);
    const cli = (...a: string[]) => spawnSync(process.execPath, ['dist/src/cli.js', 'platform', 'migrate', ...a], { encoding: 'utf8' });
    const r = cli('--db', cluster.url.replace(/\/cgw$/, '/tmig'));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => l.split('\t')[0])).toEqual(MIGRATIONS.map((m) => String(m.version)));
    // Twice: nothing more to do, the same list.
    expect(cli('--db', cluster.url.replace(/\/cgw$/, '/tmig')).stdout).toBe(r.stdout);
    const bad = cli();
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--db: is required/);
    expect(cli('--db', 'x.db', 'extra').stderr).toMatch(/FILE: none expected/);
    const down = cli('--db', 'postgres://postgres@127.0.0.1:1/none');
    expect(down.status).toBe(1);
    expect(down.stderr).toMatch(/ECONNREFUSED/);
  });
});

describe('consumer store: SQLite only', () => {
  it('upgrades a file of the first consumer (no item_ts, no register) in place, items kept', async () => {
    const file = path.join(tmpDir('cgw-store-'), 'old.db');
    const old = new Database(file);
    old.exec(`CREATE TABLE items (gateway_id TEXT NOT NULL, seq INTEGER NOT NULL, community_code TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL, received_at INTEGER NOT NULL, PRIMARY KEY (gateway_id, seq));
      CREATE TABLE status (gateway_id TEXT PRIMARY KEY, body TEXT NOT NULL, received_at INTEGER NOT NULL);`);
    old.prepare('INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)').run('gw-a', 1, CC, 'agg', JSON.stringify(point(1, DEC)), DEC);
    old.prepare('INSERT INTO status VALUES (?, ?, ?)').run('gw-a', JSON.stringify(status('gw-a', DEC)), DEC);
    old.close();
    const s = new SqliteStore(file);
    await s.migrate();
    expect((await s.items('gw-a')).map((i) => [i.seq, i.itemTs])).toEqual([[1, DEC]]);
    expect((await all(s.scanStatuses({ from: DEC, to: DEC + 1 }))).map((x) => x.ts)).toEqual([DEC]);
    expect(await s.storeItems('gw-a', CC, 'agg', [point(1, DEC)], DEC)).toEqual({ inserted: 0, duplicates: 1, conflicts: 0 });
    await s.close();
    expect(new Database(file, { readonly: true }).pragma('user_version', { simple: true })).toBe(3);
    expect(fs.existsSync(file)).toBe(true);
  });
});
