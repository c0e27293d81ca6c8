// The durable outbox against a real SQLite file on disk: no mocks.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/store/database.js';
import { newCursor, Outbox, type OutboxBatch, type OutboxCap, type OutboxItem, type OutboxKind } from '../../src/store/outbox.js';
import { silentLogger } from '../../src/log.js';
import { tmpDir } from '../helpers/peers.js';

const BIG: OutboxCap = { maxRows: 1_000_000, maxBytes: 1_000_000_000 };

const open: Db[] = [];
afterEach(() => {
  for (const db of open.splice(0)) if (db.open) db.close();
});

function dbFile(): string {
  return path.join(tmpDir('cgw-outbox-'), 'gateway.db');
}

function openDb(file: string): Db {
  const db = openDatabase(file);
  open.push(db);
  return db;
}

function mk(file: string, cap: OutboxCap = BIG): { db: Db; ob: Outbox } {
  const db = openDb(file);
  const ob = new Outbox(db, cap, silentLogger());
  ob.start();
  return { db, ob };
}

function item(kind: OutboxKind, ts: number, extra: Record<string, unknown> = {}): OutboxItem {
  return { kind, ts, body: JSON.stringify({ kind, ts, ...extra }) };
}

/** A body of exactly `bytes` bytes. */
function sized(kind: OutboxKind, ts: number, bytes: number): OutboxItem {
  const head = JSON.stringify({ kind, ts, pad: '' });
  const body = JSON.stringify({ kind, ts, pad: 'x'.repeat(bytes - head.length) });
  expect(Buffer.byteLength(body)).toBe(bytes);
  return { kind, ts, body };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** The seqs a batch carries, read from its items; checked against its range and count. */
function seqsOf(b: OutboxBatch): number[] {
  const seqs = (JSON.parse(`[${b.items}]`) as { seq: number }[]).map((i) => i.seq);
  expect(b.count).toBe(seqs.length);
  expect(b.last).toBe(seqs.at(-1));
  expect(seqs[0]).toBeGreaterThan(b.after);
  return seqs;
}

function tableRows(db: Db): { seq: number; kind: string; ts: number; body: string; bytes: number }[] {
  return db.prepare('SELECT seq, kind, ts, body, bytes FROM outbox ORDER BY seq').all() as never;
}

describe('Outbox seq', () => {
  it('is monotonic and dense across appends', () => {
    const { ob } = mk(dbFile());
    expect(ob.append([item('agg', 1), item('agg', 2)])).toEqual([1, 2]);
    expect(ob.append([item('alarm', 3)])).toEqual([3]);
    expect(ob.append([item('inventory', 4), item('agg', 5), item('alarm', 6)])).toEqual([4, 5, 6]);
    expect(ob.append([])).toEqual([]);
    expect(ob.stats().lastSeq).toBe(6);
    expect(ob.stats().rows).toBe(6);
  });

  it('continues at lastSeq+1 after a reopen, even when every row was acked (AUTOINCREMENT)', async () => {
    const file = dbFile();
    const a = mk(file);
    const seqs = a.ob.append([item('agg', 1), item('agg', 2), item('alarm', 3)]);
    expect(seqs).toEqual([1, 2, 3]);
    a.ob.ackRange('agg', 0, 2);
    a.ob.ackRange('alarm', 0, 3);
    await tick();
    expect(a.ob.stats().rows).toBe(0);
    expect(tableRows(a.db)).toEqual([]);
    a.ob.stop();
    a.db.close();

    const b = mk(file);
    expect(b.ob.stats()).toMatchObject({ rows: 0, bytes: 0, lastSeq: 3, oldestTs: null });
    expect(b.ob.append([item('agg', 4)])).toEqual([4]);
    expect(b.ob.append([item('agg', 5), item('agg', 6)])).toEqual([5, 6]);
    expect(b.ob.stats().lastSeq).toBe(6);
    b.db.close();

    // A reopen with rows still pending counts them back.
    const c = mk(file);
    expect(c.ob.stats()).toMatchObject({ rows: 3, lastSeq: 6, oldestTs: 4 });
    expect(c.ob.append([item('alarm', 7)])).toEqual([7]);
  });
});

describe('Outbox next()', () => {
  it('returns alarms, then inventory, then agg; oldest first; one kind per batch', () => {
    const { ob } = mk(dbFile());
    // Interleaved on purpose: seq order is not priority order.
    ob.append([item('agg', 1), item('inventory', 2), item('alarm', 3), item('agg', 4), item('alarm', 5), item('inventory', 6)]);
    const cur = newCursor();
    const b1 = ob.next(cur, 100, 1_000_000)!;
    expect([b1.kind, seqsOf(b1)]).toEqual(['alarm', [3, 5]]);
    // The items as sent: each body with its seq spliced in first, in seq order.
    expect(JSON.parse(`[${b1.items}]`)).toEqual([{ seq: 3, kind: 'alarm', ts: 3 }, { seq: 5, kind: 'alarm', ts: 5 }]);
    expect(b1.bytes).toBe(Buffer.byteLength(b1.items));
    cur.alarm = 5;
    const b2 = ob.next(cur, 100, 1_000_000)!;
    expect([b2.kind, seqsOf(b2)]).toEqual(['inventory', [2, 6]]);
    cur.inventory = 6;
    const b3 = ob.next(cur, 100, 1_000_000)!;
    expect([b3.kind, seqsOf(b3)]).toEqual(['agg', [1, 4]]);
    expect(JSON.parse(`[${b3.items}]`).map((i: { seq: number }) => i.seq)).toEqual([1, 4]);
    cur.agg = 4;
    expect(ob.next(cur, 100, 1_000_000)).toBeNull();
  });

  it('skips rows at or below the cursor of their kind', () => {
    const { ob } = mk(dbFile());
    ob.append([item('agg', 1), item('agg', 2), item('agg', 3), item('alarm', 4)]);
    const cur = { alarm: 4, inventory: 0, agg: 2 };
    expect(seqsOf(ob.next(cur, 100, 1_000_000)!)).toEqual([3]);
    // A new alarm past the cursor overtakes the agg backlog again.
    ob.append([item('alarm', 5)]);
    expect(seqsOf(ob.next(cur, 100, 1_000_000)!)).toEqual([5]);
  });

  it('respects maxItems', () => {
    const { ob } = mk(dbFile());
    ob.append(Array.from({ length: 10 }, (_, i) => item('agg', i)));
    expect(seqsOf(ob.next(newCursor(), 3, 1_000_000)!)).toEqual([1, 2, 3]);
    expect(seqsOf(ob.next({ alarm: 0, inventory: 0, agg: 3 }, 4, 1_000_000)!)).toEqual([4, 5, 6, 7]);
  });

  it('respects maxBytes (24 bytes of framing per row) but returns at least one row', () => {
    const { ob } = mk(dbFile());
    ob.append([sized('agg', 1, 100), sized('agg', 2, 100), sized('agg', 3, 100), sized('agg', 4, 100)]);
    // 124 + 124 = 248 <= 300 < 372
    expect(seqsOf(ob.next(newCursor(), 100, 300)!)).toEqual([1, 2]);
    expect(seqsOf(ob.next(newCursor(), 100, 372)!)).toEqual([1, 2, 3]);
    // A single row bigger than maxBytes still goes out alone.
    expect(seqsOf(ob.next(newCursor(), 100, 10)!)).toEqual([1]);
    const big = ob.append([sized('alarm', 5, 5000)]);
    const batch = ob.next(newCursor(), 100, 1000)!;
    expect(seqsOf(batch)).toEqual(big);
    expect(batch.bytes).toBe(5000 + `"seq":${big[0]},`.length);
  });
});

describe('Outbox ackRange()', () => {
  it('deletes after the flush tick, and the stats follow', async () => {
    const { db, ob } = mk(dbFile());
    const a = sized('agg', 1000, 200);
    const b = sized('alarm', 2000, 300);
    const c = sized('inventory', 3000, 400);
    const seqs = ob.append([a, b, c]);
    expect(ob.stats()).toMatchObject({ rows: 3, bytes: 900, oldestTs: 1000, lastSeq: 3 });

    ob.ackRange('agg', 0, seqs[0]!);
    // Not yet: deletes are grouped per tick.
    expect(tableRows(db)).toHaveLength(3);
    expect(ob.stats().rows).toBe(3);
    await tick();
    expect(tableRows(db).map((r) => r.seq)).toEqual([2, 3]);
    expect(ob.stats()).toMatchObject({ rows: 2, bytes: 700, oldestTs: 2000 });

    ob.ackRange('inventory', 0, seqs[2]!);
    ob.ackRange('alarm', 0, seqs[1]!);
    await tick();
    expect(tableRows(db)).toEqual([]);
    expect(ob.stats()).toMatchObject({ rows: 0, bytes: 0, oldestTs: null, lastSeq: 3 });
  });

  it('acking an unknown, empty or already deleted range is harmless', async () => {
    const { db, ob } = mk(dbFile());
    const seqs = ob.append([sized('agg', 1, 100), sized('agg', 2, 150)]);
    ob.ackRange('agg', 0, seqs[0]!);
    await tick();
    ob.ackRange('agg', 0, seqs[0]!);
    ob.ackRange('agg', 900, 999);
    ob.ackRange('agg', seqs[1]!, seqs[0]!);
    ob.ackRange('alarm', 0, 999);
    await tick();
    expect(tableRows(db).map((r) => r.seq)).toEqual([2]);
    expect(ob.stats()).toMatchObject({ rows: 1, bytes: 150, oldestTs: 2 });
    // The same range twice in one tick counts once.
    ob.ackRange('agg', seqs[0]!, seqs[1]!);
    ob.ackRange('agg', seqs[0]!, seqs[1]!);
    await tick();
    expect(ob.stats()).toMatchObject({ rows: 0, bytes: 0, oldestTs: null });
    await tick();
    expect(ob.stats().rows).toBe(0);
  });

  it('stop() flushes pending acks at once', () => {
    const { db, ob } = mk(dbFile());
    const seqs = ob.append([item('agg', 1), item('agg', 2)]);
    ob.ackRange('agg', 0, seqs[1]!);
    ob.stop();
    expect(tableRows(db)).toEqual([]);
    expect(ob.stats().rows).toBe(0);
  });
});

describe('Outbox ackRange() with batches from next()', () => {
  it("deletes a batch's rows and only those: not other kinds inside its range, not rows appended after it", async () => {
    const { db, ob } = mk(dbFile());
    // Interleaved: the agg batch's range (0, 4] holds an alarm and an inventory row too.
    ob.append([sized('agg', 1, 100), sized('alarm', 2, 200), sized('inventory', 3, 300), sized('agg', 4, 400)]);
    const batch = ob.next({ alarm: 2, inventory: 3, agg: 0 }, 100, 1_000_000)!;
    expect([batch.kind, batch.after, batch.last, batch.count]).toEqual(['agg', 0, 4, 2]);
    ob.append([sized('agg', 5, 500)]);
    ob.ackRange(batch.kind, batch.after, batch.last);
    expect(tableRows(db)).toHaveLength(5); // grouped per tick, as ack()
    await tick();
    expect(tableRows(db).map((r) => [r.seq, r.kind])).toEqual([[2, 'alarm'], [3, 'inventory'], [5, 'agg']]);
    expect(ob.stats()).toMatchObject({ rows: 3, bytes: 1000, oldestTs: 2 });
    // Acknowledged again (a resend after a reconnect): nothing left to delete, totals unchanged.
    ob.ackRange('agg', 0, 4);
    ob.ackRange('alarm', 0, 2);
    await tick();
    expect(tableRows(db).map((r) => r.seq)).toEqual([3, 5]);
    expect(ob.stats()).toMatchObject({ rows: 2, bytes: 800 });
  });

  it('a batch partly shed before its acknowledgement: the rest is deleted and counted once', async () => {
    const { db, ob } = mk(dbFile(), { maxRows: 4, maxBytes: 1e9 });
    ob.append([1, 2, 3, 4].map((i) => sized('agg', i, 100)));
    const batch = ob.next(newCursor(), 100, 1_000_000)!;
    expect(batch.count).toBe(4);
    ob.append([sized('agg', 5, 100), sized('agg', 6, 100)]); // the cap sheds seqs 1 and 2
    expect(ob.stats()).toMatchObject({ rows: 4, shedRows: 2 });
    ob.ackRange(batch.kind, batch.after, batch.last);
    await tick();
    expect(tableRows(db).map((r) => r.seq)).toEqual([5, 6]);
    expect(ob.stats()).toMatchObject({ rows: 2, bytes: 200 });
    // The stored totals agree with the table after a reopen.
    db.close();
    const again = mk(db.name);
    expect(again.ob.stats()).toMatchObject({ rows: 2, bytes: 200 });
  });
});

describe('Outbox cap', () => {
  it('by rows: keeps every alarm and the newest aggs, counts what was shed; counters survive a reopen', () => {
    const file = dbFile();
    const { db, ob } = mk(file, { maxRows: 10, maxBytes: 1_000_000_000 });
    const aggs = Array.from({ length: 25 }, (_, i) => item('agg', 100 + i, { i, pad: 'p'.repeat(i) }));
    const alarms = Array.from({ length: 3 }, (_, i) => item('alarm', 200 + i, { a: i }));
    const aggSeqs = ob.append(aggs);
    const alarmSeqs = ob.append(alarms);
    expect(aggSeqs).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(alarmSeqs).toEqual([26, 27, 28]);

    const rows = tableRows(db);
    expect(rows.length).toBe(10);
    expect(rows.filter((r) => r.kind === 'alarm').map((r) => r.seq)).toEqual([26, 27, 28]);
    // The 7 newest aggs remain: seqs 19..25.
    expect(rows.filter((r) => r.kind === 'agg').map((r) => r.seq)).toEqual([19, 20, 21, 22, 23, 24, 25]);

    const shed = aggs.slice(0, 18);
    const shedBytes = shed.reduce((n, it) => n + Buffer.byteLength(it.body), 0);
    const keptBytes = rows.reduce((n, r) => n + r.bytes, 0);
    const st = ob.stats();
    expect(st).toMatchObject({ rows: 10, bytes: keptBytes, shedRows: 18, shedBytes, droppedRows: 0, lastSeq: 28, oldestTs: 100 + 18 });
    db.close();

    const again = mk(file, { maxRows: 10, maxBytes: 1_000_000_000 });
    expect(again.ob.stats()).toMatchObject({ rows: 10, bytes: keptBytes, shedRows: 18, shedBytes, lastSeq: 28 });
    // And they keep counting from there.
    again.ob.append([item('agg', 300)]);
    expect(again.ob.stats()).toMatchObject({ rows: 10, shedRows: 19, shedBytes: shedBytes + Buffer.byteLength(aggs[18]!.body) });
    expect(tableRows(again.db).filter((r) => r.kind === 'alarm')).toHaveLength(3);
  });

  it('by bytes: sheds the oldest non-alarm rows until bytes <= maxBytes', () => {
    const { db, ob } = mk(dbFile(), { maxRows: 1_000_000, maxBytes: 65536 });
    const alarm = ob.append([sized('alarm', 1, 4096)]);
    // 4096 * 16 = 65536: alarm + 15 aggs fit exactly.
    for (let i = 0; i < 15; i++) ob.append([sized('agg', 10 + i, 4096)]);
    expect(ob.stats()).toMatchObject({ rows: 16, bytes: 65536, shedRows: 0 });
    // 5 more, one at a time: each sheds exactly one old agg.
    for (let i = 0; i < 5; i++) ob.append([sized('agg', 100 + i, 4096)]);
    expect(ob.stats()).toMatchObject({ rows: 16, bytes: 65536, shedRows: 5, shedBytes: 5 * 4096 });
    // A batch of 4 at once: sheds 4, not a whole chunk.
    ob.append(Array.from({ length: 4 }, (_, i) => sized('agg', 200 + i, 4096)));
    const rows = tableRows(db);
    expect(ob.stats()).toMatchObject({ rows: 16, bytes: 65536, shedRows: 9, shedBytes: 9 * 4096 });
    expect(rows.reduce((n, r) => n + r.bytes, 0)).toBe(65536);
    expect(rows[0]!.seq).toBe(alarm[0]);
    // Oldest aggs went first: seqs 2..10 shed, 11.. kept.
    expect(rows.slice(1).map((r) => r.seq)).toEqual(Array.from({ length: 15 }, (_, i) => 11 + i));
    // Just over by one byte: one more row goes.
    ob.append([sized('agg', 300, 101)]);
    expect(ob.stats().bytes).toBeLessThanOrEqual(65536);
    expect(ob.stats()).toMatchObject({ rows: 16, bytes: 65536 - 4096 + 101, shedRows: 10 });
  });

  // Regression: over on rows and bytes at once, only as many rows as needed are shed.
  it('over on rows and bytes at once sheds only what is needed', () => {
    const { db, ob } = mk(dbFile(), { maxRows: 10, maxBytes: 5000 });
    ob.append(Array.from({ length: 20 }, (_, i) => sized('agg', i, 1000)));
    // Within both limits with the 5 newest rows kept (seqs 16..20).
    expect(tableRows(db).map((r) => r.seq)).toEqual([16, 17, 18, 19, 20]);
    expect(ob.stats()).toMatchObject({ rows: 5, bytes: 5000, shedRows: 15, shedBytes: 15000 });
  });

  it('when only alarms exceed the cap, the oldest alarms go', () => {
    const { db, ob } = mk(dbFile(), { maxRows: 3, maxBytes: 1_000_000 });
    ob.append([item('agg', 1)]);
    const seqs = ob.append([1, 2, 3, 4, 5].map((i) => item('alarm', 10 + i, { i })));
    expect(seqs).toEqual([2, 3, 4, 5, 6]);
    // The agg goes first, then the two oldest alarms.
    expect(tableRows(db).map((r) => [r.seq, r.kind])).toEqual([[4, 'alarm'], [5, 'alarm'], [6, 'alarm']]);
    expect(ob.stats()).toMatchObject({ rows: 3, shedRows: 3 });
    expect(JSON.parse(tableRows(db)[0]!.body)).toEqual({ kind: 'alarm', ts: 13, i: 3 });
  });

  it('by bytes, alarms only: the oldest alarms go', () => {
    const { db, ob } = mk(dbFile(), { maxRows: 1000, maxBytes: 3000 });
    for (let i = 0; i < 5; i++) ob.append([sized('alarm', i, 1000)]);
    expect(tableRows(db).map((r) => r.seq)).toEqual([3, 4, 5]);
    expect(ob.stats()).toMatchObject({ rows: 3, bytes: 3000, shedRows: 2, shedBytes: 2000 });
  });
});

describe('Outbox onAppend', () => {
  it('calls every listener once per append (not per item, not for nothing)', () => {
    const { ob } = mk(dbFile());
    let a = 0;
    let b = 0;
    ob.onAppend(() => a++);
    ob.onAppend(() => b++);
    ob.append([item('agg', 1), item('agg', 2), item('agg', 3)]);
    expect([a, b]).toEqual([1, 1]);
    ob.append([item('alarm', 4)]);
    expect([a, b]).toEqual([2, 2]);
    ob.append([]);
    expect([a, b]).toEqual([2, 2]);
  });
});

describe('Outbox on a full disk', () => {
  it('drops and counts instead of throwing; earlier rows intact; resumes without a seq gap', () => {
    const { db, ob } = mk(dbFile());
    let heard = 0;
    ob.onAppend(() => heard++);
    const first = [sized('agg', 1, 3000), sized('alarm', 2, 3000), sized('inventory', 3, 3000)];
    expect(ob.append(first)).toEqual([1, 2, 3]);
    heard = 0;

    const pages = db.pragma('page_count', { simple: true }) as number;
    // 16 KB of room, whatever the page size (1 KB since schema 3).
    db.pragma(`max_page_count = ${pages + 16384 / (db.pragma('page_size', { simple: true }) as number)}`);
    // Prove it is a real SQLITE_FULL from this database, not something else.
    let code: string | undefined;
    try {
      db.transaction(() => {
        db.prepare('INSERT INTO outbox (kind, priority, ts, body, bytes) VALUES (?, ?, ?, ?, ?)').run('agg', 2, 0, 'y'.repeat(40_000), 40_000);
      })();
    } catch (err) {
      code = (err as { code?: string }).code;
    }
    expect(code).toBe('SQLITE_FULL');

    const committed: number[] = [1, 2, 3];
    let dropped = 0;
    let failedAt = -1;
    for (let i = 0; i < 40; i++) {
      const seqs = ob.append([sized('agg', 100 + i, 3000), sized('agg', 100 + i, 3000)]);
      if (seqs.length === 0) {
        dropped += 2;
        failedAt = i;
        break;
      }
      committed.push(...seqs);
    }
    expect(failedAt).toBeGreaterThanOrEqual(0);
    // Not one more row fits (one bigger than the pair that did not): further appends drop too.
    expect(ob.append([sized('agg', 500, 7000)])).toEqual([]);
    dropped += 1;
    const st = ob.stats();
    expect(st.droppedRows).toBe(dropped);
    expect(st.rows).toBe(committed.length);
    expect(st.lastSeq).toBe(committed[committed.length - 1]);
    expect(heard).toBe((committed.length - 3) / 2);

    const rows = tableRows(db);
    expect(rows.map((r) => r.seq)).toEqual(committed);
    expect(rows.slice(0, 3).map((r) => r.body)).toEqual(first.map((f) => f.body));
    expect(st.bytes).toBe(rows.reduce((n, r) => n + r.bytes, 0));

    db.pragma('max_page_count = 1073741823');
    const last = committed[committed.length - 1]!;
    expect(ob.append([sized('alarm', 600, 3000)])).toEqual([last + 1]);
    expect(ob.append([item('agg', 601), item('agg', 602)])).toEqual([last + 2, last + 3]);
    expect(ob.stats()).toMatchObject({ rows: committed.length + 3, droppedRows: dropped, lastSeq: last + 3 });
    expect(tableRows(db).map((r) => r.seq)).toEqual([...committed, last + 1, last + 2, last + 3]);
  });

  it("items made as they are read (a window's): the retry after making room reads them again; a drop counts them all", () => {
    const { db, ob } = mk(dbFile());
    ob.append([item('agg', 1)]);
    let made = 0;
    // As WindowSink's: each iteration makes its items afresh, one at a time.
    const lazy = (n: number, bytes: number): Iterable<OutboxItem> => ({
      *[Symbol.iterator]() {
        for (let i = 0; i < n; i++) {
          made++;
          yield sized('agg', 10 + i, bytes);
        }
      },
    });
    const pages = db.pragma('page_count', { simple: true }) as number;
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages + 16384 / pageSize}`);
    // Room is made once: the retry must read the items again from the start.
    let asked = 0;
    ob.onDiskFull(() => {
      asked++;
      db.pragma('max_page_count = 1073741823');
      return 1;
    });
    const seqs = ob.append(lazy(20, 3000), { marks: { 'agg.closedUpTo': 60_000 } });
    expect(asked).toBe(1);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    expect(made).toBeGreaterThan(20); // a first pass that failed part-way, then all 20
    expect(ob.mark('agg.closedUpTo')).toBe(60_000);
    expect(tableRows(db).map((r) => r.ts)).toEqual([1, ...Array.from({ length: 20 }, (_, i) => 10 + i)]);

    // No room to be made: all 20 are dropped and counted, also those never read before the failure.
    ob.onDiskFull(() => 0);
    db.pragma(`max_page_count = ${(db.pragma('page_count', { simple: true }) as number) + 16384 / pageSize}`);
    expect(ob.append(lazy(20, 3000), { marks: { 'agg.closedUpTo': 120_000 } })).toEqual([]);
    expect(ob.stats()).toMatchObject({ rows: 21, droppedRows: 20 });
    expect(ob.mark('agg.closedUpTo')).toBe(60_000);
  });

  it('rethrows errors that are not a full disk, and the batch rolls back whole', () => {
    const { db, ob } = mk(dbFile());
    ob.append([item('agg', 1)]);
    // An unknown kind has no priority: NOT NULL constraint, not a full disk.
    const bad = { kind: 'bogus' as OutboxKind, ts: 3, body: '{}' };
    let code: string | undefined;
    try {
      ob.append([item('agg', 2), bad]);
    } catch (err) {
      code = (err as { code?: string }).code;
    }
    expect(code).toBe('SQLITE_CONSTRAINT_NOTNULL');
    expect(ob.stats()).toMatchObject({ rows: 1, droppedRows: 0, lastSeq: 1 });
    expect(tableRows(db).map((r) => r.seq)).toEqual([1]);
    expect(ob.append([item('agg', 4)])).toEqual([2]);
  });
});

describe('Outbox dropped counter', () => {
  // The count of dropped rows must reach the disk once there is room again, so a restart after
  // a full disk still reports the loss.
  it('droppedRows survives a reopen once the disk has room again', () => {
    const file = dbFile();
    const { db, ob } = mk(file);
    ob.append([sized('agg', 1, 3000)]);
    // Not one more page: every append fails with SQLITE_FULL.
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);
    let dropped = 0;
    for (let i = 0; i < 5; i++) {
      expect(ob.append([sized('agg', 10 + i, 3000)])).toEqual([]);
      dropped++;
    }
    expect(ob.stats().droppedRows).toBe(dropped);
    db.pragma('max_page_count = 1073741823');
    expect(ob.append([sized('agg', 20, 3000)])).toEqual([2]);
    expect(ob.stats().droppedRows).toBe(dropped);
    ob.stop();
    db.close();
    const again = mk(file);
    expect(again.ob.stats()).toMatchObject({ droppedRows: dropped, rows: 2, lastSeq: 2 });
  });
});

describe('Outbox marks (the aggregator\'s "sent up to")', () => {
  it('commit with the items they describe, survive a reopen, and are not written when the items are not', () => {
    const file = dbFile();
    const { db, ob } = mk(file);
    expect(ob.mark('agg.closedUpTo')).toBeUndefined();
    ob.append([item('agg', 1)], { marks: { 'agg.closedUpTo': 60_000 } });
    expect(ob.mark('agg.closedUpTo')).toBe(60_000);
    // An append that fails (a body SQLite refuses: NOT NULL) rolls its mark back too.
    expect(() => ob.append([item('agg', 2), { kind: 'agg', ts: 3, body: null as unknown as string }], { marks: { 'agg.closedUpTo': 120_000 } })).toThrow();
    expect(ob.mark('agg.closedUpTo')).toBe(60_000);
    db.close();
    const again = mk(file);
    expect(again.ob.mark('agg.closedUpTo')).toBe(60_000);
    expect(again.ob.stats().rows).toBe(1);
  });
});
