// The raw store against a real SQLite file on disk.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/database.js';
import { openRawDatabase } from '../../src/store/raw-database.js';
import { RawStore } from '../../src/store/raw-store.js';
import { silentLogger } from '../../src/log.js';
import type { Reading } from '../../src/types.js';
import { tmpDir } from '../helpers/peers.js';
import { collected, promotedPerRound } from '../helpers/retention.js';

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
  const db = openRawDatabase(path.join(tmpDir('cgw-raw-'), 'gateway-raw.db'));
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
/** Everything on disk, read back through a second store on the same file (nothing buffered). */
const all = (db: Db): Row[] => {
  const reader = new RawStore(db, 24, silentLogger());
  const series = db.prepare('SELECT device, point FROM series ORDER BY id').all() as { device: string; point: string }[];
  return series
    .flatMap((s) => reader.series(s.device, s.point, -Infinity, Infinity).map((p) => ({ device: s.device, point: s.point, ...p })))
    .sort((a, b) => a.ts - b.ts);
};
const blocks = (db: Db) => (db.prepare('SELECT count(*) AS n FROM block').get() as { n: number }).n;

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
    // One block per series, one flush row: two commits' worth of rows, not one per reading.
    expect(blocks(db)).toBe(2);
    expect(rs.flushes).toBe(1);
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
    // Not even a series row names it.
    expect(db.prepare("SELECT count(*) AS n FROM series WHERE point = 'card_id'").get()).toEqual({ n: 0 });
    expect(rs.written).toBe(1);
  });

  it('stores booleans as 1/0 and null values as NULL', () => {
    const { db, rs } = mk();
    rs.add(rd({ point: 'door', ts: NOW, value: true, kind: 'state', unit: '' }));
    rs.add(rd({ point: 'door', ts: NOW + 1, value: false, kind: 'state', unit: '' }));
    rs.add(rd({ point: 'temperature', ts: NOW + 2, value: null, quality: 'timeout' }));
    rs.add(rd({ point: 'temperature', ts: NOW + 3, value: 0 }));
    rs.flush();
    expect(all(db).map((r) => ({ point: r.point, value: r.value, quality: r.quality }))).toEqual([
      { point: 'door', value: 1, quality: 'good' },
      { point: 'door', value: 0, quality: 'good' },
      { point: 'temperature', value: null, quality: 'timeout' },
      { point: 'temperature', value: 0, quality: 'good' },
    ]);
  });

  it('prune(now) deletes blocks whose newest reading is older than the retention and keeps the newer ones', async () => {
    const { db, rs } = mk(2);
    const cutoff = NOW - 2 * HOUR;
    // Each flush writes one block per series (readings further apart than 10 minutes are
    // split): the retention applies per block, by its newest reading.
    rs.add(rd({ ts: NOW - 30 * HOUR, value: 1 }));
    rs.add(rd({ ts: NOW - 3 * HOUR, value: 2 }));
    rs.flush();
    rs.add(rd({ ts: cutoff - 2, value: 3 }));
    rs.add(rd({ ts: cutoff - 1, value: 4 }));
    rs.flush();
    rs.add(rd({ ts: cutoff - 1, value: 5 }));
    rs.add(rd({ ts: cutoff, value: 6 }));
    rs.flush();
    rs.add(rd({ ts: NOW - HOUR, value: 7 }));
    rs.add(rd({ ts: NOW, value: 8 }));
    rs.flush();
    expect(blocks(db)).toBe(6);
    await rs.prune(NOW);
    expect(all(db).map((r) => r.value)).toEqual([5, 6, 7, 8]);
    expect(rs.pruned).toBe(4);
    // Idempotent.
    await rs.prune(NOW);
    expect(rs.pruned).toBe(4);
    expect(all(db)).toHaveLength(4);
    // An hour later the cutoff moves on by an hour; a flush whose blocks are all gone is too.
    await rs.prune(NOW + HOUR);
    expect(all(db).map((r) => r.value)).toEqual([7, 8]);
    expect(rs.pruned).toBe(6);
    expect(db.prepare('SELECT count(*) AS n FROM flush').get()).toEqual({ n: 1 });
  });

  it('prunes more than one chunk (20 flushes) in one call', async () => {
    const { db, rs } = mk(1);
    for (let f = 0; f < 45; f++) {
      for (let i = 0; i < 100; i++) rs.add(rd({ ts: NOW - 5 * HOUR + f * 60_000 + i * 100, value: f * 100 + i }));
      rs.flush();
    }
    rs.add(rd({ ts: NOW, value: -1 }));
    rs.flush();
    await rs.prune(NOW);
    expect(rs.pruned).toBe(4500);
    expect(all(db).map((r) => r.value)).toEqual([-1]);
    expect(blocks(db)).toBe(1);
  });

  it('a prune pass ends even when many flushes hold a block straddling the cutoff', async () => {
    const { rs } = mk(1);
    // 30 flushes, each one block with a reading a minute before the cutoff and one a minute after.
    const cutoff = NOW - HOUR;
    for (let f = 0; f < 30; f++) {
      rs.add(rd({ ts: cutoff - 60_000 - f, value: f }));
      rs.add(rd({ ts: cutoff + 60_000 + f, value: 100 + f }));
      rs.flush();
    }
    const done = rs.prune(NOW);
    const timeout = new Promise((r) => setTimeout(() => r('stuck'), 2000));
    expect(await Promise.race([done.then(() => 'done'), timeout])).toBe('done');
    // Straddling blocks are kept whole; queries still find their newer readings.
    expect(rs.series('fridge-1', 'temperature', cutoff, NOW)).toHaveLength(30);
  });

  it('a clock step back between flushes (same times twice) keeps both and throws nothing', () => {
    const { db, rs } = mk();
    rs.add(rd({ ts: NOW, value: 1 }));
    rs.add(rd({ ts: NOW + 1000, value: 2 }));
    rs.flush();
    rs.add(rd({ ts: NOW, value: 3 }));
    rs.add(rd({ ts: NOW - 500, value: 4 }));
    expect(() => rs.flush()).not.toThrow();
    expect(rs.dropped).toBe(0);
    expect(all(db).map((r) => [r.ts - NOW, r.value])).toEqual([
      [-500, 4],
      [0, 1],
      [0, 3],
      [1000, 2],
    ]);
  });

  it('a restart continues the flush sequence after what is on disk', () => {
    const file = path.join(tmpDir('cgw-raw-'), 'gateway-raw.db');
    const db1 = openRawDatabase(file);
    const a = new RawStore(db1, 24, silentLogger());
    a.add(rd({ ts: NOW, value: 1 }));
    a.add(rd({ device: 'meter-1', point: 'energy', ts: NOW, value: 10 }));
    a.flush();
    db1.close();
    const { rs } = { rs: new RawStore(openRawDatabase(file), 24, silentLogger()) };
    stores.push(rs);
    rs.add(rd({ ts: NOW + 1000, value: 2 }));
    rs.flush();
    expect(rs.series('fridge-1', 'temperature', 0, NOW * 2).map((p) => p.value)).toEqual([1, 2]);
    expect(rs.series('meter-1', 'energy', 0, NOW * 2).map((p) => p.value)).toEqual([10]);
  });

  it('bucketed() averages the good readings per bucket, from disk and memory alike', () => {
    const { rs } = mk();
    rs.add(rd({ ts: NOW, value: 1 }));
    rs.add(rd({ ts: NOW + 1000, value: 3 }));
    rs.add(rd({ ts: NOW + 1500, value: 100, quality: 'out_of_range' }));
    rs.flush();
    rs.add(rd({ ts: NOW + 10_000, value: 5 }));
    rs.add(rd({ ts: NOW + 10_001, value: null, quality: 'timeout' }));
    // Buckets of 10 s over [NOW, NOW + 20 s): NOW is a multiple of 10 s.
    expect(rs.bucketed('fridge-1', 'temperature', NOW, NOW + 20_000, 2)).toEqual([
      [NOW + 5000, 2],
      [NOW + 15_000, 5],
    ]);
  });

  it('makeRoom() gives up the oldest flushes and hands their pages back to the file system', () => {
    const file = path.join(tmpDir('cgw-raw-'), 'gateway-raw.db');
    const db = openRawDatabase(file);
    open.push(db);
    const rs = new RawStore(db, 24, silentLogger());
    stores.push(rs);
    // Float64 values (noise), so the blocks take real room: 10 flushes of 3,000 readings.
    for (let f = 0; f < 10; f++) {
      for (let i = 0; i < 3000; i++) rs.add(rd({ point: `p${i % 30}`, ts: NOW + f * 60_000 + i, value: Math.random() }));
      rs.flush();
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
    const before = fs.statSync(file).size;
    const n = rs.makeRoom();
    // Whole flushes, oldest first, until at least 5,000 readings: two flushes.
    expect(n).toBe(6000);
    expect(rs.evicted).toBe(6000);
    expect(fs.statSync(file).size).toBeLessThan(before - 6000 * 8 * 0.9);
    expect(fs.statSync(`${file}-wal`).size).toBe(0);
    const left = rs.series('fridge-1', 'p0', 0, NOW * 2);
    expect(left).toHaveLength(800);
    expect(left[0]!.ts).toBe(NOW + 2 * 60_000);
    // Nothing left to give: 0, and no error.
    while (rs.makeRoom() > 0);
    expect(rs.makeRoom()).toBe(0);
    expect(rs.evicted).toBe(30_000);
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
    db.exec('DROP TABLE block');
    for (let i = 0; i < 4; i++) rs.add(rd({ value: i }));
    expect(() => rs.flush()).not.toThrow();
    expect(rs.dropped).toBe(4);
    expect(rs.written).toBe(1);
  });

  it('a prune failure is logged, not thrown, and a later prune works again', async () => {
    const { db, rs } = mk(1);
    rs.add(rd({ ts: NOW - 5 * HOUR }));
    rs.flush();
    db.exec('ALTER TABLE block RENAME TO raw_moved');
    await expect(rs.prune(NOW)).resolves.toBeUndefined();
    expect(rs.pruned).toBe(0);
    db.exec('ALTER TABLE raw_moved RENAME TO block');
    await rs.prune(NOW);
    expect(rs.pruned).toBe(1);
  });

  it('past 100 000 buffered readings (no flush ran) the oldest are dropped and counted', () => {
    const { db, rs } = mk();
    for (let i = 0; i < 100_003; i++) rs.add(rd({ ts: NOW + i, value: i }));
    expect(rs.dropped).toBe(3);
    rs.flush();
    expect(rs.written).toBe(100_000);
    const values = all(db).map((r) => r.value!);
    expect({ lo: values.reduce((a, b) => Math.min(a, b)), hi: values.reduce((a, b) => Math.max(a, b)), n: values.length }).toEqual({ lo: 3, hi: 100_002, n: 100_000 });
  });

  it('a running store flushes early at 50 000 buffered readings instead of waiting the minute', async () => {
    const { db, rs } = mk();
    rs.start();
    for (let i = 0; i < 49_999; i++) rs.add(rd({ ts: NOW + i, value: i }));
    await new Promise((r) => setImmediate(r));
    expect(rs.written).toBe(0);
    rs.add(rd({ ts: NOW + 50_000, value: -1 }));
    await new Promise((r) => setImmediate(r));
    expect(rs.written).toBe(50_000);
    expect(rs.flushes).toBe(1);
    expect(rs.dropped).toBe(0);
    expect(all(db)).toHaveLength(50_000);
  });
  it('keeps no Reading object while it buffers (each can die young; issue 14)', async () => {
    const { db, rs } = mk();
    // Made and added in a plain function: a suspended async function may keep its last
    // local values alive in its saved registers.
    const addTwo = () =>
      [0, 1].map((i) => {
        const r = rd({ ts: NOW + i * 1000, value: 4.5 + i });
        rs.add(r);
        return new WeakRef(r);
      });
    for (const ref of addTwo()) expect(await collected(ref)).toBe(true);
    expect(rs.series('fridge-1', 'temperature', 0, NOW * 2).map((p) => p.value)).toEqual([4.5, 5.5]);
    rs.flush();
    expect(all(db).map((r) => r.value)).toEqual([4.5, 5.5]);
  });

  it('a series whose class is loosened loses its readings on disk and in memory; other series keep theirs', () => {
    const { db, rs } = mk();
    const pts = (privacy: 'public' | 'personal') => [
      { device: 'kiosk-1', point: 'systolic', privacy },
      { device: 'kiosk-1', point: 'pulse', privacy: 'personal' as const },
    ];
    expect(rs.reclassify(pts('personal'))).toEqual([]);
    rs.add(rd({ device: 'kiosk-1', point: 'systolic', ts: NOW, value: 120, privacy: 'personal' }));
    rs.add(rd({ device: 'kiosk-1', point: 'pulse', ts: NOW, value: 70, privacy: 'personal' }));
    rs.flush();
    rs.add(rd({ device: 'kiosk-1', point: 'systolic', ts: NOW + 1000, value: 121, privacy: 'personal' }));
    rs.add(rd({ device: 'kiosk-1', point: 'pulse', ts: NOW + 1000, value: 71, privacy: 'personal' }));
    rs.add(rd({ device: 'kiosk-1', point: 'systolic', ts: NOW + 2000, value: 122, privacy: 'personal' }));
    // Tightening again is no loosening: nothing goes.
    expect(rs.reclassify(pts('personal'))).toEqual([]);
    expect(rs.reclassify(pts('public'))).toEqual([{ device: 'kiosk-1', point: 'systolic', from: 'personal', to: 'public' }]);
    expect(rs.series('kiosk-1', 'systolic', 0, NOW * 2)).toEqual([]);
    expect(rs.series('kiosk-1', 'pulse', 0, NOW * 2).map((p) => p.value)).toEqual([70, 71]);
    // Readings taken as public from now on are kept, and the buffer still drops in arrival order.
    rs.add(rd({ device: 'kiosk-1', point: 'systolic', ts: NOW + 3000, value: 123 }));
    rs.flush();
    expect(all(db).map((r) => [r.point, r.value])).toEqual([
      ['pulse', 70],
      ['pulse', 71],
      ['systolic', 123],
    ]);
    expect(rs.written).toBe(4);
  });

  it('drops the oldest readings across series in the order they came, not per series', () => {
    const { db, rs } = mk();
    // Three series interleaved; the first three readings added are one of each.
    for (let i = 0; i < 100_005; i++) rs.add(rd({ point: `p${i % 3}`, ts: NOW + i, value: i }));
    expect(rs.dropped).toBe(5);
    rs.flush();
    const firsts = ['p0', 'p1', 'p2'].map((p) => rs.series('fridge-1', p, 0, NOW * 2)[0]!.value);
    expect(firsts).toEqual([6, 7, 5]);
    expect(all(db)).toHaveLength(100_000);
  });

  it('readings out of time order within one buffer are written and read back in time order, equal times in arrival order', () => {
    const { db, rs } = mk();
    for (const [dt, v] of [[2000, 1], [0, 2], [2000, 3], [1000, 4], [0, 5]] as const) rs.add(rd({ ts: NOW + dt, value: v }));
    const expected = [[0, 2], [0, 5], [1000, 4], [2000, 1], [2000, 3]];
    expect(rs.series('fridge-1', 'temperature', 0, NOW * 2).map((p) => [p.ts - NOW, p.value])).toEqual(expected);
    rs.flush();
    expect(all(db).map((r) => [r.ts - NOW, r.value])).toEqual(expected);
  });

  it('buffering leaves nothing per reading in the old generation (1,000 series, one reading each a round)', () => {
    const { rs } = mk();
    const n = 1000;
    const perRound = promotedPerRound((r) => {
      for (let i = 0; i < n; i++) rs.add(rd({ device: `d${i % 10}`, point: `p${i}`, ts: NOW + r * 1000, value: 4.5 + ((i + r) % 13) / 10 }));
    }, 10, 30, 5); // 80 rounds: 80,000 readings, under the buffer's cap (nothing flushes in between)
    expect(rs.dropped).toBe(0);
    // Every Reading (over 100 B with its value) before.
    expect(perRound / n).toBeLessThan(2);
  });
});
