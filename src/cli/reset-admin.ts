// `community-gateway reset-admin`: on the box, as the service user or root, set a new admin
// password for the web page (or delete web-admin.json so the page asks for setup again, with a
// new setup code in the daemon log). A running daemon sees the file change on its next
// request and ends every session (WebAuth.sync), so no restart is needed and an old password
// cannot linger. Audited in the state directory's audit.log.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ADMIN_FILE, ADMIN_USER, newAdmin, writeAdminFile } from '../web/auth.js';
import { AuditLog } from '../web/audit-log.js';
import { checkPassword, policyMessage } from '../security/password-policy.js';

export interface ResetResult {
  file: string;
  mode: 'password' | 'delete';
  /** Whether a web-admin.json existed before. */
  existed: boolean;
  hadSecondFactor: boolean;
}

/** Who ran it, for the audit line: the sudo caller if any, else the process user. */
function operator(): string {
  const sudo = process.env.SUDO_USER;
  let me = 'unknown';
  try {
    me = os.userInfo().username;
  } catch {
    /* no passwd entry: keep the uid below */
  }
  return sudo && sudo !== me ? `${me} (sudo by ${sudo})` : `${me} (uid ${process.getuid?.() ?? '?'})`;
}

/** As root, files created for the daemon get the owner of the state directory (the service
 * user), or the daemon could not read web-admin.json or append to audit.log. */
function giveToDirOwner(file: string, dir: string): void {
  if (process.getuid?.() !== 0) return;
  const st = fs.statSync(dir);
  if (st.uid !== 0) fs.chownSync(file, st.uid, st.gid);
}

export async function resetAdmin(stateDir: string, opts: { delete: boolean; password?: string }): Promise<ResetResult> {
  if (!fs.existsSync(stateDir) || !fs.statSync(stateDir).isDirectory()) throw new Error(`${stateDir}: no such state directory (give --state-dir DIR)`);
  const file = path.join(stateDir, ADMIN_FILE);
  let existed = false;
  let hadSecondFactor = false;
  try {
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { totp?: unknown };
    existed = true;
    hadSecondFactor = json.totp !== undefined;
  } catch (err) {
    existed = fs.existsSync(file);
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && !existed) throw err;
  }
  let mode: ResetResult['mode'];
  if (opts.delete) {
    fs.rmSync(file, { force: true });
    mode = 'delete';
  } else {
    const pw = opts.password ?? '';
    const problems = checkPassword(pw, { user: ADMIN_USER });
    if (problems.length) throw new Error(policyMessage(problems));
    // A reset drops the second factor too: it is what one does when the phone is lost.
    writeAdminFile(file, await newAdmin(pw, Date.now()));
    giveToDirOwner(file, stateDir);
    mode = 'password';
  }
  const auditFile = path.join(stateDir, 'audit.log');
  // Rotation and retention are the daemon's, with the site's web.audit settings: this one line
  // never rotates the file, so it never applies the built-in budget to the site's log.
  const audit = new AuditLog(auditFile, Date.now, { maxFileBytes: Number.MAX_SAFE_INTEGER });
  try {
    audit.write({ user: operator(), ip: 'local', action: 'admin-reset', detail: { mode, existed, secondFactorRemoved: hadSecondFactor, via: 'cli' } });
  } finally {
    audit.close();
  }
  giveToDirOwner(auditFile, stateDir);
  return { file, mode, existed, hadSecondFactor };
}
