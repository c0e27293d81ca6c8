// The site config file as the web page edits it, with its kept versions. Each version holds
// the config text it PRODUCED (`<file>.versions/<id>.yaml`), with the note, user and time of
// the change that produced it; index.json names the running version. The file itself is
// replaced atomically, so a crash or power cut leaves either the old or the new text, never
// half of one. Everything is synchronous: two saves can never interleave.
//
// Stores written by gateways before format 2 kept the text being REPLACED under the note of
// the change (off by one: issue 16). They have no FORMAT marker and are converted once, in a
// sibling folder swapped in by rename (see migrate()).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir } from '../store/fsync-dir.js';

/** Why a version exists, beyond a plain save: the page shows these in its own language. */
export type VersionKind = 'found' | 'rollback' | 'restored';

export interface ConfigVersion {
  id: number;
  ts: number;
  user: string;
  note: string;
  kind?: VersionKind;
  /** For kind 'rollback': the version whose text was applied again. */
  rollbackOf?: number;
}

/** A kept version as listed: `running` marks the one the gateway runs on. */
export interface ListedVersion extends ConfigVersion {
  running: boolean;
}

export interface SaveMeta {
  user: string;
  note: string;
  kind?: VersionKind;
  rollbackOf?: number;
}

interface Index {
  format: 2;
  running: number | null;
  versions: ConfigVersion[]; // newest first
}

