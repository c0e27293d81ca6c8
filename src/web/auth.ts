// The web page's single admin account: first-start setup, login with per-address and
// per-account lockout, in-memory sessions with idle and absolute expiry, and CSRF tokens.
// The password itself is never stored, only its argon2id hash in web-admin.json (mode 0600).
// See docs/WEB.md, "Security model".
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import argon2 from 'argon2';
import { z } from 'zod';
import { hashPassword } from '../broker/access.js';
import { fsyncDir } from '../store/fsync-dir.js';

export const ADMIN_FILE = 'web-admin.json';
export const SESSION_COOKIE = 'cgw_session';
const ADMIN_USER = 'admin';
const MIN_PASSWORD_CHARS = 10;
const TOKEN_BYTES = 32;

const DEFAULT_IDLE_MS = 60 * 60_000;
const DEFAULT_MAX_AGE_MS = 12 * 60 * 60_000;
/** Per address: this many failures within FAILURE_WINDOW_MS lock the address for LOCK_MS. */
const ADDRESS_MAX_FAILURES = 5;
/** Per account: this many consecutive failures from anywhere lock the account for LOCK_MS. */
const ACCOUNT_MAX_FAILURES = 20;
const FAILURE_WINDOW_MS = 15 * 60_000;
const LOCK_MS = 15 * 60_000;
/** Hard cap on tracked addresses; past it the oldest entries go. The account lock still holds
 * an attacker who cycles through more addresses than this. */
const MAX_TRACKED_ADDRESSES = 10_000;
const PRUNE_EVERY_MS = 60_000;

export interface AuthOptions {
  /** Directory holding web-admin.json (beside the storage file). */
  dir: string;
  /** A session ends after this long without a request (default 60 min). */
  idleMs?: number;
  /** A session ends this long after login, however active (default 12 h). */
  maxAgeMs?: number;
  now?: () => number;
}

export type LoginResult =
  | { ok: true; token: string; csrf: string }
  | {
      ok: false;
      reason: 'wrong' | 'locked' | 'no-password';
      retryAfterS?: number;
      /** Set on the failure that started a lock, so the caller can log and audit `lockout`. */
      lockout?: 'address' | 'account';
    };

export class SetupError extends Error {
  constructor(
    readonly code: 'exists' | 'weak',
    message: string,
  ) {
    super(message);
    this.name = 'SetupError';
  }
}

const AdminFile = z.object({
  user: z.string().min(1),
  passwordHash: z.string().startsWith('$argon2id$', { error: 'not an argon2id hash' }),
  createdAt: z.number(),
});
type Admin = z.infer<typeof AdminFile>;

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

export class WebAuth {
  private readonly file: string;
  private readonly idleMs: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;
  private admin: Admin | null = null;
  private readonly sessions = new Map<string, Session>();
  private readonly addresses = new Map<string, FailureRecord>();
  private account = { failures: 0, lockedUntil: 0 };
  private lastPrune = 0;

  constructor(opts: AuthOptions) {
    this.file = path.join(opts.dir, ADMIN_FILE);
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.maxAgeMs = opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.now = opts.now ?? Date.now;
  }

