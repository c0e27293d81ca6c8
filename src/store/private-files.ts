// The box's files hold personal readings (the raw store), secrets and the audit trail: they are
// the service user's alone, whatever umask the daemon was started with (issue 12, finding 10).
import fs from 'node:fs';
import path from 'node:path';

/** Creates `dir` 0700, or tightens one we own that group or others can enter; returns a
 * warning for one that is not ours to change (a shared /tmp, another user's folder). */
export function ensurePrivateDir(dir: string): string | null {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.statSync(dir);
  if ((st.mode & 0o077) === 0) return null;
  const owned = typeof process.getuid === 'function' && st.uid === process.getuid();
  // Never chmod a sticky (shared) folder such as /tmp.
  if (owned && (st.mode & 0o1000) === 0) {
    fs.chmodSync(dir, 0o700);
    return null;
  }
  return `${dir} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}) and is not ours to change: keep the gateway's files in a private folder`;
}

/** Makes `file` (created empty if missing) 0600 before anything writes to it: SQLite gives its
 * -wal and -shm files the mode of the database file. */
export function ensurePrivateFile(file: string): void {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    if ((fs.fstatSync(fd).mode & 0o077) !== 0) fs.fchmodSync(fd, 0o600);
  } finally {
    fs.closeSync(fd);
  }
}

/** A SQLite file and its companions made private before SQLite opens it (":memory:" aside):
 * its folder 0700, the file 0600, and -wal/-shm left 0644 by an older version tightened. */
export function preparePrivateDatabase(file: string, onWarning?: (message: string) => void): void {
  if (file === ':memory:') return;
  const warning = ensurePrivateDir(path.dirname(path.resolve(file)));
  if (warning) onWarning?.(warning);
  ensurePrivateFile(file);
  for (const f of [`${file}-wal`, `${file}-shm`]) if (fs.existsSync(f)) ensurePrivateFile(f);
}
