// The box's state folder: the admin password hash, the audit log, the site secret, the page's
// TLS key. It is fixed when the daemon starts (systemd's StateDirectory, or --state-dir) and
// never follows the site config: a technician moving storage.path must not re-open first-run
// setup, lose the audit trail or change every pseudonym (issue 12, finding 4).
import fs from 'node:fs';
import path from 'node:path';

/** Files of the state folder that a site cannot recreate without losing something. */
export const STATE_FILES = ['web-admin.json', 'site-secret', 'audit.log', 'privacy-ledger.json'] as const;

/** --state-dir, else $STATE_DIRECTORY (systemd sets it from StateDirectory=; several are
 * colon-separated, the first is ours), else ./data (where the demo config keeps its database). */
export function resolveStateDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  const fromEnv = env.STATE_DIRECTORY?.split(':')[0];
  return path.resolve(cwd, flag ?? (fromEnv || 'data'));
}

/** An install from before the fixed state folder kept these files beside the database: they
 * are moved into the state folder once (never overwriting one there), so the admin password,
 * the audit trail and the pseudonyms carry on. Returns the files moved. */
export function adoptLegacyState(stateDir: string, legacyDir: string): string[] {
  const from = path.resolve(legacyDir);
  const to = path.resolve(stateDir);
  if (from === to) return [];
  const moved: string[] = [];
  for (const name of STATE_FILES) {
    const src = path.join(from, name);
    const dst = path.join(to, name);
    if (!fs.existsSync(src) || fs.existsSync(dst)) continue;
    try {
      fs.renameSync(src, dst);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw new Error(`cannot move ${src} into the state folder ${to}: ${(err as Error).message}`);
      // Another filesystem: copy (mode kept), make it durable, then remove the old one.
      fs.copyFileSync(src, dst, fs.constants.COPYFILE_EXCL);
      fs.chmodSync(dst, fs.statSync(src).mode & 0o777);
      const fd = fs.openSync(dst, 'r');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.rmSync(src);
    }
    moved.push(name);
  }
  return moved;
}
