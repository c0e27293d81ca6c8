// Raw readings kept for a few hours for the local charts and for diagnosis. Never uplinked.
// Best effort, and shaped by the SD card it lives on (docs/RELIABILITY.md, "Raw store"):
// readings are held in memory (raw-buffer.ts: typed arrays, not the Reading objects) and written once a minute, one compact block per series (raw-codec.ts) in the raw store's own file (raw-database.ts), each flush appending at the
// end of the table. Queries merge what is on disk with what is still in memory. Pruned in the
// background in small chunks. Identifier points are never stored in clear.
import type { Logger } from '../log.js';
import { seriesKey, type Reading } from '../types.js';
import { loosens, type PrivacyClass } from '../config/profile-schema.js';
import fs from 'node:fs';
import path from 'node:path';
import { isDiskFull, type Db } from './database.js';
import { decodeBlock, encodeColumns, type RawPoint } from './raw-codec.js';
import { RawBuffer } from './raw-buffer.js';

/** How long readings wait in memory: what a power cut may lose (at most this much). Each
 * flush costs a few pages whatever it holds (page 1, the tree's right edge, the partly
 * filled last leaf, the WAL's last 4 KB). Two minutes saved about 2 B/reading on the demo
 * site but left a 1 MB partition filled by the outbox before the raw store had anything on
 * disk to give up (test/faults/disk-full.test.ts failed): one minute. */
export const RAW_FLUSH_MS = 60_000;
const PRUNE_EVERY_MS = 10 * 60_000;
const SPACE_CHECK_MS = 5000;
/** Flushes pruned per transaction (each is about one minute of readings). */
const PRUNE_CHUNK = 20;
/** Readings given up per attempt when the disk is full (at least one flush). */
const MAKE_ROOM_READINGS = 5000;
/** A running store flushes early once this many readings wait (a large site: 10,000 points
 * every 10 s fill it in 50 s), so that the buffer, not the minute, bounds the memory. */
const FLUSH_EARLY = 50_000;
/** Readings held in memory at most (flushes failing); past it the oldest are dropped (counted). */
const MAX_BUFFER = 100_000;
/** A series' readings in one flush spanning longer than this (only after a clock step, or in
 * a test) are split into blocks, so that pruning by time stays fine-grained. */
const BLOCK_SPAN_MS = 10 * 60_000;
const PARTS = 64;
const SERIES_LIMIT = 2 ** 20;
/** k = f * FLUSH_KEY + series * PARTS + part (raw-database.ts). */
const FLUSH_KEY = 2 ** 26;

export interface RawStoreOptions {
  flushMs?: number;
}

export class RawStore {
  private buffer = new RawBuffer();
  private flushTimer: NodeJS.Timeout | null = null;
  private pruneTimer: NodeJS.Timeout | null = null;
  private spaceTimer: NodeJS.Timeout | null = null;
  private pruning = false;
  private earlyFlush = false;
  written = 0;
  dropped = 0;
  pruned = 0;
  /** Oldest readings given up to make room on a full disk. */
  evicted = 0;
  /** Flushes committed to disk (one commit each). */
  flushes = 0;
  private readonly st;
  private ids = new Map<string, number>();
  private nextFlush = 1;
  private readonly flushMs: number;

  /** `db`: the raw store's own file (openRawDatabase), or null when nothing is kept. */
  constructor(
    private readonly db: Db | null,
    private readonly retentionHours: number,
    private readonly log: Logger,
    opts: RawStoreOptions = {},
  ) {
    this.flushMs = opts.flushMs ?? RAW_FLUSH_MS;
    if (!db) {
      this.st = null;
      return;
    }
    this.st = {
      seriesId: db.prepare('INSERT INTO series (device, point) VALUES (?, ?) ON CONFLICT (device, point) DO UPDATE SET device = device RETURNING id').pluck(),
      insert: db.prepare('INSERT INTO block (k, t0, t1, n, data) VALUES (?, ?, ?, ?, ?)'),
      flushRow: db.prepare('INSERT INTO flush (f, t0, t1) VALUES (?, ?, ?)'),
      flushesIn: db.prepare('SELECT f FROM flush WHERE t1 >= ? AND t0 <= ? ORDER BY f').pluck(),
      blocksOf: db.prepare('SELECT t0, data FROM block WHERE k BETWEEN ? AND ? AND t1 >= ? AND t0 <= ? ORDER BY k'),
      allFlushes: db.prepare('SELECT f FROM flush ORDER BY f').pluck(),
      oldFlushes: db.prepare('SELECT f FROM flush WHERE t0 < ? ORDER BY f LIMIT ?').pluck(),
      oldestFlushes: db.prepare('SELECT f FROM flush ORDER BY f LIMIT ?').pluck(),
      delOld: db.prepare('DELETE FROM block WHERE k >= ? AND k < ? AND t1 < ? RETURNING n').pluck(),
      delRange: db.prepare('DELETE FROM block WHERE k >= ? AND k <= ? RETURNING n').pluck(),
      left: db.prepare('SELECT min(t0) FROM block WHERE k >= ? AND k < ?').pluck(),
      setT0: db.prepare('UPDATE flush SET t0 = ? WHERE f = ?'),
      delFlush: db.prepare('DELETE FROM flush WHERE f = ?'),
    };
    this.loadIds();
    const last = db.prepare('SELECT max((SELECT coalesce(max(f), 0) FROM flush), (SELECT coalesce(max(k), 0) FROM block) / ?)').pluck().get(FLUSH_KEY) as number;
    this.nextFlush = Math.floor(last) + 1;
  }

