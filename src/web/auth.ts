// The web page's single admin account: first-start setup (LAN only, with a one-time setup
// code from the daemon's log), login with a password and an optional second factor (TOTP or
// a recovery code), per-address lockout and a per-account growing delay, in-memory sessions
// with idle and absolute expiry, and CSRF tokens. The password itself is never stored, only
// its argon2id hash in web-admin.json (mode 0600). See docs/WEB.md, "Security model".
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import argon2 from 'argon2';
import { z } from 'zod';
import { hashPassword } from '../broker/access.js';
import { fsyncDir } from '../store/fsync-dir.js';
import { atomicWrite } from '../config/config-store.js';
import { checkPassword, policyMessage } from '../security/password-policy.js';
import { isBase32Secret, matchRecoveryCode, newRecoveryCodes, normaliseCode, randomCode, sameCode, totpStep } from './second-factor.js';
import { monoNow } from '../time/monotonic.js';

export const ADMIN_FILE = 'web-admin.json';
export const SESSION_COOKIE = 'cgw_session';
export const ADMIN_USER = 'admin';
const TOKEN_BYTES = 32;
/** 10 characters of a 31-letter alphabet: ~49 bits, far beyond reach with 5 tries per 15 min. */
export const SETUP_CODE_CHARS = 10;

export const DEFAULT_IDLE_MS = 15 * 60_000;
export const DEFAULT_MAX_AGE_MS = 12 * 60 * 60_000;
/** Per address: this many failures within FAILURE_WINDOW_MS lock the address for LOCK_MS. */
const ADDRESS_MAX_FAILURES = 5;
/** Login addresses remembered in web-admin.json (exempt from the account-wide delay). */
const MAX_TRUSTED_ADDRESSES = 16;
const FAILURE_WINDOW_MS = 15 * 60_000;
const LOCK_MS = 15 * 60_000;
/** Per account: after this many consecutive failures from anywhere, each further attempt must
 * wait 2^k seconds after the last failure (k = failures beyond this), at most
 * ACCOUNT_MAX_DELAY_S. A delay, not a lock: an attacker spraying from many addresses slows the
 * real admin down by at most that long, and never locks them out. */
const ACCOUNT_FREE_FAILURES = 5;
const ACCOUNT_MAX_DELAY_S = 120;
/** Hard cap on tracked addresses; past it the oldest entries go. The account delay still holds
 * an attacker who cycles through more addresses than this. */
const MAX_TRACKED_ADDRESSES = 10_000;
const PRUNE_EVERY_MS = 60_000;

export interface AuthOptions {
  /** Directory holding web-admin.json (the state directory). */
  dir: string;
  /** A session ends after this long without a request (default 15 min). */
  idleMs?: number;
  /** A session ends this long after login, however active (default 12 h). */
  maxAgeMs?: number;
  /** Refuse a setup without a second factor, and refuse to switch it off (web.requireTotp). */
  requireTotp?: boolean;
  /** Called with each new setup code (at load while no password is set, and when the file is
   * deleted under a running daemon): the daemon logs it for the technician. */
  onSetupCode?: (code: string) => void;
  /** Called when web-admin.json changed under the running daemon (reset-admin). */
  onExternalChange?: (what: 'changed' | 'deleted') => void;
  /** Read at call time (not captured), so a test can move Date. */
  now?: () => number;
  /** Monotonic clock for the login locks and delays (a wall-clock step must not lift or
   * stretch them); default monoNow, or `now` when only that is given (a test's one clock). */
  mono?: () => number;
}

export type Refusal = {
  ok: false;
  /** wrong: password, code or setup code did not match; locked: the address is locked;
   * throttled: the account's delay has not passed; no-password: setup first. */
  reason: 'wrong' | 'locked' | 'throttled' | 'no-password';
  retryAfterS?: number;
  /** Set on the failure that started a lock or delay, so the caller can log and audit it. */
  lockout?: 'address' | 'account';
};

export type LoginResult = { ok: true; token: string; csrf: string; via?: 'totp' | 'recovery' } | Refusal;

export class SetupError extends Error {
  constructor(
    readonly code: 'exists' | 'weak' | 'setup-code' | 'locked' | 'totp' | 'totp-required',
    message: string,
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = 'SetupError';
  }
}