const DEFAULT_KEEP = 10;
const INDEX = 'index.json';
/** Present (holding "2") in every store of this format; its absence marks an older store. */
const MARKER = 'FORMAT';
const FORMAT = 2;
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

  get file(): string {
    return this.path;
  }

  /** Rewrites kept versions that still hold what `redact` removes (versions kept by an older
   * gateway). Returns how many were rewritten. */
  scrub(): number {
    this.migrate();
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

  read(): string {
    try {
      return fs.readFileSync(this.path, 'utf8');
    } catch (err) {
      throw new Error(`config ${this.path}: cannot read: ${(err as Error).message}`);
    }
  }

  /** Kept versions, newest first. `running` marks the version the index names as running,
   * and only while its text is the running config's (`current`, by default the file's): a
   * file changed by hand since is not claimed to be any version. */
  versions(current?: string): ListedVersion[] {
    const index = this.index();
    const running = this.runningOf(index, current);
    return index.versions.map((v) => ({ ...v, running: v.id === running }));
  }

  /** The id of the running version (see versions()), or null when none holds the running text. */
  runningId(current?: string): number | null {
    return this.runningOf(this.index(), current);
  }

  /** The text of kept version `id`. */
  version(id: number): string {
    const known = this.index().versions;
    if (!Number.isSafeInteger(id) || id < 0 || !known.some((v) => v.id === id)) {
      const kept = known.map((v) => v.id).sort((a, b) => a - b);
      throw new Error(`config version ${id} not found (kept: ${kept.length > 0 ? kept.join(', ') : 'none'})`);
    }
    try {
      return fs.readFileSync(this.versionFile(id), 'utf8');
    } catch (err) {
      throw new Error(`config version ${id}: cannot read ${this.versionFile(id)}: ${(err as Error).message}`);
    }
  }

  /** Replaces the file atomically with `text` and keeps `text` as a new version, the running
   * one, with `meta`. The first save on a store without versions first keeps the file as it
   * was found (its own version, kind 'found'); so does a save after the file was changed
   * outside the page. Prunes to the newest `keep` versions (the running one always stays).
   * Returns the new version. */
  save(text: string, meta: SaveMeta): ConfigVersion {
    this.migrate();
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
    this.ensureDir();
    const index = this.index();
    // Also past ids still on disk (a crash before the index was written): never reuse an id.
    let next = Math.max(0, ...index.versions.map((v) => v.id), ...this.idsOnDisk()) + 1;
    const ts = this.now();
    const added: ConfigVersion[] = [];
    if (previous !== null && this.runningText(index) !== this.redact(previous)) {
      const found: ConfigVersion = {
        id: next++,
        ts,
        user: 'system',
        note: index.versions.length ? 'the config as found (changed outside the page)' : 'the config as found',
        kind: 'found',
      };
      atomicWrite(this.versionFile(found.id), this.redact(previous), FILE_MODE);
      added.push(found);
    }
    const v: ConfigVersion = { id: next, ts, user: meta.user, note: meta.note, ...(meta.kind ? { kind: meta.kind } : {}), ...(meta.rollbackOf !== undefined ? { rollbackOf: meta.rollbackOf } : {}) };
    // Order matters for crashes: the version text first, then the index naming it, then the
    // file. A crash before the file leaves an index naming a text that is not running: the
    // running marker then stays off (runningOf) and the next save keeps the file as found.
    atomicWrite(this.versionFile(v.id), this.redact(text), FILE_MODE);
    const kept = pruned([v, ...added.reverse(), ...index.versions], v.id, this.keep);
    this.writeIndex(this.dir, { format: FORMAT, running: v.id, versions: kept });
    atomicWrite(this.path, text, mode);
    this.removeUnlisted(kept);
    return v;
  }

  /** Converts a store written before format 2, once; returns how many versions it converted
   * to, or null when there was nothing to convert. The old store kept, for change k, the text
   * BEFORE change k with change k's note; version k of the new store holds the text change k
   * produced (the old text of change k+1, or the config file for the last change), with the
   * same note, user and time, and version k0-1 (0 when nothing was pruned) is the oldest old
   * text: the config as found before the oldest change still known.
   *
   * Atomic by folder swap: the new store is built whole in `<dir>.migrating` (FORMAT written
   * last), the old folder is renamed to `<dir>.old`, the new one renamed into place, then the
   * old one removed. A crash at any step is finished or undone by the next call. */
  migrate(): number | null {
    const mig = `${this.dir}.migrating`;
    const old = `${this.dir}.old`;
    if (!fs.existsSync(this.dir) && fs.existsSync(old)) {
      // A crash between the two renames.
      if (fs.existsSync(path.join(mig, MARKER))) fs.renameSync(mig, this.dir);
      else fs.renameSync(old, this.dir);
      fsyncDir(path.dirname(path.resolve(this.dir)));
    }
    if (!fs.existsSync(this.dir) || fs.existsSync(path.join(this.dir, MARKER))) {
      fs.rmSync(mig, { recursive: true, force: true });
      fs.rmSync(old, { recursive: true, force: true });
      return null;
    }
    // A build a crash left half done, and any stale copy aside (the rename below needs the name).
    fs.rmSync(mig, { recursive: true, force: true });
    fs.rmSync(old, { recursive: true, force: true });
    const entries = this.oldEntries(); // oldest first
    const current = fs.existsSync(this.path) ? fs.readFileSync(this.path, 'utf8') : null;
    const texts = new Map<number, string>();
    const versions: ConfigVersion[] = [];
    if (entries.length) {
      const first = entries[0]!;
      versions.push({ id: first.id - 1, ts: 0, user: '', note: first.id === 1 ? 'the config as found (before version 1)' : `the config before version ${first.id} (older versions were not kept)`, kind: 'found' });
      texts.set(first.id - 1, this.oldText(first.id));
    }
    entries.forEach((e, i) => {
      const after = i + 1 < entries.length ? this.oldText(entries[i + 1]!.id) : current;
      if (after === null) return; // the config file is gone: what the last change made is unknown
      versions.push({ id: e.id, ts: e.ts, user: e.user, note: e.note });
      texts.set(e.id, after);
    });
    versions.reverse();
    const running = current !== null && entries.length ? entries[entries.length - 1]!.id : null;
    const kept = pruned(versions, running, this.keep);
    fs.mkdirSync(mig, { mode: 0o700 });
    for (const v of kept) atomicWrite(path.join(mig, `${v.id}.yaml`), this.redact(texts.get(v.id)!), FILE_MODE);
    this.writeIndex(mig, { format: FORMAT, running, versions: kept });
    atomicWrite(path.join(mig, MARKER), `${FORMAT}\n`, FILE_MODE);
    fs.renameSync(this.dir, old);
    fs.renameSync(mig, this.dir);
    fsyncDir(path.dirname(path.resolve(this.dir)));
    fs.rmSync(old, { recursive: true, force: true });
    return kept.length;
  }

  private versionFile(id: number): string {
    return path.join(this.dir, `${id}.yaml`);
  }

  private idsOnDisk(dir = this.dir): number[] {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return [];
    }
    return names.map((n) => /^(\d+)\.yaml$/.exec(n)?.[1]).filter((x): x is string => x !== undefined).map(Number);
  }

  /** A new store's folder, marked as format 2 before anything else is written in it. */
  private ensureDir(): void {
    if (fs.existsSync(path.join(this.dir, MARKER))) return;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    atomicWrite(path.join(this.dir, MARKER), `${FORMAT}\n`, FILE_MODE);
  }

  private index(): Index {
    this.migrate();
    const file = path.join(this.dir, INDEX);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`config versions ${file}: cannot read: ${(err as Error).message}`);
      return this.rebuiltIndex();
    }
    // An unreadable index must not block saving a config: the kept texts are still there,
    // only their user and note are lost.
    return parseIndex(text) ?? this.rebuiltIndex();
  }

  private writeIndex(dir: string, index: Index): void {
    atomicWrite(path.join(dir, INDEX), `${JSON.stringify(index, null, 2)}\n`, FILE_MODE);
  }

  private runningText(index: Index): string | null {
    if (index.running === null || !index.versions.some((v) => v.id === index.running)) return null;
    try {
      return fs.readFileSync(this.versionFile(index.running), 'utf8');
    } catch {
      return null;
    }
  }

  private runningOf(index: Index, current?: string): number | null {
    let text = current;
    if (text === undefined) {
      try {
        text = fs.readFileSync(this.path, 'utf8');
      } catch {
        return null;
      }
    }
    const kept = this.runningText(index);
    return kept !== null && kept === this.redact(text) ? index.running : null;
  }

  private removeUnlisted(kept: ConfigVersion[]): void {
    const ids = new Set(kept.map((v) => v.id));
    for (const id of this.idsOnDisk()) if (!ids.has(id)) fs.rmSync(this.versionFile(id), { force: true });
  }

  /** An index from the version files themselves, when index.json is missing or unreadable:
   * the running one is the newest whose text is the file's. */
  private rebuiltIndex(): Index {
    const versions = this.idsOnDisk()
      .map((id) => ({ id, ts: mtime(this.versionFile(id)), user: '', note: 'recovered: index.json was missing or unreadable' }))
      .sort((a, b) => b.id - a.id);
    let running: number | null = null;
    try {
      const now = this.redact(fs.readFileSync(this.path, 'utf8'));
      running = versions.find((v) => fs.readFileSync(this.versionFile(v.id), 'utf8') === now)?.id ?? null;
    } catch {
      // no config file, or a version vanished meanwhile
    }
    return { format: FORMAT, running, versions };
  }

  /** The entries of a pre-format-2 index.json (an array), oldest first; rebuilt from the files
   * when that index is missing or unreadable. */
  private oldEntries(): ConfigVersion[] {
    const onDisk = new Set(this.idsOnDisk());
    let entries: ConfigVersion[] | null = null;
    try {
      entries = parseEntries(JSON.parse(fs.readFileSync(path.join(this.dir, INDEX), 'utf8')));
    } catch {
      // missing or not JSON
    }
    entries ??= [...onDisk].map((id) => ({ id, ts: mtime(this.versionFile(id)), user: '', note: 'recovered: index.json was missing or unreadable' }));
    return entries.filter((e) => onDisk.has(e.id)).sort((a, b) => a.id - b.id);
  }

  private oldText(id: number): string {
    return fs.readFileSync(this.versionFile(id), 'utf8');
  }
}

