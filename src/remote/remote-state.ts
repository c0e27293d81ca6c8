// The highest remote bundle version this gateway accepted for applying, in the state folder
// (remote-version.json). Written atomically and fsynced BEFORE the apply: a power cut during the
// apply can cost that version (the platform sends a higher one), but can never make a version
// appliable twice. Read once at start; a file that cannot be read is a start-up error, not
// "version 0", since treating it as 0 would open every old bundle to replay.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { atomicWrite } from '../config/config-store.js';

export const REMOTE_STATE_FILE = 'remote-version.json';

const StateFile = z.strictObject({
  format: z.literal(1),
  version: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  keyId: z.string().max(64),
  ts: z.number().int().nonnegative(),
});

export class RemoteVersionStore {
  readonly file: string;
  private highest: number | null = null;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, REMOTE_STATE_FILE);
  }

  /** Reads the file: absent means no bundle was ever applied. */
  load(): void {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.highest = null;
        return;
      }
      throw new Error(`${this.file}: cannot read: ${(err as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new Error(`${this.file}: not JSON (${(err as Error).message}); remote configuration cannot tell which bundle versions were applied`);
    }
    const r = StateFile.safeParse(json);
    if (!r.success) {
      const i = r.error.issues[0]!;
      throw new Error(`${this.file}: ${i.path.join('.') || '(file)'}: ${i.message}; remote configuration cannot tell which bundle versions were applied`);
    }
    this.highest = r.data.version;
  }

  /** The highest version accepted; null when none. */
  get version(): number | null {
    return this.highest;
  }

  /** Records `version` as used, durably, before it is applied. */
  use(version: number, keyId: string, now = Date.now()): void {
    if (this.highest !== null && version <= this.highest) throw new Error(`remote version ${version} is not above ${this.highest}`);
    atomicWrite(this.file, `${JSON.stringify({ format: 1, version, keyId, ts: now })}\n`, 0o600);
    this.highest = version;
  }
}