/** A refused account change (password change, TOTP on/off) that is not a credential failure. */
export class AccountError extends Error {
  constructor(
    readonly code: 'weak' | 'totp' | 'totp-required' | 'state',
    message: string,
  ) {
    super(message);
    this.name = 'AccountError';
  }
}

const AdminFile = z.object({
  user: z.string().min(1),
  passwordHash: z.string().startsWith('$argon2id$', { error: 'not an argon2id hash' }),
  createdAt: z.number(),
  passwordChangedAt: z.number().optional(),
  totp: z
    .object({
      secret: z.string().refine(isBase32Secret, { error: 'not a 32-character base32 secret' }),
      /** The last time step a code was accepted for (RFC 6238 5.2: a code is used once). */
      lastStep: z.number().int(),
      enabledAt: z.number(),
    })
    .optional(),
  /** SHA-256 hex of each unused recovery code. */
  recoveryCodes: z.array(z.string().regex(/^[0-9a-f]{64}$/)).optional(),
  /** Addresses the admin has logged in from (newest first): the account-wide delay does not
   * apply to them, so guesses from elsewhere cannot keep the admin out. */
  trustedAddresses: z.array(z.string().max(64)).max(16).optional(),
});
export type Admin = z.infer<typeof AdminFile>;

interface Session {
  user: string;
  csrf: string;
  createdAt: number;
  lastSeen: number;
}

interface FailureRecord {
  /** Failure times within the window, oldest first. */
  failures: number[];
  lockedUntil: number;
}

export interface SetupRequest {
  password: string;
  setupCode: string;
  /** Enrol a second factor now: the secret the page showed and a code from the app. */
  totp?: { secret: string; code: string };
}

/** Writes `admin` to `file` atomically (temp file 0600, fsync, rename, fsync of the folder). */
export function writeAdminFile(file: string, admin: Admin): void {
  atomicWrite(file, `${JSON.stringify(admin)}\n`, 0o600);
}

export async function newAdmin(password: string, now: number): Promise<Admin> {
  return { user: ADMIN_USER, passwordHash: await hashPassword(password), createdAt: now, passwordChangedAt: now };
}

export class WebAuth {
  readonly file: string;
  private idleMs: number;
  private maxAgeMs: number;
  private requireTotp: boolean;
  private readonly nowFn: () => number;
  private readonly mono: () => number;
  private admin: Admin | null = null;
  /** What the file was when last read or written: a difference is an outside change. */
  private identity: string | null = null;
  private code: string | null = null;
  private readonly sessions = new Map<string, Session>();
  private readonly addresses = new Map<string, FailureRecord>();
  private account = { failures: 0, nextAt: 0 };
  private lastPrune = 0;

  constructor(private readonly opts: AuthOptions) {
    this.file = path.join(opts.dir, ADMIN_FILE);
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.maxAgeMs = opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.requireTotp = opts.requireTotp ?? false;
    this.nowFn = opts.now ?? (() => Date.now());
    this.mono = opts.mono ?? opts.now ?? monoNow;
  }

  private now(): number {
    return this.nowFn();
  }

  /** A config applied from the page changed web.sessionIdleMinutes, sessionMaxHours or
   * requireTotp: they hold from the next request on, for the sessions already open too. */
  reconfigure(opts: Pick<AuthOptions, 'idleMs' | 'maxAgeMs' | 'requireTotp'>): void {
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.maxAgeMs = opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.requireTotp = opts.requireTotp ?? false;
  }

  /** web.requireTotp is on but no second factor is enrolled (a site turned it on after setup,
   * or reset-admin removed the factor): a session may then only enrol one (server.ts). */
  get enrolmentRequired(): boolean {
    return this.requireTotp && this.admin !== null && !this.admin.totp;
  }

