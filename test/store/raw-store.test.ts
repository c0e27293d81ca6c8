// The raw store against a real SQLite file on disk.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/store/database.js';
import { RawStore } from '../../src/store/raw-store.js';
import { silentLogger } from '../../src/log.js';
import type { Reading } from '../../src/types.js';
import { tmpDir } from '../helpers/peers.js';

const HOUR = 3600_000;
const NOW = Date.UTC(2025, 4, 1, 12, 0, 0);

const open: Db[] = [];
const stores: RawStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) {
    try {
      s.stop();
    } catch {
      /* the db may be closed on purpose */
    }
  }
  for (const db of open.splice(0)) if (db.open) db.close();
});

function mk(retentionHours = 24): { db: Db; rs: RawStore } {
  const db = openDatabase(path.join(tmpDir('cgw-raw-'), 'gateway.db'));
  open.push(db);
  const rs = new RawStore(db, retentionHours, silentLogger());
  stores.push(rs);
  return { db, rs };
}

function rd(over: Partial<Reading>): Reading {
  return {
    device: 'fridge-1',
    facility: 'canteen',
    point: 'temperature',
    ts: NOW,
    value: 4.5,
    quality: 'good',
    unit: '°C',
    privacy: 'public',
    kind: 'gauge',
    ...over,
  };
}

type Row = { device: string; point: string; ts: number; value: number | null; quality: string };
const all = (db: Db) => db.prepare('SELECT device, point, ts, value, quality FROM raw ORDER BY rowid').all() as Row[];

