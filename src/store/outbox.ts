// The durable outbox: every uplink item is written here first, with a per-gateway monotonic
// seq, and deleted only when the platform broker has acknowledged it. SQLite is the single
// source of truth; the uplink keeps nothing but the seq ranges it has in flight.
// Cap: past maxRows or maxBytes the oldest non-alarm rows are shed (then the oldest alarms,
// only if nothing else is left), and every shed row is counted. A full disk drops the new
// rows (counted) instead of throwing into the polling path.
import type { Logger } from '../log.js';
import { isDiskFull, type Db } from './database.js';
import type { DiskReserve } from './disk-reserve.js';

export type OutboxKind = 'alarm' | 'inventory' | 'agg';

/** Send order: alarms first, then inventory, then aggregates; oldest first within each. */
export const PRIORITY: Record<OutboxKind, number> = { alarm: 0, inventory: 1, agg: 2 };
const KINDS_BY_PRIORITY: OutboxKind[] = ['alarm', 'inventory', 'agg'];

export interface OutboxItem {
  kind: OutboxKind;
  ts: number;
  /** The item as a JSON object without its seq; the seq is spliced in when sent. */
  body: string;
}

/** Rows of one kind to send in one message: those of `kind` with after < seq <= last (no
 * row can join that range later: seqs only grow). `items` is the JSON of the items, with their
 * seq, joined by commas: built by SQLite, so a batch costs one string, not one per row, and
 * no array of seqs (the drain's JS garbage is what its memory peak is made of). */
export interface OutboxBatch {
  kind: OutboxKind;
  after: number;
  last: number;
  count: number;
  bytes: number;
  items: string;
}

export interface OutboxStats {
  rows: number;
  bytes: number;
  oldestTs: number | null;
  lastSeq: number;
  shedRows: number;
  shedBytes: number;
  /** Rows that could not be written at all (disk full). */
  droppedRows: number;
}

export interface OutboxCap {
  maxRows: number;
  maxBytes: number;
}

type Cursor = Record<OutboxKind, number>;

export function newCursor(): Cursor {
  return { alarm: 0, inventory: 0, agg: 0 };
}

export class Outbox {
  private rows = 0;
  private bytes = 0;
  private lastSeqValue = 0;
  private counters = { shed_rows: 0, shed_bytes: 0, dropped_rows: 0 };
  private readonly listeners: (() => void)[] = [];
  /** Acknowledged batches, three numbers each: priority, after, last. */
  private pendingRanges: number[] = [];
  private ackScheduled = false;
  private lastFullLog = 0;
  private readonly st;

  constructor(
    private readonly db: Db,
    private readonly cap: OutboxCap,
    private readonly log: Logger,
  ) {
    this.st = {
      insert: db.prepare('INSERT INTO outbox (kind, priority, ts, body, bytes) VALUES (?, ?, ?, ?, ?)'),
      next: db.prepare('SELECT bytes FROM outbox WHERE priority = ? AND seq > ? ORDER BY seq LIMIT ?').pluck(),
      items: db
        .prepare(`SELECT group_concat('{"seq":' || seq || ',' || substr(body, 2), ',' ORDER BY seq), max(seq) FROM (SELECT seq, body FROM outbox WHERE priority = ? AND seq > ? ORDER BY seq LIMIT ?)`)
        .raw(),
      rangeTotals: db.prepare('SELECT count(*), coalesce(sum(bytes), 0) FROM outbox WHERE priority = ? AND seq > ? AND seq <= ?').raw(),
      delRange: db.prepare('DELETE FROM outbox WHERE priority = ? AND seq > ? AND seq <= ?'),
      oldestShed: db.prepare('SELECT seq, bytes FROM outbox WHERE priority > 0 ORDER BY seq LIMIT ?'),
      oldestAny: db.prepare('SELECT seq, bytes FROM outbox ORDER BY seq LIMIT ?'),
      delUpTo: db.prepare('DELETE FROM outbox WHERE seq <= ? AND priority >= ?'),
      counter: db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value'),
      oldestTs: db.prepare('SELECT ts FROM outbox ORDER BY seq LIMIT 1'),
    };
  }

