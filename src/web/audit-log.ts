// The web page's audit trail: who did what, from where, and when, as JSON lines in audit.log
// beside the storage file (docs/WEB.md). Each line is fsynced before write() returns, so an
// acknowledged action is on disk even if power goes a moment later. The file is only ever
// appended to; recent() reads just its tail, so a long history costs nothing to query.
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir } from '../store/fsync-dir.js';

export interface AuditEntry {
  ts: number;
  user: string;
  ip: string;
  action: string;
  detail?: Record<string, unknown>;
}

const TAIL_CHUNK = 64 * 1024;

export class AuditLog {
  private fd: number | null = null;

  constructor(
    private readonly file: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Appends one JSON line and fsyncs before returning. */
  write(e: Omit<AuditEntry, 'ts'>): void {
    const entry: AuditEntry = { ts: this.now(), user: e.user, ip: e.ip, action: e.action };
    if (e.detail !== undefined) entry.detail = e.detail;
    // JSON.stringify escapes newlines inside strings, so one entry is always one line.
    const line = Buffer.from(`${JSON.stringify(entry)}\n`, 'utf8');
    const fd = this.open();
    try {
      writeAll(fd, line);
      fs.fsyncSync(fd);
    } catch (err) {
      throw new Error(`audit log ${this.file}: cannot write: ${(err as Error).message}`);
    }
  }

  /** The latest entries, newest first, at most `limit`. Unparseable lines (a line torn by a
   * crash) are skipped. */
  recent(limit: number): AuditEntry[] {
    const want = Math.floor(limit);
    if (!(want > 0)) return [];
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new Error(`audit log ${this.file}: cannot read: ${(err as Error).message}`);
    }
    try {
      // Read backwards chunk by chunk, parsing whole lines from the end until enough are found.
      // A newline byte never occurs inside a UTF-8 sequence, so lines split safely on bytes.
      let pos = fs.fstatSync(fd).size;
      let carry = Buffer.alloc(0); // the start of a line whose beginning is not read yet
      const out: AuditEntry[] = [];
      while (pos > 0 && out.length < want) {
        const n = Math.min(TAIL_CHUNK, pos);
        pos -= n;
        const chunk = Buffer.alloc(n);
        fs.readSync(fd, chunk, 0, n, pos);
        const buf = Buffer.concat([chunk, carry]);
        let end = buf.length;
        while (end > 0 && out.length < want) {
          const nl = buf.lastIndexOf(0x0a, end - 1);
          if (nl < 0) break;
          const entry = parseEntry(buf.subarray(nl + 1, end).toString('utf8'));
          if (entry) out.push(entry);
          end = nl;
        }
        carry = buf.subarray(0, end);
      }
      // The file's first line has no newline before it.
      if (pos === 0 && out.length < want && carry.length > 0) {
        const entry = parseEntry(carry.toString('utf8'));
        if (entry) out.push(entry);
      }
      return out;
    } finally {
      fs.closeSync(fd);
    }
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    fs.closeSync(fd);
  }

  /** Opened on first write: O_APPEND, mode 0600 (addresses and actions are nobody else's business). */
  private open(): number {
    if (this.fd !== null) return this.fd;
    try {
      fs.mkdirSync(path.dirname(path.resolve(this.file)), { recursive: true });
      const created = !fs.existsSync(this.file);
      const fd = fs.openSync(this.file, fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600);
      try {
        const st = fs.fstatSync(fd);
        // An older or hand-made file may be wider open; the umask may also have narrowed ours.
        if ((st.mode & 0o777) !== 0o600) fs.fchmodSync(fd, 0o600);
        // A crash mid-line leaves a torn last line: end it, or the next entry would be glued
        // onto it and lost with it.
        if (st.size > 0) {
          const last = Buffer.alloc(1);
          fs.readSync(fd, last, 0, 1, st.size - 1);
          if (last[0] !== 0x0a) writeAll(fd, Buffer.from('\n'));
        }
        if (created) fsyncDir(path.dirname(path.resolve(this.file)));
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
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}


function parseEntry(line: string): AuditEntry | null {
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
  return entry;
}
