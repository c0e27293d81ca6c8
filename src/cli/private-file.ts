// A file only its owner may read (a private key, a signed bundle that carries a site config):
// written to a temporary name at exactly 0600, fsynced, then linked (or renamed) into place.
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir } from '../store/fsync-dir.js';

/** Writes `text` to `file` with mode 0600, durably, never leaving a half-written file: through
 * a temporary file in the same folder, then a hard link (which fails if `file` exists, so two
 * runs cannot both think they created it) or, with `force`, a rename over it. */
export function writePrivateFile(file: string, text: string, force: boolean): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    // The mode given to open is reduced by the umask only; fchmod makes it exactly 0600.
    fs.fchmodSync(fd, 0o600);
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    if (force) fs.renameSync(tmp, file);
    else {
      fs.linkSync(tmp, file);
      fs.unlinkSync(tmp);
    }
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dir);
}
