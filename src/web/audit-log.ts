// The web page's audit trail: who did what, from where, when and with what outcome, as JSON
// lines in audit.log in the state directory (docs/WEB.md). Each line is fsynced before write()
// returns, so an acknowledged action is on disk even if power goes a moment later.
//
// Tamper evidence: every line carries `seq` (1, 2, 3 ... over the whole history) and `prev`,
// the SHA-256 (hex) of the previous line's bytes (without its newline); the very first line
// chains to GENESIS. The chain runs across rotation: the first line of a new file chains to the
// last line of the file before it. `community-gateway audit verify` (audit-verify.ts) walks it.
// A chain shows that lines were edited, removed, reordered or inserted by someone who did not
// rewrite everything after them; it cannot stop root from rewriting the whole chain (docs/WEB.md).
//
// Rotation: past `maxFileBytes` the file is renamed to audit.log.<last seq, 12 digits> (so the
// names sort oldest first) and a new one started. Retention: the oldest rotated file is deleted
// only when it is older than `retentionDays` AND all files together exceed `budgetBytes`; when
// the budget is exceeded by files still inside the retention, they are kept, and that is
// logged, counted and audited (GB/T 22239-2019 8.1.4.3, 网络安全法 Art. 21: six months).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import { fsyncDir } from '../store/fsync-dir.js';

export interface AuditEntry {
  ts: number;
  user: string;
  ip: string;
  action: string;
  detail?: Record<string, unknown>;
  /** Attempts writeLimited() held back since the line before this one, so none is lost silently. */
  suppressed?: Suppressed;
}

export interface Suppressed {
  count: number;
  /** Per key (e.g. client address), at most SUPPRESSED_KEYS of them; `other` counts the rest. */
  byKey: Record<string, number>;
  other?: number;
}

/** What a line on disk holds: the entry plus its place in the chain. */
export interface ChainedEntry extends AuditEntry {
  seq: number;
  prev: string;
}

export interface AuditOptions {
  /** Rotate the file once it would grow past this many bytes. */
  maxFileBytes?: number;
  /** All audit files together should stay under this... */
  budgetBytes?: number;
  /** ...but no file younger than this is ever deleted to keep the budget. */
  retentionDays?: number;
  /** writeLimited(): at most one line per key per window... */
  limitWindowMs?: number;
  /** ...and at most this many limited lines per window over all keys. */
  limitGlobal?: number;
  log?: Logger;
}

export interface AuditStats {
  files: number;
  bytes: number;
  /** Times the budget was exceeded by files still inside the retention (kept, not deleted). */
  overBudget: number;
  /** Files deleted by the retention. */
  deletedFiles: number;
  /** Attempts held back by writeLimited() since start (each counted in a later line). */
  suppressed: number;
}

/** The `prev` of the first line ever written (64 zero hex digits). */
export const GENESIS = '0'.repeat(64);
export const AUDIT_DEFAULTS = {
  maxFileBytes: 1024 * 1024,
  budgetBytes: 32 * 1024 * 1024,
  retentionDays: 180,
  limitWindowMs: 60_000,
  limitGlobal: 30,
} as const;
const SUPPRESSED_KEYS = 20;
const TAIL_CHUNK = 64 * 1024;
const DAY_MS = 86_400_000;

export function lineHash(line: Buffer | string): string {
  return crypto.createHash('sha256').update(line).digest('hex');
}