describe('RawStore', () => {
  it('add() buffers, flush() writes the rows in one go', () => {
    const { db, rs } = mk();
    rs.add(rd({ ts: NOW, value: 4.5 }));
    rs.add(rd({ ts: NOW + 1000, value: 5.25, quality: 'out_of_range' }));
    rs.add(rd({ device: 'meter-1', point: 'energy', ts: NOW + 2000, value: 1234.5, kind: 'counter' }));
    expect(all(db)).toEqual([]);
    rs.flush();
    expect(all(db)).toEqual([
      { device: 'fridge-1', point: 'temperature', ts: NOW, value: 4.5, quality: 'good' },
      { device: 'fridge-1', point: 'temperature', ts: NOW + 1000, value: 5.25, quality: 'out_of_range' },
      { device: 'meter-1', point: 'energy', ts: NOW + 2000, value: 1234.5, quality: 'good' },
    ]);
    expect(rs.written).toBe(3);
    expect(rs.dropped).toBe(0);
    // Nothing left to write: a second flush adds nothing.
    rs.flush();
    expect(all(db)).toHaveLength(3);
    expect(rs.written).toBe(3);
  });

  it('never stores identifier readings, but does store personal ones', () => {
    const { db, rs } = mk();
    rs.add(rd({ device: 'kiosk-1', point: 'card_id', value: 12345678, privacy: 'identifier' }));
    rs.add(rd({ device: 'kiosk-1', point: 'systolic', value: 128, privacy: 'personal' }));
    rs.add(rd({ device: 'kiosk-1', point: 'card_id', value: null, quality: 'timeout', privacy: 'identifier' }));
    rs.flush();
    expect(all(db)).toEqual([{ device: 'kiosk-1', point: 'systolic', ts: NOW, value: 128, quality: 'good' }]);
    expect(db.prepare("SELECT count(*) AS n FROM raw WHERE point = 'card_id'").get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT count(*) AS n FROM raw WHERE value = 12345678').get()).toEqual({ n: 0 });
    expect(rs.written).toBe(1);
  });

  it('stores booleans as 1/0 and null values as NULL', () => {
    const { db, rs } = mk();
    rs.add(rd({ point: 'door', ts: NOW, value: true, kind: 'state', unit: '' }));
    rs.add(rd({ point: 'door', ts: NOW + 1, value: false, kind: 'state', unit: '' }));
    rs.add(rd({ point: 'temperature', ts: NOW + 2, value: null, quality: 'timeout' }));
    rs.add(rd({ point: 'temperature', ts: NOW + 3, value: 0 }));
    rs.flush();
    const rows = db.prepare('SELECT point, value, typeof(value) AS t, quality FROM raw ORDER BY ts').all();
    expect(rows).toEqual([
      // The column has REAL affinity: 1 and 0 come back as the numbers 1 and 0.
      { point: 'door', value: 1, t: 'real', quality: 'good' },
      { point: 'door', value: 0, t: 'real', quality: 'good' },
      { point: 'temperature', value: null, t: 'null', quality: 'timeout' },
      { point: 'temperature', value: 0, t: 'real', quality: 'good' },
    ]);
  });

  it('prune(now) deletes rows older than the retention and keeps the newer ones', async () => {
    const { db, rs } = mk(2);
    const cutoff = NOW - 2 * HOUR;
    rs.add(rd({ ts: NOW - 30 * HOUR, value: 1 }));
    rs.add(rd({ ts: NOW - 3 * HOUR, value: 2 }));
    rs.add(rd({ ts: cutoff - 1, value: 3 }));
    rs.add(rd({ ts: cutoff, value: 4 }));
    rs.add(rd({ ts: NOW - HOUR, value: 5 }));
    rs.add(rd({ ts: NOW, value: 6 }));
    rs.flush();
    await rs.prune(NOW);
    expect(all(db).map((r) => r.value)).toEqual([4, 5, 6]);
    expect(rs.pruned).toBe(3);
    // Idempotent.
    await rs.prune(NOW);
    expect(rs.pruned).toBe(3);
    expect(all(db)).toHaveLength(3);
    // An hour later the cutoff moves on by an hour.
    await rs.prune(NOW + HOUR);
    expect(all(db).map((r) => r.value)).toEqual([5, 6]);
    expect(rs.pruned).toBe(4);
  });

  it('prunes more than one chunk (5000 rows) in one call', async () => {
    const { db, rs } = mk(1);
    const n = 12_345;
    for (let i = 0; i < n; i++) rs.add(rd({ ts: NOW - 5 * HOUR + i, value: i }));
    rs.add(rd({ ts: NOW, value: -1 }));
    rs.flush();
    await rs.prune(NOW);
    expect(rs.pruned).toBe(n);
    expect(all(db).map((r) => r.value)).toEqual([-1]);
  });

  it('series() flushes and returns one point in time order within [from, to]', () => {
    const { rs } = mk();
    rs.add(rd({ ts: NOW + 3000, value: 3 }));
    rs.add(rd({ ts: NOW + 1000, value: 1 }));
    rs.add(rd({ ts: NOW + 5000, value: 5 }));
    rs.add(rd({ ts: NOW + 2000, value: null, quality: 'exception' }));
    rs.add(rd({ ts: NOW + 4000, value: 4 }));
    rs.add(rd({ ts: NOW + 2500, point: 'humidity', value: 60 }));
    rs.add(rd({ ts: NOW + 2500, device: 'fridge-2', value: 7 }));
    // No explicit flush: series() must see the buffered readings.
    expect(rs.series('fridge-1', 'temperature', NOW + 1000, NOW + 4000)).toEqual([
      { ts: NOW + 1000, value: 1, quality: 'good' },
      { ts: NOW + 2000, value: null, quality: 'exception' },
      { ts: NOW + 3000, value: 3, quality: 'good' },
      { ts: NOW + 4000, value: 4, quality: 'good' },
    ]);
    expect(rs.series('fridge-1', 'humidity', 0, NOW * 2)).toEqual([{ ts: NOW + 2500, value: 60, quality: 'good' }]);
    expect(rs.series('fridge-9', 'temperature', 0, NOW * 2)).toEqual([]);
  });

  it('retention 0 stores nothing and start() arms no timers', () => {
    const { db, rs } = mk(0);
    rs.start();
    rs.add(rd({ value: 1 }));
    rs.add(rd({ value: true, point: 'door' }));
    rs.flush();
    rs.stop();
    expect(all(db)).toEqual([]);
    expect(rs.written).toBe(0);
    expect(rs.dropped).toBe(0);
    expect(rs.series('fridge-1', 'temperature', 0, NOW * 2)).toEqual([]);
  });

  it('stop() writes what is still buffered', () => {
    const { db, rs } = mk();
    rs.start();
    rs.add(rd({ value: 9 }));
    rs.stop();
    expect(all(db).map((r) => r.value)).toEqual([9]);
  });

  it('a flush failure on a closed database drops and counts instead of throwing', () => {
    const { db, rs } = mk();
    rs.add(rd({ value: 1 }));
    rs.flush();
    rs.add(rd({ value: 2 }));
    rs.add(rd({ value: 3 }));
    db.close();
    expect(() => rs.flush()).not.toThrow();
    expect(rs.dropped).toBe(2);
    expect(rs.written).toBe(1);
    // The buffer is empty afterwards: the same readings are not counted twice.
    expect(() => rs.flush()).not.toThrow();
    expect(rs.dropped).toBe(2);
  });

  it('a flush failure on a dropped table drops and counts the whole batch', () => {
    const { db, rs } = mk();
    rs.add(rd({ value: 1 }));
    rs.flush();
    db.exec('DROP TABLE raw');
    for (let i = 0; i < 4; i++) rs.add(rd({ value: i }));
    expect(() => rs.flush()).not.toThrow();
    expect(rs.dropped).toBe(4);
    expect(rs.written).toBe(1);
  });

  it('a prune failure is logged, not thrown, and a later prune works again', async () => {
    const { db, rs } = mk(1);
    rs.add(rd({ ts: NOW - 5 * HOUR }));
    rs.flush();
    db.exec('ALTER TABLE raw RENAME TO raw_moved');
    await expect(rs.prune(NOW)).resolves.toBeUndefined();
    expect(rs.pruned).toBe(0);
    db.exec('ALTER TABLE raw_moved RENAME TO raw');
    await rs.prune(NOW);
    expect(rs.pruned).toBe(1);
  });

  it('past 50 000 buffered readings the oldest are dropped and counted', () => {
    const { db, rs } = mk();
    for (let i = 0; i < 50_003; i++) rs.add(rd({ ts: NOW + i, value: i }));
    expect(rs.dropped).toBe(3);
    rs.flush();
    expect(rs.written).toBe(50_000);
    const r = db.prepare('SELECT min(value) AS lo, max(value) AS hi, count(*) AS n FROM raw').get();
    expect(r).toEqual({ lo: 3, hi: 50_002, n: 50_000 });
  });
});
