import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/database.js';
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
    expect(p('wal_autocheckpoint')).toBe(64);
    expect(p('journal_size_limit')).toBe(524288);
    // Not better-sqlite3's 16 MB: that cache filled slowly and looked like a leak in the soak.
    expect(p('cache_size')).toBe(-2000);
    expect(p('busy_timeout')).toBe(2000);
  });
});