  private loadIds(): void {
    this.ids = new Map((this.db!.prepare('SELECT id, device, point FROM series').all() as { id: number; device: string; point: string }[]).map((r) => [key(r.device, r.point), r.id]));
  }

  private get enabled(): boolean {
    return this.retentionHours > 0 && this.db !== null;
  }

  start(): void {
    if (!this.enabled) return;
    this.flushTimer = setInterval(() => this.flush(), this.flushMs);
    this.pruneTimer = setInterval(() => void this.prune(), PRUNE_EVERY_MS);
    // Free space is checked between flushes too: the outbox may fill the partition within a
    // minute, and an eviction must run while there is still room to write the delete.
    this.spaceTimer = setInterval(() => {
      if (this.belowLowWater()) this.makeRoom();
    }, SPACE_CHECK_MS);
    this.flushTimer.unref?.();
    this.pruneTimer.unref?.();
    this.spaceTimer.unref?.();
    void this.prune();
  }

  stop(): void {
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    if (this.spaceTimer) clearInterval(this.spaceTimer);
    this.flushTimer = this.pruneTimer = this.spaceTimer = null;
    this.flush();
  }

  add(r: Reading): void {
    if (!this.enabled || r.privacy === 'identifier') return;
    if (this.buffer.size >= MAX_BUFFER) {
      this.buffer.dropOldest();
      this.dropped++;
    }
    this.buffer.add(r.device, r.point, r.ts, numeric(r.value), r.quality);
    if (this.buffer.size >= FLUSH_EARLY && this.flushTimer && !this.earlyFlush) {
      this.earlyFlush = true;
      setImmediate(() => {
        this.earlyFlush = false;
        this.flush();
      });
    }
  }

  /** Disk full: gives up the oldest flushes (about MAKE_ROOM_READINGS readings) and hands
   * their pages back to the file system, so that the outbox, and then new readings, can be
   * written. Returns the readings freed (0 if even the delete failed). */
  makeRoom(): number {
    if (!this.st) return 0;
    let n = 0;
    try {
      this.db!.transaction(() => {
        for (const f of this.st!.oldestFlushes.all(1000) as number[]) {
          n += sum(this.st!.delRange.all(f * FLUSH_KEY, (f + 1) * FLUSH_KEY - 1) as number[]);
          this.st!.delFlush.run(f);
          if (n >= MAKE_ROOM_READINGS) break;
        }
      })();
    } catch {
      // Not even the delete could be written: at least move the WAL into the file and cut it.
      this.shrink();
      return 0;
    }
    this.evicted += n;
    if (n > 0) this.shrink();
    return n;
  }

  /** The freed pages go back to the file system only once the file is truncated: move the
   * free pages to the end, then checkpoint and cut the WAL. */
  private shrink(): void {
    try {
      this.db!.pragma('incremental_vacuum');
      this.db!.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      /* the pages stay free inside the file: new raw blocks reuse them */
    }
  }

  /** Keeps this much of the storage partition free by evicting the oldest raw readings, so
   * that local diagnostics never take the room the outbox needs: min(8 MB, a quarter of the
   * partition). Null when there is no file to measure (":memory:"). */
  private lowWater: number | null = null;
  private dir: string | null = null;

  /** Watches the free space of the partition holding `file` (statfs each flush: cheap). */
  watchSpace(file: string): void {
    try {
      this.dir = path.dirname(path.resolve(file));
      const st = fs.statfsSync(this.dir);
      this.lowWater = Math.min(8 * 1024 * 1024, Math.floor((st.blocks * st.bsize) / 4));
    } catch {
      this.lowWater = null;
    }
  }

