// The gateway's durable SQLite file (better-sqlite3 12): the outbox and the counters. The raw
// store has its own file (raw-database.ts), so that its minute blocks never share a commit,
// a WAL or a checkpoint with the outbox. synchronous=FULL makes a committed outbox row survive
// a power cut.
import Database from 'better-sqlite3';
import { preparePrivateDatabase } from './private-files.js';

export type Db = Database.Database;

// 3: the raw store moved to its own file (raw-database.ts); its old tables are dropped here.
const SCHEMA_VERSION = 3;

export function openDatabase(file: string, onWarning?: (message: string) => void): Db {
  preparePrivateDatabase(file, onWarning);
  const db = new Database(file);
  // 1 KB pages (SQLite's default is 4 KB): every commit rewrites the few pages it touches
  // (the table's last leaves, an index leaf, the counters row, page 1), and on an SD card
  // each of those costs its whole size. Only a new file can take it here; a schema-2 file is
  // converted by the migration below.
  const fresh = (db.pragma('page_count', { simple: true }) as number) === 0;
  if (fresh) db.pragma(`page_size = ${PAGE_SIZE}`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  migrate(db, onWarning);
  smallWal(db);
  db.pragma(`cache_size = ${CACHE_SIZE}`);
  // A busy reader (the platform CLI, a technician's sqlite3) must not fail our writes at once.
  db.pragma('busy_timeout = 2000');
  return db;
}

export const PAGE_SIZE = 1024;

/** SQLite's page cache per connection (both files), in KiB when negative. better-sqlite3
 * builds SQLite with 16 MB (SQLITE_DEFAULT_CACHE_SIZE=-16000), which filled as the files grew
 * and read like a leak in the soak; SQLite's own 2 MB filled too, in both files within a
 * minute at 10,000 points (each commit writes thousands of new pages), about 2.6 MB of malloc
 * each with the page headers. Every access here walks the right edge of a b-tree (appends,
 * the outbox's oldest rows, the newest raw blocks) or reads a range once: a few hundred pages
 * hold the interior pages those walks reuse, and the OS page cache has the rest
 * (docs/PERFORMANCE.md, issue 14). */
export const CACHE_SIZE = -256;

/** A small WAL, moved into the file every 256 KB and cut back to 512 KB after: SQLite's
 * default (1000 pages) lets the WAL alone fill a small partition, after which not even a
 * delete can run (docs/RELIABILITY.md, full disk). The limit is in bytes, whatever the
 * file's page size. */
export function smallWal(db: Db, bytes = 262_144): void {
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  db.pragma(`wal_autocheckpoint = ${Math.max(16, Math.floor(bytes / pageSize))}`);
  db.pragma('journal_size_limit = 524288');
}

function migrate(db: Db, onWarning?: (message: string) => void): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(`database schema ${version} is newer than this gateway (${SCHEMA_VERSION}); refusing to touch it`);
  }
  if (version === SCHEMA_VERSION) return;
  db.transaction(() => {
    db.exec(`
      -- seq: AUTOINCREMENT never reuses a value, even after every row is deleted, so the
      -- per-gateway sequence survives restarts and acknowledged (deleted) rows.
      CREATE TABLE IF NOT EXISTS outbox (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        kind     TEXT    NOT NULL,
        priority INTEGER NOT NULL,
        ts       INTEGER NOT NULL,
        body     TEXT    NOT NULL,
        bytes    INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS outbox_priority ON outbox (priority, seq);
      CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      -- Schema 1-2 kept raw readings here, a row each: dropped, not moved (a few hours of
      -- best-effort local diagnostics; docs/RELIABILITY.md). Their pages are reused by the outbox.
      DROP INDEX IF EXISTS raw_point_ts;
      DROP INDEX IF EXISTS raw_ts;
      DROP TABLE IF EXISTS raw;
      DROP TABLE IF EXISTS raw_class;
    `);
  })();
  db.pragma(`user_version = ${SCHEMA_VERSION}`);
  if (version > 0 && version < 3) compact(db, onWarning);
}

/** Once, from schema 2: gives the dropped raw tables' pages back to the file system and moves
 * the file to 1 KB pages. VACUUM needs room for a copy of what is left (the outbox); on a
 * full disk it fails, and the file keeps its pages and page size: nothing is lost. */
function compact(db: Db, onWarning?: (message: string) => void): void {
  try {
    db.pragma('journal_mode = DELETE');
    db.pragma(`page_size = ${PAGE_SIZE}`);
    db.exec('VACUUM');
  } catch (err) {
    onWarning?.(`database: could not compact after the schema-3 migration (${(err as Error).message}); continuing with the file as it is`);
  } finally {
    db.pragma('journal_mode = WAL');
  }
}

export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE' || code === 'SQLITE_IOERR';
}
