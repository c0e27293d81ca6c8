// A site profile uploaded from the page (docs/WEB.md "Site tools"): checked exactly as the
// daemon will load it (checkProfileFile: schema, invariants, file name = id, no shipped id),
// then stored as <site profile folder>/<id>.yaml. The file is written and checked in a
// staging folder inside the site folder (a dot folder: never loaded), then renamed into place,
// so a crash leaves the old file or the new one, never half a profile, and what was checked is
// byte for byte what is stored. It takes effect when the daemon next starts.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { checkProfileFile, parseProfile, ProfileError } from '../config/profiles.js';
import { DRIVERS_DIR } from '../config/paths.js';
import { fsyncDir } from '../store/fsync-dir.js';

/** Read by the daemon's user and its group (the installer's admin group), nobody else. */
export const PROFILE_FILE_MODE = 0o640;
const DIR_MODE = 0o750;

export type UploadResult =
  | { ok: true; id: string; file: string; replaced: boolean; sha256: string }
  | { ok: false; reason: 'invalid' | 'clash' | 'exists'; file?: string; errors: string[] };

export interface UploadOptions {
  /** The site profile folder (siteProfileDir of the config file). */
  siteDir: string;
  shippedDir?: string;
  /** Replace a site profile of the same id (never a shipped one). */
  replace?: boolean;
}

export function uploadProfile(text: string, opts: UploadOptions): UploadResult {
  const shippedDir = opts.shippedDir ?? DRIVERS_DIR;
  // The schema first, on the text alone: its id is then safe to use as a file name.
  let id: string;
  try {
    id = parseProfile(text, 'uploaded profile').id;
  } catch (err) {
    if (err instanceof ProfileError) return { ok: false, reason: 'invalid', errors: err.problems };
    throw err;
  }
  const file = path.join(opts.siteDir, `${id}.yaml`);
  const existing = lstatOrNull(file);
  if (existing && !existing.isFile()) return { ok: false, reason: 'exists', file, errors: [`${file} exists and is not a plain file (a link or a folder): it is left as it is`] };
  fs.mkdirSync(opts.siteDir, { recursive: true, mode: DIR_MODE });
  const stage = fs.mkdtempSync(path.join(opts.siteDir, '.upload-'));
  try {
    const staged = path.join(stage, `${id}.yaml`);
    const fd = fs.openSync(staged, 'wx', PROFILE_FILE_MODE);
    try {
      fs.fchmodSync(fd, PROFILE_FILE_MODE); // exact mode, whatever the umask
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      checkProfileFile(staged, shippedDir);
    } catch (err) {
      if (!(err instanceof ProfileError)) throw err;
      // The problem names the shipped file; the file it would have been is named here.
      return { ok: false, reason: 'clash', file, errors: err.problems.map((p) => `${file}: ${p}`) };
    }
    if (existing && !opts.replace) {
      return { ok: false, reason: 'exists', file, errors: [`${file}: a site profile "${id}" is there already: send it again with replace to replace it`] };
    }
    // rename() replaces the directory entry itself: a link there would be replaced, not followed.
    fs.renameSync(staged, file);
    fsyncDir(opts.siteDir);
    return { ok: true, id, file, replaced: existing !== null, sha256: crypto.createHash('sha256').update(text).digest('hex') };
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

function lstatOrNull(file: string): fs.Stats | null {
  try {
    return fs.lstatSync(file);
  } catch {
    return null;
  }
}