  private belowLowWater(): boolean {
    if (this.lowWater === null || this.dir === null) return false;
    try {
      const st = fs.statfsSync(this.dir);
      return st.bavail * st.bsize < this.lowWater;
    } catch {
      return false;
    }
  }

  /** Writes the buffered readings: one transaction, one block per series (split only past
   * BLOCK_SPAN_MS), all appended in key order. */
  flush(retry = true): void {
    if (this.buffer.size === 0 || !this.st) return;
    if (this.belowLowWater()) this.makeRoom();
    const count = this.buffer.size;
    try {
      const f = this.nextFlush;
      this.db!.transaction(() => {
        let t0 = Infinity;
        let t1 = -Infinity;
        const g = this.buffer.group((slot) => {
          const n = this.buffer.name(slot);
          return this.idOf(n.device, n.point);
        });
        const ts = g.cols.ts;
        for (const slot of g.slots) {
          const id = g.rank[slot]!;
          const [lo, hi] = [g.start[slot]!, g.end[slot]!];
          if (ts[lo]! < t0) t0 = ts[lo]!;
          if (ts[hi - 1]! > t1) t1 = ts[hi - 1]!;
          split(ts, lo, hi).forEach(([from, to], part) => {
            this.st!.insert.run(f * FLUSH_KEY + id * PARTS + part, ts[from]!, ts[to - 1]!, to - from, encodeColumns(g.cols, this.buffer.qualities, from, to));
          });
        }
        this.st!.flushRow.run(f, t0, t1);
      })();
      this.nextFlush = f + 1;
      this.written += count;
      this.flushes++;
      this.buffer.clear();
    } catch (err) {
      // Series ids handed out inside the rolled-back transaction are void.
      try {
        this.loadIds();
      } catch {
        this.ids.clear();
      }
      // The buffer is untouched until a flush commits: the retry writes the same readings.
      if (retry && isDiskFull(err) && this.makeRoom() > 0) return this.flush(false);
      // Raw readings are best effort (disk full, locked): drop and count, never stop polling.
      this.dropped += count;
      this.buffer.clear();
      this.log.warn({ err: (err as Error).message, dropped: count }, 'raw store: readings dropped');
    }
  }

  private idOf(device: string, point: string): number {
    const k = key(device, point);
    let id = this.ids.get(k);
    if (id === undefined) {
      id = this.st!.seriesId.get(device, point) as number;
      if (id >= SERIES_LIMIT) throw new Error(`raw store: more than ${SERIES_LIMIT} series`);
      this.ids.set(k, id);
    }
    return id;
  }

  /** Deletes blocks whose newest reading is older than the retention, a chunk per tick. */
  async prune(now = Date.now()): Promise<void> {
    if (this.pruning || !this.st) return;
    this.pruning = true;
    const st = this.st;
    try {
      const cutoff = now - this.retentionHours * 3600_000;
      for (;;) {
        const fs = st.oldFlushes.all(cutoff, PRUNE_CHUNK) as number[];
        if (fs.length === 0) break;
        let n = 0;
        this.db!.transaction(() => {
          for (const f of fs) {
            const lo = f * FLUSH_KEY;
            n += sum(st.delOld.all(lo, lo + FLUSH_KEY, cutoff) as number[]);
            const left = st.left.get(lo, lo + FLUSH_KEY) as number | null;
            // A block left straddling the cutoff keeps its flush; raising the flush's t0 to the
            // cutoff (what is older is past the retention anyway) takes it out of this pass,
            // so twenty such flushes (a clock step) cannot keep the loop going.
            if (left === null) st.delFlush.run(f);
            else st.setT0.run(Math.max(left, cutoff), f);
          }
        })();
        this.pruned += n;
        if (fs.length < PRUNE_CHUNK) break;
        await new Promise((r) => setImmediate(r));
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'raw store: prune failed, will retry');
    } finally {
      this.pruning = false;
    }
  }

