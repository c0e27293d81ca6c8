import fs from 'node:fs';

/** Makes a new or renamed file's directory entry durable (after fsync of the file itself).
 * Best effort: some filesystems refuse fsync on a directory; the data is on disk already. */
export function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // nothing more can be done
  }
}