/** The newest `keep` of `versions` (newest first), plus the running one wherever it is. */
function pruned(versions: ConfigVersion[], running: number | null, keep: number): ConfigVersion[] {
  const sorted = [...versions].sort((a, b) => b.id - a.id);
  return sorted.filter((v, i) => i < keep || v.id === running);
}

function mtime(file: string): number {
  try {
    return Math.round(fs.statSync(file).mtimeMs);
  } catch {
    return 0; // vanished meanwhile
  }
}

function parseIndex(text: string): Index | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (o.format !== FORMAT || !(o.running === null || Number.isSafeInteger(o.running))) return null;
  const versions = parseEntries(o.versions);
  return versions ? { format: FORMAT, running: o.running as number | null, versions: versions.sort((a, b) => b.id - a.id) } : null;
}

function parseEntries(v: unknown): ConfigVersion[] | null {
  if (!Array.isArray(v)) return null;
  const out: ConfigVersion[] = [];
  for (const e of v as unknown[]) {
    if (typeof e !== 'object' || e === null) return null;
    const o = e as Record<string, unknown>;
    if (!Number.isSafeInteger(o.id) || (o.id as number) < 0 || typeof o.ts !== 'number' || typeof o.user !== 'string' || typeof o.note !== 'string') return null;
    const entry: ConfigVersion = { id: o.id as number, ts: o.ts, user: o.user, note: o.note };
    if (o.kind === 'found' || o.kind === 'rollback' || o.kind === 'restored') entry.kind = o.kind;
    if (Number.isSafeInteger(o.rollbackOf)) entry.rollbackOf = o.rollbackOf as number;
    out.push(entry);
  }
  return out;
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