  /** Reads the totals; the backlog itself stays on disk. */
  /** The totals live in the counters table, updated in the same transactions as the rows, so
   * a start with a million-row backlog reads two numbers instead of scanning the table. */
  start(): void {
    const s = this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number } | undefined;
    this.lastSeqValue = s?.seq ?? 0;
    this.loadCounters();
  }

  private loadCounters(): void {
    const stored = new Map((this.db.prepare('SELECT name, value FROM counters').all() as { name: string; value: number }[]).map((r) => [r.name, r.value]));
    for (const k of Object.keys(this.counters) as (keyof typeof this.counters)[]) this.counters[k] = stored.get(k) ?? 0;
    if (stored.has('rows') && stored.has('bytes')) {
      this.rows = stored.get('rows')!;
      this.bytes = stored.get('bytes')!;
    } else {
      const t = this.db.prepare('SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM outbox').get() as { n: number; b: number };
      this.rows = t.n;
      this.bytes = t.b;
      this.persistTotals();
    }
  }

  private persistTotals(): void {
    this.st.counter.run('rows', this.rows);
    this.st.counter.run('bytes', this.bytes);
  }

  stop(): void {
    this.flushAcks();
  }

  /** Called after rows are appended (the uplink wakes up). */
  onAppend(cb: () => void): void {
    this.listeners.push(cb);
  }

  /** Called when the disk is full, before rows are dropped: frees space elsewhere in the
   * file (the raw store gives up its oldest readings) and says how many rows it freed. */
  private makeRoom: (() => number) | null = null;

  onDiskFull(makeRoom: () => number): void {
    this.makeRoom = makeRoom;
  }

  /** Copies the WAL into the database file and truncates it (frees disk when the WAL has
   * grown); false if that could not complete (no room for the file to grow, a reader). */
  private checkpoint(): boolean {
    try {
      const r = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
      const ok = r[0]?.busy === 0;
      if (ok) this.reserve?.ensure();
      return ok;
    } catch {
      return false;
    }
  }

  /** Ballast released on a full disk so that deletes (acks, making room) can still run. */
  private reserve: DiskReserve | null = null;

  useReserve(reserve: DiskReserve): void {
    this.reserve = reserve;
    reserve.ensure();
  }

  /** A mark written by append() (see its `marks`), or undefined. */
  mark(name: string): number | undefined {
    return (this.db.prepare('SELECT value FROM counters WHERE name = ?').pluck().get(name) as number | undefined) ?? undefined;
  }

  /** Appends items in one transaction. Returns their seqs, or [] if nothing could be written.
   * The items are read one at a time and each is inserted before the next is asked for, so a
   * window's 10,000 items never exist at once (WindowSink); a retry reads them again, so an
   * iterable that is not an array must make a fresh iterator each time.
   * Disk-full policy: first the raw store makes room (local diagnostics go before data owed
   * to the platform) and the append is tried once more; only then are the items dropped,
   * counted in dropped_rows (persisted, shown in the status message and the metrics). */
  append(items: Iterable<OutboxItem>, opts: { retry?: boolean; marks?: Record<string, number> } = {}): number[] {
    const retry = opts.retry ?? true;
    let seqs: number[] = [];
    try {
      seqs = this.db.transaction(() => {
        // Marks (the aggregator's "sent up to") commit with the items they describe, so a
        // crash can neither lose the mark of a committed window nor keep one without it.
        const out: number[] = [];
        for (const it of items) {
          const bytes = Buffer.byteLength(it.body);
          const r = this.st.insert.run(it.kind, PRIORITY[it.kind], it.ts, it.body, bytes);
          out.push(Number(r.lastInsertRowid));
          this.rows++;
          this.bytes += bytes;
        }
        if (out.length === 0) return out;
        for (const [name, value] of Object.entries(opts.marks ?? {})) this.st.counter.run(name, value);
        this.enforceCap();
        this.persistTotals();
        return out;
      })();
    } catch (err) {
      // The transaction rolled back: reload the totals rather than guess what was applied.
      this.resync();
      if (!isDiskFull(err)) throw err;
      // Room from the raw store, or from moving the WAL into the file and truncating it. The
      // ballast is not touched here: it is kept for the deletes that follow acknowledgements.
      if (retry && ((this.makeRoom?.() ?? 0) > 0 || this.checkpoint())) return this.append(items, { ...opts, retry: false });
      for (const _ of items) this.counters.dropped_rows++;
      const now = Date.now();
      if (now - this.lastFullLog > 60_000) {
        this.lastFullLog = now;
        this.log.error({ err: (err as Error).message, dropped: this.counters.dropped_rows }, 'disk full: outbox rows dropped; lower storage.outbox.maxBytes below the free space');
      }
      this.tryPersistCounters();
      return [];
    }
    if (seqs.length === 0) return seqs;
    this.lastSeqValue = Math.max(this.lastSeqValue, seqs[seqs.length - 1]!);
    for (const cb of this.listeners) cb();
    return seqs;
  }

  /** The next rows to send after `cursor`: the first kind (by priority) that has any, oldest
   * first, one kind per batch, at most maxItems and maxBytes (but always at least one row). */
  next(cursor: Cursor, maxItems: number, maxBytes: number): OutboxBatch | null {
    for (const kind of KINDS_BY_PRIORITY) {
      const priority = PRIORITY[kind];
      const after = cursor[kind];
      let count = 0;
      let size = 0;
      // iterate() stops reading at the size limit: a batch never loads rows it will not send;
      // one number per row, no row arrays.
      for (const bytes of this.st.next.iterate(priority, after, maxItems) as IterableIterator<number>) {
        if (count > 0 && size + bytes + 24 > maxBytes) break;
        count++;
        size += bytes + 24; // room for "seq" and separators
      }
      if (count === 0) continue;
      const [items, last] = this.st.items.get(priority, after, count) as [string, number];
      return { kind, after, last, count, bytes: Buffer.byteLength(items), items };
    }
    return null;
  }

  /** A batch from next() acknowledged by the broker: deletes its rows, those of `kind` with
   * after < seq <= last (rows shed meanwhile are simply not there any more). Deletes are
   * grouped into one transaction per tick; a crash before it commits only means a duplicate
   * the platform drops by seq. */
  ackRange(kind: OutboxKind, after: number, last: number): void {
    this.pendingRanges.push(PRIORITY[kind], after, last);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (!this.ackScheduled) {
      this.ackScheduled = true;
      setImmediate(() => this.flushAcks());
    }
  }

  private flushAcks(retry = true): void {
    this.ackScheduled = false;
    if (this.pendingRanges.length === 0) return;
    const ranges = this.pendingRanges;
    this.pendingRanges = [];
    try {
      this.db.transaction(() => {
        for (let i = 0; i < ranges.length; i += 3) {
          const [n, b] = this.st.rangeTotals.get(ranges[i], ranges[i + 1], ranges[i + 2]) as [number, number];
          if (n === 0) continue;
          this.st.delRange.run(ranges[i], ranges[i + 1], ranges[i + 2]);
          this.rows -= n;
          this.bytes -= b;
        }
        this.persistTotals();
      })();
      // Deleting freed pages: if the disk-full ballast was given up, take it back.
      this.reserve?.ensure();
    } catch (err) {
      this.resync();
      if (retry && isDiskFull(err)) {
        // A full disk: give up the ballast, let the WAL move into the file and shrink, retry.
        const released = this.reserve?.release() ?? false;
        const checkpointed = this.checkpoint();
        if (released || checkpointed) {
          this.log.warn({ released, checkpointed }, 'disk full: ballast released and WAL checkpointed so acknowledged rows can be deleted');
          this.pendingRanges = ranges.concat(this.pendingRanges);
          return this.flushAcks(false);
        }
      }
      // Not deleted now: those rows are sent again later and dropped by seq at the platform.
      this.log.warn({ err: (err as Error).message, batches: ranges.length / 3 }, 'outbox: could not delete acknowledged rows');
    }
  }

  stats(): OutboxStats {
    const oldest = this.rows > 0 ? ((this.st.oldestTs.get() as { ts: number } | undefined)?.ts ?? null) : null;
    return {
      rows: this.rows,
      bytes: this.bytes,
      oldestTs: oldest,
      lastSeq: this.lastSeqValue,
      shedRows: this.counters.shed_rows,
      shedBytes: this.counters.shed_bytes,
      droppedRows: this.counters.dropped_rows,
    };
  }

  /** Inside the append transaction: shed the oldest non-alarm rows, just enough to be within
   * both limits; only if nothing else is left, the oldest alarms. */
  private enforceCap(): void {
    for (const minPriority of [1, 0]) {
      while (this.rows > this.cap.maxRows || this.bytes > this.cap.maxBytes) {
        const overRows = Math.max(0, this.rows - this.cap.maxRows);
        const want = Math.max(overRows, 256);
        const victims = (minPriority > 0 ? this.st.oldestShed : this.st.oldestAny).all(want) as { seq: number; bytes: number }[];
        if (victims.length === 0) break;
        let take = 0;
        let freed = 0;
        while (take < victims.length && (take < overRows || this.bytes - freed > this.cap.maxBytes)) freed += victims[take++]!.bytes;
        this.st.delUpTo.run(victims[take - 1]!.seq, minPriority);
        this.rows -= take;
        this.bytes -= freed;
        this.counters.shed_rows += take;
        this.counters.shed_bytes += freed;
      }
    }
    this.st.counter.run('shed_rows', this.counters.shed_rows);
    this.st.counter.run('shed_bytes', this.counters.shed_bytes);
  }

  /** After a rolled-back transaction: the stored totals are as consistent as the rows. */
  private resync(): void {
    const dropped = this.counters.dropped_rows;
    try {
      this.loadCounters();
    } catch {
      /* keep the last known totals */
    }
    this.counters.dropped_rows = Math.max(dropped, this.counters.dropped_rows);
  }

  private tryPersistCounters(): void {
    try {
      this.st.counter.run('dropped_rows', this.counters.dropped_rows);
    } catch {
      /* the disk is full; the count lives in memory until it is not */
    }
  }
}
