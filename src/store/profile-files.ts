// Site profile files on disk (drivers/ beside the config file), as the page's upload and a
// remote bundle store them. Each file is written and fsynced in a staging folder inside the
// site folder (a dot folder: never loaded), then renamed into place, so a crash leaves the old
// file or the new one, never half a profile.
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir } from './fsync-dir.js';

/** Read by the daemon's user and its group (the installer's admin group), nobody else. */
export const PROFILE_FILE_MODE = 0o640;
const DIR_MODE = 0o750;

/** What is at `file` now: nothing, a plain file (its text), or something else (a link, a folder). */
export type ExistingFile = { kind: 'none' } | { kind: 'file'; text: string } | { kind: 'other' };

export function existingFile(file: string): ExistingFile {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return { kind: 'none' };
  }
  return st.isFile() ? { kind: 'file', text: fs.readFileSync(file, 'utf8') } : { kind: 'other' };
}

/** Writes every file (name -> text) into `dir`, each whole or not at all. */
export function writeProfileFiles(dir: string, files: readonly { name: string; text: string }[]): void {
  if (files.length === 0) return;
  fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  const stage = fs.mkdtempSync(path.join(dir, '.write-'));
  try {
    for (const f of files) {
      const fd = fs.openSync(path.join(stage, f.name), 'wx', PROFILE_FILE_MODE);
      try {
        fs.fchmodSync(fd, PROFILE_FILE_MODE); // exact mode, whatever the umask
        fs.writeSync(fd, f.text);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    // rename() replaces the directory entry itself: a link there would be replaced, not followed.
    for (const f of files) fs.renameSync(path.join(stage, f.name), path.join(dir, f.name));
    fsyncDir(dir);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** Removes files written by writeProfileFiles (an install undone). */
export function removeProfileFiles(dir: string, names: readonly string[]): void {
  for (const n of names) fs.rmSync(path.join(dir, n), { force: true });
  if (names.length) fsyncDir(dir);
}
