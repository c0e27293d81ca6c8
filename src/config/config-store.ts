// The site config file as the web page edits it, with its kept previous versions. Every save
// keeps the text being replaced in `<file>.versions/<id>.yaml` (listed in index.json) and
// replaces the file atomically, so a crash or power cut leaves either the old or the new text,
// never half of one. Everything is synchronous: two saves can never interleave.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir } from '../store/fsync-dir.js';

export interface ConfigVersion {
  id: number;
  ts: number;
  user: string;
  note: string;
}

const DEFAULT_KEEP = 10;
const INDEX = 'index.json';
/** Config files may hold credentials (uplink passwords, broker hashes): owner only. */
const FILE_MODE = 0o600;

export class ConfigStore {
  private readonly path: string;
  private readonly dir: string;
  private readonly keep: number;
  private readonly now: () => number;
  private readonly redact: (text: string) => string;

  /** `file`: the config file the daemon runs on. Versions live in `${file}.versions/`, passed
   * through `redact` first (secrets are not versioned: src/config/secrets.ts). */
  constructor(file: string, opts: { keep?: number; now?: () => number; redact?: (text: string) => string } = {}) {
    this.path = file;
    this.dir = `${file}.versions`;
    this.keep = Math.max(1, Math.floor(opts.keep ?? DEFAULT_KEEP));
    this.now = opts.now ?? Date.now;
    this.redact = opts.redact ?? ((t) => t);
  }

  /** Rewrites kept versions that still hold what `redact` removes (versions kept by an older
   * gateway). Returns how many were rewritten. */
  scrub(): number {
    let n = 0;
    for (const id of this.idsOnDisk()) {
      const file = this.versionFile(id);
      const text = fs.readFileSync(file, 'utf8');
      const clean = this.redact(text);
      if (clean !== text) {
        atomicWrite(file, clean, FILE_MODE);
        n++;
      }
    }
    return n;
  }

  get file(): string {
    return this.path;
  }

  read(): string {
    try {
      return fs.readFileSync(this.path, 'utf8');
    } catch (err) {
      throw new Error(`config ${this.path}: cannot read: ${(err as Error).message}`);
    }
  }

  /** Kept versions, newest first. */
  versions(): ConfigVersion[] {
    const index = path.join(this.dir, INDEX);
    let text: string;
    try {
      text = fs.readFileSync(index, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`config versions ${index}: cannot read: ${(err as Error).message}`);
      return this.rebuiltIndex();
    }
    const parsed = parseIndex(text);
    // An unreadable index must not block saving a config: the kept texts are still there,
    // only their user and note are lost.
    return parsed ?? this.rebuiltIndex();
  }

  /** The text of kept version `id`. */
  version(id: number): string {
    const known = this.versions();
    if (!Number.isSafeInteger(id) || id < 1 || !known.some((v) => v.id === id)) {
      const kept = known.map((v) => v.id).sort((a, b) => a - b);
      throw new Error(`config version ${id} not found (kept: ${kept.length > 0 ? kept.join(', ') : 'none'})`);
    }
    try {
      return fs.readFileSync(this.versionFile(id), 'utf8');
    } catch (err) {
      throw new Error(`config version ${id}: cannot read ${this.versionFile(id)}: ${(err as Error).message}`);
    }
  }

  /** Keeps the current text (if any) as a new version, then replaces the file atomically with
   * `text` and prunes to the newest `keep` versions. Returns the kept version, or null when
   * there was no file before. */
  save(text: string, meta: { user: string; note: string }): ConfigVersion | null {
    fs.mkdirSync(path.dirname(path.resolve(this.path)), { recursive: true });
    let previous: string | null;
    let mode = FILE_MODE;
    try {
      previous = fs.readFileSync(this.path, 'utf8');
      mode = fs.statSync(this.path).mode & 0o777; // the technician's choice of mode stays
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`config ${this.path}: cannot read: ${(err as Error).message}`);
      previous = null;
    }
    let kept: ConfigVersion | null = null;
    let index: ConfigVersion[] = [];
    if (previous !== null) {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const existing = this.versions();
      // Also past ids still on disk (a crash before the index was written): never reuse an id.
      const maxId = Math.max(0, ...existing.map((v) => v.id), ...this.idsOnDisk());
      kept = { id: maxId + 1, ts: this.now(), user: meta.user, note: meta.note };
      // Order matters for crashes: the kept text first, then the index naming it, then the file.
      atomicWrite(this.versionFile(kept.id), this.redact(previous), FILE_MODE);
      index = [kept, ...existing].sort((a, b) => b.id - a.id).slice(0, this.keep);
      atomicWrite(path.join(this.dir, INDEX), `${JSON.stringify(index, null, 2)}\n`, FILE_MODE);
    }
    atomicWrite(this.path, text, mode);
    if (previous !== null) {
      const keepIds = new Set(index.map((v) => v.id));
      for (const id of this.idsOnDisk()) if (!keepIds.has(id)) fs.rmSync(this.versionFile(id), { force: true });
    }
    return kept;
  }

  private versionFile(id: number): string {
    return path.join(this.dir, `${id}.yaml`);
  }

  private idsOnDisk(): number[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    return names.map((n) => /^(\d+)\.yaml$/.exec(n)?.[1]).filter((x): x is string => x !== undefined).map(Number);
  }

  /** An index from the version files themselves, when index.json is missing or unreadable. */
  private rebuiltIndex(): ConfigVersion[] {
    return this.idsOnDisk()
      .map((id) => {
        let ts = 0;
        try {
          ts = Math.round(fs.statSync(this.versionFile(id)).mtimeMs);
        } catch {
          // vanished meanwhile
        }
        return { id, ts, user: '', note: 'recovered: index.json was missing or unreadable' };
      })
      .sort((a, b) => b.id - a.id);
  }
}

function parseIndex(text: string): ConfigVersion[] | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(v)) return null;
  const out: ConfigVersion[] = [];
  for (const e of v as unknown[]) {
    if (typeof e !== 'object' || e === null) return null;
    const o = e as Record<string, unknown>;
    if (!Number.isSafeInteger(o.id) || typeof o.ts !== 'number' || typeof o.user !== 'string' || typeof o.note !== 'string') return null;
    out.push({ id: o.id as number, ts: o.ts, user: o.user, note: o.note });
  }
  return out.sort((a, b) => b.id - a.id);
}

/** Replaces `file` with `text` so that a crash leaves the old or the new content, never a mix:
 * temp file in the same directory, fsync, rename over the file, fsync of the directory (which
 * makes the rename itself durable). A symlinked file is replaced at its target. */
export function atomicWrite(file: string, text: string, mode: number = FILE_MODE): void {
  let target = file;
  try {
    target = fs.realpathSync(file);
  } catch {
    // not there yet: create it under the given name
  }
  const dir = path.dirname(path.resolve(target));
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'wx', mode);
    try {
      fs.fchmodSync(fd, mode); // exact mode, whatever the umask
      const buf = Buffer.from(text, 'utf8');
      let off = 0;
      while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`cannot write ${file}: ${(err as Error).message}`);
  }
  fsyncDir(dir);
}
