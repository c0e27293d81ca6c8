// The raw store's own SQLite file, beside the outbox's (gateway.db -> gateway-raw.db) in the
// same private state folder. Raw readings are best effort, so it trades durability for
// SD-card wear: synchronous=NORMAL (a power cut may lose the last commits, never corrupt the
// file), one commit a minute, and rows keyed so that each commit appends at the end of the
// table (docs/RELIABILITY.md, "Raw store").
import Database from 'better-sqlite3';
import { preparePrivateDatabase } from './private-files.js';
import { CACHE_SIZE, PAGE_SIZE, smallWal, type Db } from './database.js';

const SCHEMA_VERSION = 1;

/** gateway.db -> gateway-raw.db; any other name gets "-raw.db" appended. */
export function rawDatabasePath(file: string): string {
  if (file === ':memory:') return file;
  return file.endsWith('.db') ? `${file.slice(0, -3)}-raw.db` : `${file}-raw.db`;
}

export function openRawDatabase(file: string, onWarning?: (message: string) => void): Db {
  preparePrivateDatabase(file, onWarning);
  const db = new Database(file);
  // Must precede the first table: lets makeRoom() give pages back to the file system (a full
  // disk is shared with the outbox's file, which cannot use pages freed inside this one).
  // 1 KB pages, as the outbox's file: a flush's partly filled last leaf is rewritten whole.
  if ((db.pragma('page_count', { simple: true }) as number) === 0) {
    db.pragma(`page_size = ${PAGE_SIZE}`);
    db.pragma('auto_vacuum = INCREMENTAL');
  }
  // Exclusive: the WAL index lives in the process's memory instead of a -shm file beside the
  // database, whose mapped pages the kernel writes back (and so wears the card) every time a
  // commit touches them. No other process reads this file while the gateway runs.
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  // Same small-WAL rule as the outbox's file (256 KB). A 64 KB WAL was tried: the full-disk
  // fault with a raw store then failed (no eviction within 240 s; not understood yet).
  smallWal(db);
  db.pragma(`cache_size = ${CACHE_SIZE}`);
  db.pragma('busy_timeout = 2000');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(`raw database schema ${version} is newer than this gateway (${SCHEMA_VERSION}); refusing to touch it`);
  }
  if (version === SCHEMA_VERSION) return;
  db.exec(`
    -- One row per (device, point); privacy: the class its readings are stored under
    -- (RawStore.reclassify), NULL until the first reclassify.
    CREATE TABLE IF NOT EXISTS series (
      id      INTEGER PRIMARY KEY,
      device  TEXT NOT NULL,
      point   TEXT NOT NULL,
      privacy TEXT,
      UNIQUE (device, point)
    );
    -- One row per flush (a sequence number, not a time: a clock step back cannot collide),
    -- with the time span of the readings it wrote: what a query or the pruner looks up.
    CREATE TABLE IF NOT EXISTS flush (
      f  INTEGER PRIMARY KEY,
      t0 INTEGER NOT NULL,
      t1 INTEGER NOT NULL
    );
    -- One row per series per flush (more only if its readings span over 10 minutes):
    -- k = f * 2^26 + series * 64 + part, so a flush's rows, written in k order, append to the
    -- end of the table, and one series in one flush is a range lookup: no secondary index,
    -- whose leaves (one per series) every flush would rewrite.
    CREATE TABLE IF NOT EXISTS block (
      k    INTEGER PRIMARY KEY,
      t0   INTEGER NOT NULL,
      t1   INTEGER NOT NULL,
      n    INTEGER NOT NULL,
      data BLOB    NOT NULL
    );
  `);
  db.pragma(`user_version = ${SCHEMA_VERSION}`);
}