  /** Reads web-admin.json if present. Throws, naming the file, if it is group/world-accessible or malformed. */
  load(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.admin = null;
        return;
      }
      throw new Error(`${this.file}: cannot read: ${(err as Error).message}`);
    }
    let text: string;
    try {
      // fstat on the open descriptor: the mode checked is the mode of the file read.
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new Error(`${this.file}: not a regular file`);
      if ((st.mode & 0o077) !== 0) {
        throw new Error(`${this.file}: accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it`);
      }
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new Error(`${this.file}: not valid JSON (${(err as Error).message}); restore it, or delete it to set a new password from the LAN`);
    }
    const parsed = AdminFile.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      throw new Error(`${this.file}: ${where}${issue?.message ?? 'invalid'}; restore it, or delete it to set a new password from the LAN`);
    }
    this.admin = parsed.data;
  }

  get setupRequired(): boolean {
    return this.admin === null;
  }

  /** Sets the first password and logs in. Only once: a second call gets SetupError('exists'). */
  async setup(password: string): Promise<{ token: string; csrf: string }> {
    if (this.admin) throw new SetupError('exists', `the admin password is already set (${this.file}); log in instead`);
    if ([...password].length < MIN_PASSWORD_CHARS) {
      throw new SetupError('weak', `the password needs at least ${MIN_PASSWORD_CHARS} characters`);
    }
    const admin: Admin = { user: ADMIN_USER, passwordHash: await hashPassword(password), createdAt: this.now() };
    const dir = path.dirname(this.file);
    fs.mkdirSync(dir, { recursive: true });
    // As for the site secret: written whole to a private temp file, then linked into place.
    // link() is exclusive like O_EXCL (so two setups cannot both win), and a crash never
    // leaves a half-written file that would block both setup and login.
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
        // Someone set it meanwhile (or load() was not called): take up the file that won.
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
    return this.createSession(admin.user);
  }

  async login(password: string, clientIp: string): Promise<LoginResult> {
    const admin = this.admin;
    if (!admin) return { ok: false, reason: 'no-password' };
    const now = this.now();
    const ip = normaliseAddress(clientIp);
    // While locked, answer before argon2: a locked-out client must not be able to burn CPU.
    const lockedUntil = Math.max(this.addresses.get(ip)?.lockedUntil ?? 0, this.account.lockedUntil);
    if (lockedUntil > now) return { ok: false, reason: 'locked', retryAfterS: Math.ceil((lockedUntil - now) / 1000) };
    // Counted as a failure before verifying, so concurrent attempts see it: a burst of parallel
    // guesses gets at most the allowed number of argon2 runs, not one per request. A success
    // below undoes it.
    const lockout = this.recordFailure(ip, now);
    const ok = await argon2.verify(admin.passwordHash, password).catch((err: unknown) => {
      throw new Error(`${this.file}: cannot verify against the stored hash (${(err as Error).message}); delete the file to set a new password from the LAN`);
    });
    if (!ok) return lockout ? { ok: false, reason: 'wrong', lockout, retryAfterS: LOCK_MS / 1000 } : { ok: false, reason: 'wrong' };
    this.addresses.delete(ip);
    this.account = { failures: 0, lockedUntil: 0 };
    this.pruneSessions(this.now());
    return { ok: true, ...this.createSession(admin.user) };
  }

  logout(token: string): void {
    this.sessions.delete(token);
  }

  /** The session for a cookie token, refreshing its idle timer; null if unknown or expired. */
  session(token: string | undefined): { user: string; csrf: string; createdAt: number } | null {
    const s = this.live(token);
    if (!s) return null;
    s.lastSeen = this.now();
    return { user: s.user, csrf: s.csrf, createdAt: s.createdAt };
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

  /** Counts one failure for the address and the account; returns which lock it started, if any. */
  private recordFailure(ip: string, now: number): 'address' | 'account' | undefined {
    this.pruneAddresses(now);
    const rec = this.addresses.get(ip) ?? { failures: [], lockedUntil: 0 };
    // Re-inserted so the map's order is least recently failed first, for the cap below.
    this.addresses.delete(ip);
    this.addresses.set(ip, rec);
    rec.failures = rec.failures.filter((t) => now - t < FAILURE_WINDOW_MS);
    rec.failures.push(now);
    let lockout: 'address' | 'account' | undefined;
    if (rec.failures.length >= ADDRESS_MAX_FAILURES) {
      rec.lockedUntil = now + LOCK_MS;
      rec.failures = []; // after the lock, the address gets a fresh allowance
      lockout = 'address';
    }
    this.account.failures++;
    if (this.account.failures >= ACCOUNT_MAX_FAILURES) {
      this.account = { failures: 0, lockedUntil: now + LOCK_MS };
      lockout = 'account';
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