  /** Reads web-admin.json if present. Throws, naming the file, if it is group/world-accessible or malformed. */
  load(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.admin = null;
        this.identity = null;
        this.newSetupCode();
        return;
      }
      throw new Error(`${this.file}: cannot read: ${(err as Error).message}`);
    }
    let text: string;
    let identity: string;
    try {
      // fstat on the open descriptor: the mode checked is the mode of the file read.
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new Error(`${this.file}: not a regular file`);
      if ((st.mode & 0o077) !== 0) {
        throw new Error(`${this.file}: accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it`);
      }
      identity = identityOf(st);
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new Error(`${this.file}: not valid JSON (${(err as Error).message}); restore it, or run community-gateway reset-admin`);
    }
    const parsed = AdminFile.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      throw new Error(`${this.file}: ${where}${issue?.message ?? 'invalid'}; restore it, or run community-gateway reset-admin`);
    }
    this.admin = parsed.data;
    this.identity = identity;
    this.code = null;
  }

  /** Takes up a change made by another process (community-gateway reset-admin): a new hash or
   * a deleted file ends every session at once; a deleted file re-opens setup with a new code.
   * One stat per call: cheap next to a request, and no watcher to miss an event. */
  private sync(): void {
    let id: string | null = null;
    try {
      id = identityOf(fs.statSync(this.file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${this.file}: cannot stat: ${(err as Error).message}`);
    }
    if (id === this.identity) return;
    const had = this.admin !== null;
    this.sessions.clear();
    this.account = { failures: 0, nextAt: 0 };
    if (id === null) {
      this.admin = null;
      this.identity = null;
      if (had) {
        this.newSetupCode();
        this.opts.onExternalChange?.('deleted');
      }
      return;
    }
    this.load();
    this.opts.onExternalChange?.('changed');
  }

  private newSetupCode(): void {
    this.code = randomCode(SETUP_CODE_CHARS);
    this.opts.onSetupCode?.(this.code);
  }

  get setupRequired(): boolean {
    this.sync();
    return this.admin === null;
  }

  /** The current one-time setup code, while setup is required (the daemon logs it). */
  get setupCode(): string | null {
    return this.admin === null ? this.code : null;
  }

  /** Whether login asks for a second factor. */
  get secondFactor(): boolean {
    this.sync();
    return this.admin?.totp !== undefined;
  }

  get totpRequired(): boolean {
    return this.requireTotp;
  }

  /** Unused recovery codes left (for the account page). */
  get recoveryCodesLeft(): number {
    return this.admin?.recoveryCodes?.length ?? 0;
  }

  /** Sets the first password and logs in. Only once, only with the setup code from the log;
   * a wrong code counts as a failure against the address. */
  async setup(req: SetupRequest, clientIp: string): Promise<{ token: string; csrf: string; recoveryCodes?: string[] }> {
    this.sync();
    if (this.admin) throw new SetupError('exists', `the admin password is already set (${this.file}); log in instead`);
    const now = this.now();
    const mono = this.mono();
    const ip = normaliseAddress(clientIp);
    const lockedUntil = this.addresses.get(ip)?.lockedUntil ?? 0;
    if (lockedUntil > mono) {
      const s = Math.ceil((lockedUntil - mono) / 1000);
      throw new SetupError('locked', `too many wrong setup codes: try again in ${s} s`, s);
    }
    if (!this.code || !sameCode(normaliseCode(req.setupCode), this.code)) {
      this.recordFailure(ip, mono, false);
      throw new SetupError('setup-code', 'wrong setup code: it is printed in the daemon log (journalctl -u community-gateway) at start');
    }
    const problems = checkPassword(req.password, { user: ADMIN_USER });
    if (problems.length) throw new SetupError('weak', policyMessage(problems));
    let totp: Admin['totp'];
    let recovery: { codes: string[]; hashes: string[] } | undefined;
    if (req.totp) {
      if (!isBase32Secret(req.totp.secret)) throw new SetupError('totp', 'totp.secret: not a secret this box issued');
      const step = totpStep(req.totp.secret, req.totp.code.trim(), now);
      if (step === null) throw new SetupError('totp', 'totp.code: the code does not match: check the phone clock and type the current code');
      totp = { secret: req.totp.secret, lastStep: step, enabledAt: now };
      recovery = newRecoveryCodes();
    } else if (this.requireTotp) {
      throw new SetupError('totp-required', 'this site requires a second factor (web.requireTotp): enrol an authenticator app');
    }
    const admin: Admin = { ...(await newAdmin(req.password, now)), ...(totp ? { totp, recoveryCodes: recovery!.hashes } : {}), trustedAddresses: [ip] };
    const dir = path.dirname(this.file);
    fs.mkdirSync(dir, { recursive: true });
    // Written whole to a private temp file, then linked into place. link() is exclusive like
    // O_EXCL (so two setups cannot both win), and a crash never leaves a half-written file.
    const tmp = `${this.file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    try {
      const fd = fs.openSync(tmp, 'wx', 0o600);
      try {
        fs.writeSync(fd, `${JSON.stringify(admin)}\n`);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.linkSync(tmp, this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        try {
          this.load();
        } catch {
          // load() reports its own problem on the next start; the answer here is still "exists".
        }
        throw new SetupError('exists', `the admin password is already set (${this.file}); log in instead`);
      }
      throw new Error(`${this.file}: cannot create: ${(err as Error).message}`);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    fsyncDir(dir);
    this.admin = admin;
    this.identity = identityOf(fs.statSync(this.file));
    this.code = null;
    this.addresses.delete(ip);
    return { ...this.createSession(admin.user), ...(recovery ? { recoveryCodes: recovery.codes } : {}) };
  }

  /** Password and, when enrolled, a TOTP or recovery code. The delay and lock are answered
   * before argon2, so a throttled client burns no CPU. */
  async login(password: string, clientIp: string, code?: string): Promise<LoginResult> {
    this.sync();
    if (!this.admin) return { ok: false, reason: 'no-password' };
    const r = await this.verify(password, code, clientIp);
    if (!r.ok) return r;
    this.pruneSessions(this.now());
    return { ok: true, ...this.createSession(this.admin.user), ...(r.via ? { via: r.via } : {}) };
  }

  /** Checks the admin's credentials with the same throttling and counting as a login. */
  private async verify(password: string, code: string | undefined, clientIp: string): Promise<{ ok: true; via?: 'totp' | 'recovery' } | Refusal> {
    const admin = this.admin;
    if (!admin) return { ok: false, reason: 'no-password' };
    const now = this.now();
    const mono = this.mono();
    const ip = normaliseAddress(clientIp);
    const addrUntil = this.addresses.get(ip)?.lockedUntil ?? 0;
    if (addrUntil > mono) return { ok: false, reason: 'locked', retryAfterS: Math.ceil((addrUntil - mono) / 1000) };
    // The account-wide delay holds off guesses spread over many addresses; an address the admin
    // logged in from before is not held by it (only by its own lock), or an attacker sending one
    // wrong password per delay could keep the admin out for good.
    const trusted = (admin.trustedAddresses ?? []).includes(ip);
    if (!trusted && this.account.nextAt > mono) return { ok: false, reason: 'throttled', retryAfterS: Math.ceil((this.account.nextAt - mono) / 1000) };
    // Counted as a failure before verifying, so concurrent attempts see it: a burst of parallel
    // guesses gets at most the allowed number of argon2 runs. A success below undoes it.
    const lockout = this.recordFailure(ip, mono, !trusted);
    const pwOk = await argon2.verify(admin.passwordHash, password).catch((err: unknown) => {
      throw new Error(`${this.file}: cannot verify against the stored hash (${(err as Error).message}); run community-gateway reset-admin`);
    });
    // reset-admin may have replaced the file while argon2 ran: a check against the old hash
    // must not open a session (or write the old record back over the new one).
    this.sync();
    if (this.admin !== admin) return { ok: false, reason: 'wrong' };
    let via: 'totp' | 'recovery' | undefined;
    let factorOk = true;
    let step: number | null = null;
    let recoveryIndex = -1;
    if (admin.totp) {
      const c = (code ?? '').trim();
      step = totpStep(admin.totp.secret, c, now);
      // RFC 6238 5.2: a code is accepted once; a step at or before the last used one is a replay.
      if (step !== null && step > admin.totp.lastStep) via = 'totp';
      else if (c !== '' && !/^\d{6}$/.test(c)) {
        recoveryIndex = matchRecoveryCode(admin.recoveryCodes ?? [], c);
        if (recoveryIndex >= 0) via = 'recovery';
      }
      factorOk = via !== undefined;
    }
    if (!pwOk || !factorOk) {
      const retryAfterS = lockout === 'address' ? LOCK_MS / 1000 : lockout === 'account' ? Math.ceil((this.account.nextAt - mono) / 1000) : undefined;
      return { ok: false, reason: 'wrong', ...(lockout ? { lockout, retryAfterS } : {}) };
    }
    // Both factors right: spend the code, remember the address, then clear the counters.
    let next = admin;
    if (via === 'totp' && step !== null) next = { ...next, totp: { ...next.totp!, lastStep: step } };
    if (via === 'recovery') next = { ...next, recoveryCodes: (next.recoveryCodes ?? []).filter((_, i) => i !== recoveryIndex) };
    if ((next.trustedAddresses ?? [])[0] !== ip) next = { ...next, trustedAddresses: [ip, ...(next.trustedAddresses ?? []).filter((a) => a !== ip)].slice(0, MAX_TRUSTED_ADDRESSES) };
    if (next !== admin) this.save(admin, next);
    this.addresses.delete(ip);
    this.account = { failures: 0, nextAt: 0 };
    return via ? { ok: true, via } : { ok: true };
  }

  /** Password change from a logged-in page: the current password (and code, if enrolled) is
   * checked like a login; the new one must pass the policy. Every other session ends. */
  async changePassword(token: string, current: string, next: string, clientIp: string, code?: string): Promise<Refusal | { ok: true }> {
    this.sync();
    if (!this.live(token) || !this.admin) return { ok: false, reason: 'no-password' };
    const problems = checkPassword(next, { user: ADMIN_USER });
    if (problems.length) throw new AccountError('weak', policyMessage(problems));
    if (next === current) throw new AccountError('weak', 'the new password is the same as the current one');
    const r = await this.verify(current, code, clientIp);
    if (!r.ok) return r;
    const base = this.admin!;
    const passwordHash = await hashPassword(next);
    this.save(base, { ...base, passwordHash, passwordChangedAt: this.now() });
    this.endOtherSessions(token);
    return { ok: true };
  }

  /** Enrols (or re-enrols) TOTP: current password, the secret the page showed, and a code from
   * the app for it. Returns fresh recovery codes (the old ones are void). */
  async enableTotp(token: string, password: string, secret: string, code: string, clientIp: string): Promise<Refusal | { ok: true; recoveryCodes: string[] }> {
    this.sync();
    if (!this.live(token) || !this.admin) return { ok: false, reason: 'no-password' };
    if (this.admin.totp) throw new AccountError('state', 'a second factor is already enrolled: switch it off first');
    if (!isBase32Secret(secret)) throw new AccountError('totp', 'secret: not a secret this box issued');
    const now = this.now();
    const step = totpStep(secret, code.trim(), now);
    if (step === null) throw new AccountError('totp', 'code: the code does not match: check the phone clock and type the current code');
    const r = await this.verify(password, undefined, clientIp);
    if (!r.ok) return r;
    const recovery = newRecoveryCodes();
    const base = this.admin!;
    this.save(base, { ...base, totp: { secret, lastStep: step, enabledAt: now }, recoveryCodes: recovery.hashes });
    this.endOtherSessions(token);
    return { ok: true, recoveryCodes: recovery.codes };
  }

  /** Switches the second factor off: current password and a current code (or recovery code). */
  async disableTotp(token: string, password: string, code: string, clientIp: string): Promise<Refusal | { ok: true }> {
    this.sync();
    if (!this.live(token) || !this.admin) return { ok: false, reason: 'no-password' };
    if (!this.admin.totp) throw new AccountError('state', 'no second factor is enrolled');
    if (this.requireTotp) throw new AccountError('totp-required', 'this site requires a second factor (web.requireTotp)');
    const r = await this.verify(password, code, clientIp);
    if (!r.ok) return r;
    const base = this.admin!;
    const { totp: _t, recoveryCodes: _r, ...rest } = base;
    this.save(base, rest);
    this.endOtherSessions(token);
    return { ok: true };
  }

  /** Writes `admin`, derived from `base`; refused if the file is no longer `base` (another
   * process, reset-admin, wrote it since), so a reset is never overwritten by an old record. */
  private save(base: Admin, admin: Admin): void {
    this.sync();
    if (this.admin !== base) throw new Error(`${this.file}: changed on disk meanwhile (reset-admin?): try again`);
    writeAdminFile(this.file, admin);
    this.admin = admin;
    this.identity = identityOf(fs.statSync(this.file));
  }

  private endOtherSessions(keep: string): void {
    for (const t of [...this.sessions.keys()]) if (t !== keep) this.sessions.delete(t);
  }

  logout(token: string): void {
    this.sessions.delete(token);
  }

  /** The session for a cookie token, refreshing its idle timer; null if unknown or expired. */
  session(token: string | undefined): { user: string; csrf: string; createdAt: number } | null {
    this.sync();
    const s = this.live(token);
    if (!s) return null;
    s.lastSeen = this.now();
    return { user: s.user, csrf: s.csrf, createdAt: s.createdAt };
  }

  /** Whether the session is still live, without counting as activity: for the page's live
   * event stream, which must not keep an unattended page logged in past the idle timeout. */
  alive(token: string | undefined): boolean {
    this.sync();
    return this.live(token) !== null;
  }

  /** Constant-time comparison of a presented CSRF header with the session's token. */
  checkCsrf(token: string | undefined, presented: string | undefined): boolean {
    const s = this.live(token);
    if (!s || typeof presented !== 'string' || presented === '') return false;
    // Hashing first gives equal-length inputs, so neither content nor length leaks by timing.
    const a = crypto.createHash('sha256').update(s.csrf).digest();
    const b = crypto.createHash('sha256').update(presented).digest();
    return crypto.timingSafeEqual(a, b);
  }

  /** The live session for a token without touching its idle timer; expired ones are dropped. */
  private live(token: string | undefined): Session | null {
    if (!token) return null;
    const s = this.sessions.get(token);
    if (!s) return null;
    if (this.expired(s, this.now())) {
      this.sessions.delete(token);
      return null;
    }
    return s;
  }

  private expired(s: Session, now: number): boolean {
    return now - s.lastSeen >= this.idleMs || now - s.createdAt >= this.maxAgeMs;
  }

  private createSession(user: string): { token: string; csrf: string } {
    const now = this.now();
    const token = crypto.randomBytes(TOKEN_BYTES).toString('base64url');
    const csrf = crypto.randomBytes(TOKEN_BYTES).toString('base64url');
    this.sessions.set(token, { user, csrf, createdAt: now, lastSeen: now });
    return { token, csrf };
  }

  private pruneSessions(now: number): void {
    for (const [token, s] of this.sessions) if (this.expired(s, now)) this.sessions.delete(token);
  }

  /** Counts one failure for the address (and the account, for credential checks); returns
   * which lock or delay it started, if any. Times here are monotonic. */
  private recordFailure(ip: string, now: number, countAccount: boolean): 'address' | 'account' | undefined {
    this.pruneAddresses(now);
    const rec = this.addresses.get(ip) ?? { failures: [], lockedUntil: 0 };
    // Re-inserted so the map's order is least recently failed first, for the cap below.
    this.addresses.delete(ip);
    this.addresses.set(ip, rec);
    rec.failures = rec.failures.filter((t) => now - t < FAILURE_WINDOW_MS);
    rec.failures.push(now);
    let lockout: 'address' | 'account' | undefined;
    if (countAccount) {
      this.account.failures++;
      const k = this.account.failures - ACCOUNT_FREE_FAILURES;
      if (k >= 0) {
        this.account.nextAt = now + Math.min(2 ** (k + 1), ACCOUNT_MAX_DELAY_S) * 1000;
        if (k === 0) lockout = 'account';
      }
    }
    if (rec.failures.length >= ADDRESS_MAX_FAILURES) {
      rec.lockedUntil = now + LOCK_MS;
      rec.failures = []; // after the lock, the address gets a fresh allowance
      lockout = 'address';
    }
    while (this.addresses.size > MAX_TRACKED_ADDRESSES) {
      const oldest = this.addresses.keys().next().value;
      if (oldest === undefined) break;
      this.addresses.delete(oldest);
    }
    return lockout;
  }

  /** Drops addresses with no failure in the window and no lock, at most once a minute. */
  private pruneAddresses(now: number): void {
    if (now - this.lastPrune < PRUNE_EVERY_MS && this.addresses.size < MAX_TRACKED_ADDRESSES) return;
    this.lastPrune = now;
    for (const [ip, rec] of this.addresses) {
      const last = rec.failures[rec.failures.length - 1] ?? -Infinity;
      if (rec.lockedUntil <= now && now - last >= FAILURE_WINDOW_MS) this.addresses.delete(ip);
    }
  }

  /** Addresses currently tracked for lockout (for tests and diagnostics). */
  get trackedAddresses(): number {
    return this.addresses.size;
  }
}

function identityOf(st: fs.Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

/** One key per client: zone and brackets stripped, IPv4-mapped IPv6 counted as its IPv4 address. */
function normaliseAddress(ip: string): string {
  const bare = stripAddress(ip).toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  return mapped?.[1] ?? bare;
}

function stripAddress(ip: string): string {
  let s = ip.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  return zone >= 0 ? s.slice(0, zone) : s;
}

/** Loopback, RFC 1918, link-local, IPv6 ULA, and the IPv4-mapped IPv6 forms of the IPv4 ones. */
export function isLanAddress(ip: string): boolean {
  const s = stripAddress(ip);
  if (net.isIPv4(s)) return isLanV4(ipv4Bytes(s));
  if (!net.isIPv6(s)) return false;
  const b = ipv6Bytes(s);
  if (!b) return false;
  // ::ffff:a.b.c.d in any spelling (dotted or hex groups)
  if (b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return isLanV4(b.slice(12));
  if (b.slice(0, 15).every((x) => x === 0) && b[15] === 1) return true; // ::1
  const b0 = b[0] ?? 0;
  const b1 = b[1] ?? 0;
  if (b0 === 0xfe && (b1 & 0xc0) === 0x80) return true; // fe80::/10 link-local
  return (b0 & 0xfe) === 0xfc; // fc00::/7 unique local
}

function isLanV4(b: number[]): boolean {
  const [a = -1, c = -1] = b;
  return (
    a === 127 || // loopback
    a === 10 ||
    (a === 172 && c >= 16 && c <= 31) ||
    (a === 192 && c === 168) ||
    (a === 169 && c === 254) // link-local
  );
}

function ipv4Bytes(s: string): number[] {
  return s.split('.').map((x) => Number(x));
}

/** The 16 bytes of an IPv6 address already validated by net.isIPv6 (no zone); null if odd. */
function ipv6Bytes(s: string): number[] | null {
  let text = s.toLowerCase();
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (!net.isIPv4(tail)) return null;
    const [a = 0, b = 0, c = 0, d = 0] = ipv4Bytes(tail);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = 8 - head.length - rest.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return null;
  const groups = [...head, ...Array<string>(fill).fill('0'), ...rest];
  const out: number[] = [];
  for (const g of groups) {
    const v = parseInt(g, 16);
    if (!/^[0-9a-f]{1,4}$/.test(g) || Number.isNaN(v)) return null;
    out.push(v >> 8, v & 0xff);
  }
  return out;
}

/** Cookie header to name → value. Odd parts (no `=`, empty name) are skipped; the first of a
 * repeated name wins; values are unquoted and percent-decoded where valid. */
export function parseCookies(header: string | undefined): Record<string, string> {
  // No prototype: a cookie named __proto__ or constructor is just a key.
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!name || name in out) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      value = decodeURIComponent(value);
    } catch {
      // not valid percent-encoding: keep it as sent
    }
    out[name] = value;
  }
  return out;
}

/** `Secure` when the page is on HTTPS (web.https, the default), so the browser never sends the
 * cookie over plain HTTP (docs/WEB.md). No Max-Age: the cookie ends with the browser; the
 * server ends the session on idle and age. */
export function sessionCookie(token: string, secure = false): string {
  return `${SESSION_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/${secure ? '; Secure' : ''}`;
}

export function clearedCookie(secure = false): string {
  return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT${secure ? '; Secure' : ''}`;
}