  /** Called with every point's effective class at start and after each config change. A
   * series whose class is now looser than the one its readings were stored under (a site
   * taking back its own tightening: personal -> public) loses those readings, on disk and in
   * memory, so nothing collected as personal is ever shown as public. Returns the series purged. */
  reclassify(points: readonly { device: string; point: string; privacy: PrivacyClass }[]): { device: string; point: string; from: PrivacyClass; to: PrivacyClass }[] {
    if (!this.db) return [];
    const db = this.db;
    const rows = db.prepare('SELECT id, device, point, privacy FROM series WHERE privacy IS NOT NULL').all() as { id: number; device: string; point: string; privacy: PrivacyClass }[];
    const was = new Map(rows.map((r) => [key(r.device, r.point), r]));
    const purged: { device: string; point: string; from: PrivacyClass; to: PrivacyClass }[] = [];
    const put = db.prepare('INSERT INTO series (device, point, privacy) VALUES (?, ?, ?) ON CONFLICT (device, point) DO UPDATE SET privacy = excluded.privacy');
    db.transaction(() => {
      let flushes: number[] | null = null;
      for (const p of points) {
        const old = was.get(key(p.device, p.point));
        if (old !== undefined && loosens(old.privacy, p.privacy)) {
          flushes ??= this.st!.allFlushes.all() as number[];
          const base = old.id * PARTS;
          for (const f of flushes) this.st!.delRange.run(f * FLUSH_KEY + base, f * FLUSH_KEY + base + PARTS - 1);
          purged.push({ device: p.device, point: p.point, from: old.privacy, to: p.privacy });
        }
        if (old?.privacy !== p.privacy) put.run(p.device, p.point, p.privacy);
      }
    })();
    this.loadIds();
    if (purged.length) {
      const gone = new Set(purged.map((p) => key(p.device, p.point)));
      this.buffer.purge((device, point) => gone.has(key(device, point)));
      this.log.warn({ purged }, 'raw store: readings stored under a stricter privacy class deleted (the class was loosened)');
    }
    return purged;
  }

  /** At most `buckets` points over [from, to], each the mean of its bucket's good readings
   * at the bucket's middle: for charts. */
  bucketed(device: string, point: string, from: number, to: number, buckets: number): [number, number][] {
    const size = Math.max(1, Math.ceil((to - from) / buckets));
    const acc = new Map<number, { s: number; n: number }>();
    for (const r of this.series(device, point, from, to)) {
      if (r.quality !== 'good' || r.value === null) continue;
      const b = Math.floor(r.ts / size);
      const a = acc.get(b);
      if (a) {
        a.s += r.value;
        a.n++;
      } else acc.set(b, { s: r.value, n: 1 });
    }
    return [...acc].sort((x, y) => x[0] - y[0]).map(([b, a]) => [b * size + Math.floor(size / 2), Math.round((a.s / a.n) * 1e6) / 1e6]);
  }

  /** One series over [from, to] in time order: the blocks on disk and what is still in memory. */
  series(device: string, point: string, from: number, to: number): RawPoint[] {
    if (!this.enabled) return [];
    const out: RawPoint[] = [];
    const id = this.ids.get(key(device, point));
    if (id !== undefined) {
      const st = this.st!;
      for (const f of st.flushesIn.all(from, to) as number[]) {
        const lo = f * FLUSH_KEY + id * PARTS;
        for (const b of st.blocksOf.all(lo, lo + PARTS - 1, from, to) as { t0: number; data: Buffer }[]) {
          for (const p of decodeBlock(b.t0, b.data)) if (p.ts >= from && p.ts <= to) out.push(p);
        }
      }
    }
    this.buffer.each(device, point, (ts, value, quality) => {
      if (ts >= from && ts <= to) out.push({ ts, value, quality });
    });
    // Stable: readings with the same ts keep the order they were taken in.
    return out.sort((a, b) => a.ts - b.ts);
  }
}

function key(device: string, point: string): string {
  return seriesKey({ device, point });
}

/** Booleans as 1/0. A string is only ever an identifier's pseudonym, which is never stored. */
function numeric(v: Reading['value']): number | null {
  if (typeof v === 'boolean') return v ? 1 : 0;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function sum(ns: number[]): number {
  let s = 0;
  for (const n of ns) s += n;
  return s;
}

/** Splits a series' readings ts[lo, hi), sorted, into runs [from, to) spanning at most
 * BLOCK_SPAN_MS (at most PARTS runs; the last takes the rest). */
function split(ts: ArrayLike<number>, lo: number, hi: number): [number, number][] {
  const parts: [number, number][] = [];
  let from = lo;
  for (let i = lo + 1; i < hi; i++) {
    if (ts[i]! - ts[from]! > BLOCK_SPAN_MS && parts.length < PARTS - 1) {
      parts.push([from, i]);
      from = i;
    }
  }
  parts.push([from, hi]);
  return parts;
}
