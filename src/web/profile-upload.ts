// A site profile uploaded from the page (docs/WEB.md "Site tools"): checked exactly as the
// daemon will load it (checkProfileText: schema, invariants, file name = id, no shipped id),
// then stored as <site profile folder>/<id>.yaml, whole or not at all (store/profile-files.ts):
// what was checked is byte for byte what is stored. It takes effect when the daemon next starts.
import crypto from 'node:crypto';
import path from 'node:path';
import { checkProfileText, parseProfile, ProfileError } from '../config/profiles.js';
import { DRIVERS_DIR } from '../config/paths.js';
import { existingFile, writeProfileFiles } from '../store/profile-files.js';

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
  const existing = existingFile(file);
  if (existing.kind === 'other') return { ok: false, reason: 'exists', file, errors: [`${file} exists and is not a plain file (a link or a folder): it is left as it is`] };
  try {
    checkProfileText(text, file, shippedDir);
  } catch (err) {
    if (!(err instanceof ProfileError)) throw err;
    // The problem names the shipped file; the file it would have been is named here.
    return { ok: false, reason: 'clash', file, errors: err.problems.map((p) => `${file}: ${p}`) };
  }
  if (existing.kind === 'file' && !opts.replace) {
    return { ok: false, reason: 'exists', file, errors: [`${file}: a site profile "${id}" is there already: send it again with replace to replace it`] };
  }
  writeProfileFiles(opts.siteDir, [{ name: `${id}.yaml`, text }]);
  return { ok: true, id, file, replaced: existing.kind === 'file', sha256: crypto.createHash('sha256').update(text).digest('hex') };
}
