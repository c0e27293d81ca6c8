// Ballast beside the database. On a full disk SQLite cannot even delete (in WAL mode a delete
// appends pages to the WAL), so acknowledged rows would stay and be resent forever, and no new
// item could ever be written. Releasing this file gives the deletes the room they need; it is
// taken again once the disk has room.
import fs from 'node:fs';
import path from 'node:path';

export class DiskReserve {
  released = 0;

  /** `maxBytes`: the most it takes; never more than a quarter of the free space. */
  constructor(
    readonly file: string,
    private readonly maxBytes = 1024 * 1024,
  ) {}

  get present(): boolean {
    return fs.existsSync(this.file);
  }

  /** Creates the ballast if it is absent and the disk has room for it twice over. Never throws. */
  ensure(): void {
    try {
      if (this.present) return;
      const st = fs.statfsSync(path.dirname(this.file));
      const free = st.bavail * st.bsize;
      const size = Math.min(this.maxBytes, Math.floor(free / 4));
      if (size < 64 * 1024) return;
      const fd = fs.openSync(this.file, 'wx', 0o600);
      try {
        // Real blocks, not a sparse file: zeros written out.
        const chunk = Buffer.alloc(64 * 1024);
        for (let done = 0; done < size; done += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, size - done));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      // No room (or no statfs): try again later; a half-written ballast still helps.
    }
  }

  /** Frees the ballast; true if there was one to free. */
  release(): boolean {
    try {
      fs.unlinkSync(this.file);
      this.released++;
      return true;
    } catch {
      return false;
    }
  }
}
