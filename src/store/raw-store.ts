// Raw readings kept for a few hours for the local charts and for diagnosis. Never uplinked.
// Written in one transaction per second, pruned in the background in small chunks so the
// pruner never holds the database for long. Identifier points are never stored in clear.
import type { Logger } from '../log.js';
import type { Reading } from '../types.js';
import { loosens, type PrivacyClass } from '../config/profile-schema.js';
import fs from 'node:fs';
import path from 'node:path';
import { isDiskFull, type Db } from './database.js';

const FLUSH_MS = 1000;
const PRUNE_EVERY_MS = 10 * 60_000;
const PRUNE_CHUNK = 5000;
/** Readings given up per attempt when the disk is full (a few hundred KB). */
const MAKE_ROOM_ROWS = 5000;
/** Readings held in memory between flushes at most; past it the oldest are dropped (counted). */
const MAX_BUFFER = 50_000;

export class RawStore {
  private buffer: Reading[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private pruneTimer: NodeJS.Timeout | null = null;
  private pruning = false;
  written = 0;
  dropped = 0;
  pruned = 0;
  /** Oldest readings given up to make room on a full disk. */
  evicted = 0;
  private readonly st;

  constructor(
    private readonly db: Db,
    private readonly retentionHours: number,
    private readonly log: Logger,
  ) {
    this.st = {
      insert: db.prepare('INSERT INTO raw (device, point, ts, value, quality) VALUES (?, ?, ?, ?, ?)'),
      prune: db.prepare('DELETE FROM raw WHERE rowid IN (SELECT rowid FROM raw WHERE ts < ? LIMIT ?)'),
      oldest: db.prepare('DELETE FROM raw WHERE rowid IN (SELECT rowid FROM raw ORDER BY ts LIMIT ?)'),
      series: db.prepare('SELECT ts, value, quality FROM raw WHERE device = ? AND point = ? AND ts >= ? AND ts <= ? ORDER BY ts'),
      // Good readings only; each bucket is represented by its mean at the bucket's middle.
      bucketed: db.prepare(
        "SELECT (ts / ?) AS b, AVG(value) AS v FROM raw WHERE device = ? AND point = ? AND ts >= ? AND ts <= ? AND quality = 'good' AND value IS NOT NULL GROUP BY b ORDER BY b",
      ),
    };
  }

  start(): void {
    if (this.retentionHours === 0) return;
    this.flushTimer = setInterval(() => this.flush(), FLUSH_MS);
    this.pruneTimer = setInterval(() => void this.prune(), PRUNE_EVERY_MS);
    void this.prune();
  }

  stop(): void {
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.flushTimer = this.pruneTimer = null;
    this.flush();
  }

  add(r: Reading): void {
    if (this.retentionHours === 0 || r.privacy === 'identifier') return;
    if (this.buffer.length >= MAX_BUFFER) {
      this.buffer.shift();
      this.dropped++;
    }
    this.buffer.push(r);
  }

  /** Disk full: gives up the oldest readings (a chunk) so that the outbox, and then new
   * readings, can be written. Returns the rows freed (0 if even the delete failed). */
  makeRoom(): number {
    try {
      const n = this.st.oldest.run(MAKE_ROOM_ROWS).changes;
      this.evicted += n;
      return n;
    } catch {
      return 0;
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

  flush(retry = true): void {
    if (this.buffer.length === 0) return;
    if (this.belowLowWater()) this.makeRoom();
    const batch = this.buffer;
    this.buffer = [];
    try {
      this.db.transaction(() => {
        for (const r of batch) {
          const v = r.value === null ? null : typeof r.value === 'boolean' ? (r.value ? 1 : 0) : r.value;
          this.st.insert.run(r.device, r.point, r.ts, v, r.quality);
        }
      })();
      this.written += batch.length;
    } catch (err) {
      if (retry && isDiskFull(err) && this.makeRoom() > 0) {
        this.buffer = batch.concat(this.buffer);
        return this.flush(false);
      }
      // Raw readings are best effort (disk full, locked): drop and count, never stop polling.
      this.dropped += batch.length;
      this.log.warn({ err: (err as Error).message, dropped: batch.length }, 'raw store: readings dropped');
    }
  }

  /** Deletes readings older than the retention, a chunk per tick. */
  async prune(now = Date.now()): Promise<void> {
    if (this.pruning) return;
    this.pruning = true;
    try {
      const cutoff = now - this.retentionHours * 3600_000;
      for (;;) {
        const n = this.st.prune.run(cutoff, PRUNE_CHUNK).changes;
        this.pruned += n;
        if (n < PRUNE_CHUNK) break;
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
   * taking back its own tightening: personal -> public) loses those readings, so nothing
   * collected as personal is ever shown as public. Returns the series purged. */
  reclassify(points: readonly { device: string; point: string; privacy: PrivacyClass }[]): { device: string; point: string; from: PrivacyClass; to: PrivacyClass }[] {
    this.flush();
    const was = new Map((this.db.prepare('SELECT device, point, privacy FROM raw_class').all() as { device: string; point: string; privacy: PrivacyClass }[]).map((r) => [`${r.device}\u0000${r.point}`, r.privacy]));
    const purged: { device: string; point: string; from: PrivacyClass; to: PrivacyClass }[] = [];
    const del = this.db.prepare('DELETE FROM raw WHERE device = ? AND point = ?');
    const put = this.db.prepare('INSERT INTO raw_class (device, point, privacy) VALUES (?, ?, ?) ON CONFLICT (device, point) DO UPDATE SET privacy = excluded.privacy');
    this.db.transaction(() => {
      for (const p of points) {
        const from = was.get(`${p.device}\u0000${p.point}`);
        if (from !== undefined && loosens(from, p.privacy)) {
          del.run(p.device, p.point);
          purged.push({ device: p.device, point: p.point, from, to: p.privacy });
        }
        if (from !== p.privacy) put.run(p.device, p.point, p.privacy);
      }
    })();
    if (purged.length) this.log.warn({ purged }, 'raw store: readings stored under a stricter privacy class deleted (the class was loosened)');
    return purged;
  }

  /** At most `buckets` points over [from, to], each the mean of its bucket: for charts. */
  bucketed(device: string, point: string, from: number, to: number, buckets: number): [number, number][] {
    this.flush();
    const size = Math.max(1, Math.ceil((to - from) / buckets));
    const rows = this.st.bucketed.all(size, device, point, from, to) as { b: number; v: number }[];
    return rows.map((r) => [Math.floor(r.b) * size + Math.floor(size / 2), Math.round(r.v * 1e6) / 1e6]);
  }

  series(device: string, point: string, from: number, to: number): { ts: number; value: number | null; quality: string }[] {
    this.flush();
    return this.st.series.all(device, point, from, to) as { ts: number; value: number | null; quality: string }[];
  }
}
