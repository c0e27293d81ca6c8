import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { openDatabase } from '../../src/store/database.js';
import { openRawDatabase, rawDatabasePath } from '../../src/store/raw-database.js';
import { tmpDir } from '../helpers/peers.js';

const open: { close(): void }[] = [];
afterEach(() => {
  for (const d of open.splice(0)) d.close();
});

describe('openDatabase', () => {
  it('opens a durable WAL database with a small WAL and a bounded page cache', () => {
    const file = path.join(tmpDir('cgw-db-'), 'sub', 'gateway.db');
    const db = openDatabase(file);
    open.push(db);
    expect(fs.existsSync(file)).toBe(true);
    const p = (name: string) => db.pragma(name, { simple: true });
    expect(p('journal_mode')).toBe('wal');
    expect(p('synchronous')).toBe(2); // FULL
    // 1 KB pages; the WAL is checkpointed every 256 KB (256 pages) as before (64 of 4 KB).
    expect(p('page_size')).toBe(1024);
    expect(p('wal_autocheckpoint')).toBe(256);
    expect(p('journal_size_limit')).toBe(524288);
    // 256 KiB: not better-sqlite3's 16 MB (filled slowly, looked like a leak in the soak), nor
    // SQLite's 2 MB (full within a minute at 10,000 points: ~2.6 MB of malloc per file).
    expect(p('cache_size')).toBe(-256);
    expect(p('busy_timeout')).toBe(2000);
  });

  it('migrates a schema-2 file: the outbox and counters stay, the old raw tables go', () => {
    const file = path.join(tmpDir('cgw-db-'), 'gateway.db');
    const old = new Database(file);
    old.exec(`
      CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, priority INTEGER NOT NULL, ts INTEGER NOT NULL, body TEXT NOT NULL, bytes INTEGER NOT NULL);
      CREATE INDEX outbox_priority ON outbox (priority, seq);
      CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE raw (device TEXT NOT NULL, point TEXT NOT NULL, ts INTEGER NOT NULL, value REAL, quality TEXT NOT NULL);
      CREATE INDEX raw_point_ts ON raw (device, point, ts);
      CREATE INDEX raw_ts ON raw (ts);
      CREATE TABLE raw_class (device TEXT NOT NULL, point TEXT NOT NULL, privacy TEXT NOT NULL, PRIMARY KEY (device, point)) WITHOUT ROWID;
      INSERT INTO outbox (kind, priority, ts, body, bytes) VALUES ('agg', 2, 1, '{"a":1}', 7);
      INSERT INTO counters VALUES ('rows', 1), ('gpio.count.turnstile', 42);
      INSERT INTO raw VALUES ('fridge-1', 't', 1, 4.5, 'good');
      INSERT INTO raw_class VALUES ('fridge-1', 't', 'personal');
      PRAGMA user_version = 2;
    `);
    old.close();
    const db = openDatabase(file);
    open.push(db);
    expect(db.pragma('user_version', { simple: true })).toBe(3);
    // Compacted once: the raw pages are given back and the file moved to 1 KB pages.
    expect(db.pragma('page_size', { simple: true })).toBe(1024);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[]);
    expect(tables).toEqual(['counters', 'outbox', 'outbox_priority']);
    expect(db.prepare('SELECT seq, body FROM outbox').all()).toEqual([{ seq: 1, body: '{"a":1}' }]);
    expect(db.prepare("SELECT value FROM counters WHERE name = 'gpio.count.turnstile'").pluck().get()).toBe(42);
  });

  it('refuses a file from a newer gateway', () => {
    const file = path.join(tmpDir('cgw-db-'), 'gateway.db');
    const db = new Database(file);
    db.pragma('user_version = 9');
    db.close();
    expect(() => openDatabase(file)).toThrow(/newer than this gateway/);
  });
});

describe('openRawDatabase', () => {
  it('lives beside the outbox file, relaxed durability, pages it can give back', () => {
    expect(rawDatabasePath('/var/lib/cg/gateway.db')).toBe('/var/lib/cg/gateway-raw.db');
    expect(rawDatabasePath('/var/lib/cg/state')).toBe('/var/lib/cg/state-raw.db');
    expect(rawDatabasePath(':memory:')).toBe(':memory:');
    const file = rawDatabasePath(path.join(tmpDir('cgw-db-'), 'gateway.db'));
    const db = openRawDatabase(file);
    open.push(db);
    const p = (name: string) => db.pragma(name, { simple: true });
    expect(p('journal_mode')).toBe('wal');
    expect(p('synchronous')).toBe(1); // NORMAL: best effort, never corrupt
    expect(p('locking_mode')).toBe('exclusive'); // no -shm file to write back
    db.prepare('CREATE TABLE t (x)').run();
    expect(fs.existsSync(`${file}-shm`)).toBe(false);
    expect(p('auto_vacuum')).toBe(2); // INCREMENTAL: makeRoom() shrinks the file
    expect(p('page_size')).toBe(1024);
    expect(p('wal_autocheckpoint')).toBe(256);
    expect(fs.statSync(file).mode & 0o077).toBe(0);
  });
});

describe('openRawDatabase', () => {
  it('has the same bounded page cache as the outbox\'s file (256 KiB)', () => {
    const db = openRawDatabase(rawDatabasePath(path.join(tmpDir('cgw-db-'), 'gateway.db')));
    open.push(db);
    expect(db.pragma('cache_size', { simple: true })).toBe(-256);
  });
});