/** Rotated files of `file` (audit.log.000000001234), oldest first. */
export function rotatedFiles(file: string): string[] {
  const dir = path.dirname(path.resolve(file));
  const base = path.basename(file);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const re = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d{12})$`);
  return names
    .filter((n) => re.test(n))
    .sort()
    .map((n) => path.join(dir, n));
}

export class AuditLog {
  private fd: number | null = null;
  private size = 0;
  /** The chain head: seq and hash of the last complete line on disk. */
  private head: { seq: number; hash: string } | null = null;
  private readonly o: Required<Omit<AuditOptions, 'log'>> & { log?: Logger };
  private readonly lastByKey = new Map<string, number>();
  private window = { start: -Infinity, count: 0 };
  private pending: Suppressed | null = null;
  readonly stats: AuditStats = { files: 0, bytes: 0, overBudget: 0, deletedFiles: 0, suppressed: 0 };

  constructor(
    private readonly file: string,
    private readonly now: () => number = Date.now,
    opts: AuditOptions = {},
  ) {
    this.o = { ...AUDIT_DEFAULTS, ...opts };
  }

  /** Appends one JSON line (with any suppressed count) and fsyncs before returning. */
  write(e: Omit<AuditEntry, 'ts' | 'suppressed'>): void {
    const entry: AuditEntry = { ts: this.now(), user: e.user, ip: e.ip, action: e.action };
    if (e.detail !== undefined) entry.detail = e.detail;
    if (this.pending) entry.suppressed = this.pending;
    this.append(entry, true);
    this.pending = null;
  }

  /** write(), but at most one line per `key` per window and `limitGlobal` lines per window in
   * all: for refusals an outsider can repeat at will (each line costs an fsync on an SD card).
   * A held-back attempt is counted and the count goes into the next line written. Returns
   * whether the line was written. */
  writeLimited(key: string, e: Omit<AuditEntry, 'ts' | 'suppressed'>): boolean {
    const t = this.now();
    const w = this.o.limitWindowMs;
    if (t - this.window.start >= w || t < this.window.start) this.window = { start: t, count: 0 };
    for (const [k, at] of this.lastByKey) if (t - at >= w || t < at) this.lastByKey.delete(k);
    if (this.lastByKey.has(key) || this.window.count >= this.o.limitGlobal) {
      const p = (this.pending ??= { count: 0, byKey: {} });
      p.count++;
      if (key in p.byKey || Object.keys(p.byKey).length < SUPPRESSED_KEYS) p.byKey[key] = (p.byKey[key] ?? 0) + 1;
      else p.other = (p.other ?? 0) + 1;
      this.stats.suppressed++;
      return false;
    }
    this.lastByKey.set(key, t);
    this.window.count++;
    this.write(e);
    return true;
  }

  /** The latest entries, newest first, at most `limit`, across rotated files. Unparseable
   * lines (a line torn by a crash) are skipped. */
  recent(limit: number): AuditEntry[] {
    const want = Math.floor(limit);
    if (!(want > 0)) return [];
    const out: AuditEntry[] = [];
    const files = [...rotatedFiles(this.file), this.file];
    for (let i = files.length - 1; i >= 0 && out.length < want; i--) {
      for (const raw of tailLines(files[i]!, want - out.length, (l) => parseEntry(l.toString('utf8')) !== null)) out.push(parseEntry(raw.toString('utf8'))!);
    }
    return out;
  }

  /** Files and bytes on disk now (current and rotated). */
  usage(): { files: number; bytes: number } {
    const files = [...rotatedFiles(this.file), this.file];
    let bytes = 0;
    let n = 0;
    for (const f of files) {
      try {
        bytes += fs.statSync(f).size;
        n++;
      } catch {
        // not there (yet)
      }
    }
    this.stats.files = n;
    this.stats.bytes = bytes;
    return { files: n, bytes };
  }

  /** The head's seq once the file is open, without opening it. */
  get headSeq(): number | null {
    return this.head?.seq ?? null;
  }

  /** The chain head (seq and hash of the newest line), e.g. to show or to send away. */
  chainHead(): { seq: number; hash: string } {
    this.open();
    return { ...this.head! };
  }

  /** Writes what writeLimited() still holds back, then closes the file. */
  close(): void {
    if (this.pending) {
      try {
        this.write({ user: 'system', ip: '', action: 'audit-suppressed' });
      } catch (err) {
        this.o.log?.error({ err: (err as Error).message }, 'audit log: cannot write the suppressed count');
      }
    }
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    fs.closeSync(fd);
  }

  private append(entry: AuditEntry, mayRotate: boolean): void {
    let fd0 = this.open();
    if (this.changedElsewhere(fd0)) {
      // Another process appended (community-gateway reset-admin) or rotated: chain to what is
      // on disk now, not to the head remembered here.
      fs.closeSync(fd0);
      this.fd = null;
      this.head = null;
      fd0 = this.open();
    }
    const head = this.head!;
    // seq first: even a torn line shows which entry it was.
    const chained = { seq: head.seq + 1, ...entry, prev: head.hash };
    // JSON.stringify escapes newlines inside strings, so one entry is always one line.
    const body = Buffer.from(JSON.stringify(chained), 'utf8');
    const rotated = mayRotate && this.size > 0 && this.size + body.length + 1 > this.o.maxFileBytes;
    const fd = rotated ? this.rotate() : fd0;
    try {
      writeAll(fd, Buffer.concat([body, Buffer.from('\n')]));
      fs.fsyncSync(fd);
    } catch (err) {
      // Torn or not, the line did not make it: the next one chains to the last good one.
      throw new Error(`audit log ${this.file}: cannot write: ${(err as Error).message}`);
    }
    this.size += body.length + 1;
    this.head = { seq: chained.seq, hash: lineHash(body) };
    if (rotated) this.retain();
  }

  /** The file grew by other hands, or audit.log is no longer the file we hold open. */
  private changedElsewhere(fd: number): boolean {
    const st = fs.fstatSync(fd);
    if (st.size !== this.size) return true;
    try {
      const now = fs.statSync(this.file);
      return now.ino !== st.ino || now.dev !== st.dev;
    } catch {
      return true;
    }
  }

  /** Renames the full file to audit.log.<last seq> and opens a fresh one; returns its fd. */
  private rotate(): number {
    const dir = path.dirname(path.resolve(this.file));
    fs.closeSync(this.fd!);
    this.fd = null;
    const to = `${this.file}.${String(this.head!.seq).padStart(12, '0')}`;
    try {
      fs.renameSync(this.file, to);
      fsyncDir(dir);
    } catch (err) {
      throw new Error(`audit log ${this.file}: cannot rotate to ${to}: ${(err as Error).message}`);
    }
    return this.open();
  }

  /** After a rotation: delete the oldest rotated files only while over budget AND past the
   * retention; never delete inside the retention (warn, count and audit instead). */
  private retain(): void {
    const files = rotatedFiles(this.file).map((f) => ({ f, st: fs.statSync(f) }));
    let total = this.size + files.reduce((s, x) => s + x.st.size, 0);
    const cutoff = this.now() - this.o.retentionDays * DAY_MS;
    while (total > this.o.budgetBytes && files.length > 0 && files[0]!.st.mtimeMs < cutoff) {
      const { f, st } = files.shift()!;
      const last = tailLines(f, 1)[0];
      fs.rmSync(f, { force: true });
      fsyncDir(path.dirname(f));
      total -= st.size;
      this.stats.deletedFiles++;
      // The note lets verify tell a chain that starts late by retention from a deleted file.
      const lastEntry = last ? parseChained(last.toString('utf8')) : null;
      this.append(
        { ts: this.now(), user: 'system', ip: '', action: 'audit-retention-delete', detail: { file: path.basename(f), bytes: st.size, lastSeq: lastEntry?.seq ?? null, lastTs: lastEntry?.ts ?? null, lastHash: last ? lineHash(last) : null } },
        false,
      );
    }
    this.stats.files = files.length + 1;
    this.stats.bytes = total;
    if (total > this.o.budgetBytes) {
      this.stats.overBudget++;
      const oldest = files[0] ? new Date(files[0].st.mtimeMs).toISOString() : null;
      this.o.log?.warn({ bytes: total, budgetBytes: this.o.budgetBytes, retentionDays: this.o.retentionDays, oldest }, 'AUDIT LOG OVER ITS DISK BUDGET: files younger than the retention are kept (raise web.audit.budgetBytes or collect the log centrally)');
      this.append({ ts: this.now(), user: 'system', ip: '', action: 'audit-over-budget', detail: { bytes: total, budgetBytes: this.o.budgetBytes, retentionDays: this.o.retentionDays, oldestRotated: oldest } }, false);
    }
  }

  /** Opened on first write: O_APPEND, mode 0600 (addresses and actions are nobody else's
   * business). The chain head is recovered from the tail of the newest file only. */
  private open(): number {
    if (this.fd !== null) return this.fd;
    try {
      const dir = path.dirname(path.resolve(this.file));
      fs.mkdirSync(dir, { recursive: true });
      const created = !fs.existsSync(this.file);
      const fd = fs.openSync(this.file, fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600);
      try {
        const st = fs.fstatSync(fd);
        // An older or hand-made file may be wider open; the umask may also have narrowed ours.
        if ((st.mode & 0o777) !== 0o600) fs.fchmodSync(fd, 0o600);
        this.size = st.size;
        // A crash mid-line leaves a torn last line: end it, or the next entry would be glued
        // onto it and lost with it. verify reports it as torn, and the chain skips it.
        if (st.size > 0) {
          const last = Buffer.alloc(1);
          fs.readSync(fd, last, 0, 1, st.size - 1);
          if (last[0] !== 0x0a) {
            writeAll(fd, Buffer.from('\n'));
            fs.fsyncSync(fd);
            this.size++;
          }
        }
        if (created) fsyncDir(dir);
        this.head ??= this.recoverHead();
      } catch (err) {
        fs.closeSync(fd);
        throw err;
      }
      this.fd = fd;
      return fd;
    } catch (err) {
      throw new Error(`audit log ${this.file}: cannot open for appending: ${(err as Error).message}`);
    }
  }

  /** The last complete line of the current file, or of the newest rotated one; a line from
   * before the chain (no seq) starts it at seq 1 chained to that line's hash. */
  private recoverHead(): { seq: number; hash: string } {
    const files = [...rotatedFiles(this.file), this.file];
    for (let i = files.length - 1; i >= 0; i--) {
      // A torn line or one that is no entry is skipped, as verify skips it.
      const [raw] = tailLines(files[i]!, 1, (l) => parseEntry(l.toString('utf8')) !== null);
      if (raw) return { seq: parseChained(raw.toString('utf8'))?.seq ?? 0, hash: lineHash(raw) };
    }
    return { seq: 0, hash: GENESIS };
  }
}

/** The last `n` non-empty lines of `file` (without newlines), newest first, reading backwards
 * chunk by chunk. A newline byte never occurs inside a UTF-8 sequence, so lines split safely
 * on bytes. Only lines `keep` accepts count. A missing file has none. */
export function tailLines(file: string, n: number, keep: (line: Buffer) => boolean = () => true): Buffer[] {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`audit log ${file}: cannot read: ${(err as Error).message}`);
  }
  try {
    let pos = fs.fstatSync(fd).size;
    let carry = Buffer.alloc(0); // the start of a line whose beginning is not read yet
    const out: Buffer[] = [];
    while (pos > 0 && out.length < n) {
      const len = Math.min(TAIL_CHUNK, pos);
      pos -= len;
      const chunk = Buffer.alloc(len);
      fs.readSync(fd, chunk, 0, len, pos);
      const buf = Buffer.concat([chunk, carry]);
      let end = buf.length;
      while (end > 0 && out.length < n) {
        const nl = buf.lastIndexOf(0x0a, end - 1);
        if (nl < 0) break;
        const line = buf.subarray(nl + 1, end);
        if (line.length && keep(line)) out.push(Buffer.from(line));
        end = nl;
      }
      carry = buf.subarray(0, end);
    }
    // The file's first line has no newline before it.
    if (pos === 0 && out.length < n && carry.length > 0 && keep(carry)) out.push(Buffer.from(carry));
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}

/** An entry as the page shows it (chain fields left out), or null for a line that is not one. */
export function parseEntry(line: string): AuditEntry | null {
  if (!line.trim()) return null;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.ts !== 'number' || typeof o.user !== 'string' || typeof o.ip !== 'string' || typeof o.action !== 'string') return null;
  const entry: AuditEntry = { ts: o.ts, user: o.user, ip: o.ip, action: o.action };
  if (typeof o.detail === 'object' && o.detail !== null && !Array.isArray(o.detail)) entry.detail = o.detail as Record<string, unknown>;
  if (typeof o.suppressed === 'object' && o.suppressed !== null) entry.suppressed = o.suppressed as Suppressed;
  return entry;
}

/** The entry with its chain fields, or null when the line is no entry or has no chain fields
 * (a line written before the chain existed). */
export function parseChained(line: string): ChainedEntry | null {
  const e = parseEntry(line);
  if (!e) return null;
  const o = JSON.parse(line) as Record<string, unknown>;
  if (!Number.isSafeInteger(o.seq) || typeof o.prev !== 'string' || !/^[0-9a-f]{64}$/.test(o.prev)) return null;
  return { ...e, seq: o.seq as number, prev: o.prev };
}
