// WebAuth on real files in a fresh temporary directory per test, with an injected clock:
// one-time setup (O_EXCL-style, mode 0600, argon2id hash, setup code), login, per-address
// lockout and the per-account delay (answered without running argon2), sessions with idle and
// absolute expiry, CSRF checks, and the helpers (LAN addresses, cookies). The same over real
// HTTP, with TOTP, password change and reset-admin: server.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import argon2 from 'argon2';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { SetupError, WebAuth, clearedCookie, isLanAddress, newAdmin, parseCookies, sessionCookie, writeAdminFile } from '../../src/web/auth.js';

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-auth-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const PASSWORD = 'Correct horse battery 9';
const MIN = 60_000;
const T0 = Date.UTC(2025, 4, 1, 8, 0, 0);

/** A WebAuth over a fresh directory and a clock the test moves by hand. */
function makeAuth(opts: { idleMs?: number; maxAgeMs?: number } = {}) {
  const clock = { t: T0 };
  const dir = tmpDir();
  const auth = new WebAuth({ dir, now: () => clock.t, ...opts });
  auth.load();
  return { auth, dir, clock, file: path.join(dir, 'web-admin.json') };
}

async function withPassword(opts: { idleMs?: number; maxAgeMs?: number } = {}) {
  const a = makeAuth(opts);
  await a.auth.setup({ password: PASSWORD, setupCode: a.auth.setupCode! }, '10.0.0.1');
  return a;
}

async function setupError(p: Promise<unknown>): Promise<SetupError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SetupError);
  return err as SetupError;
}

describe('setup', () => {
  it('sets the password once: file mode 0600 with an argon2id hash, never the password', async () => {
    const { auth, dir, file } = makeAuth();
    expect(auth.setupRequired).toBe(true);
    expect(fs.existsSync(file)).toBe(false);

    const s = await auth.setup({ password: PASSWORD, setupCode: auth.setupCode! }, '10.0.0.1');
    expect(s.token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 bytes base64url
    expect(s.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.csrf).not.toBe(s.token);
    expect(auth.setupRequired).toBe(false);
    expect(auth.session(s.token)).toEqual({ user: 'admin', csrf: s.csrf, createdAt: T0 });

    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const text = fs.readFileSync(file, 'utf8');
    expect(text).not.toContain(PASSWORD);
    const json = JSON.parse(text) as { user: string; passwordHash: string; createdAt: number };
    expect(Object.keys(json).sort()).toEqual(['createdAt', 'passwordChangedAt', 'passwordHash', 'trustedAddresses', 'user']);
    expect(json.user).toBe('admin');
    expect(json.createdAt).toBe(T0);
    // argon2id with the broker's parameters (hashPassword): m=19456, t=2, p=1, in any order.
    const params = /^\$argon2id\$v=19\$([^$]+)\$/.exec(json.passwordHash)?.[1];
    expect(params?.split(',').sort()).toEqual(['m=19456', 'p=1', 't=2']);
    expect(await argon2.verify(json.passwordHash, PASSWORD)).toBe(true);
    expect(fs.readdirSync(dir)).toEqual(['web-admin.json']); // no temp file left

    const again = await setupError(auth.setup({ password: 'Another long password 1', setupCode: 'X' }, '10.0.0.1'));
    expect(again.code).toBe('exists');
    expect(again.message).toContain(file);
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
  });

  it('refuses a second setup from a fresh instance, with or without load()', async () => {
    const { auth, dir, file } = await withPassword();
    void auth;
    const text = fs.readFileSync(file, 'utf8');

    const loaded = new WebAuth({ dir });
    loaded.load();
    expect(loaded.setupRequired).toBe(false);
    expect((await setupError(loaded.setup({ password: 'Another long password 1', setupCode: 'X' }, '10.0.0.1'))).code).toBe('exists');

    // Without load(): setup still looks at the file first (as every call does: reset-admin may
    // have changed it), and the exclusive create would refuse anyway.
    const unloaded = new WebAuth({ dir });
    expect((await setupError(unloaded.setup({ password: 'Another long password 1', setupCode: 'X' }, '10.0.0.1'))).code).toBe('exists');
    expect(unloaded.setupRequired).toBe(false); // it took up the existing file
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
    expect(fs.readdirSync(dir)).toEqual(['web-admin.json']);
  });

  it('lets only one of two concurrent setups win', async () => {
    const dir = tmpDir();
    const a = new WebAuth({ dir });
    const b = new WebAuth({ dir });
    a.load();
    b.load();
    const results = await Promise.allSettled([a.setup({ password: 'Password number one!', setupCode: a.setupCode! }, '10.0.0.1'), b.setup({ password: 'Password number two!', setupCode: b.setupCode! }, '10.0.0.2')]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected).toHaveLength(1);
    expect((rejected[0]!.reason as SetupError).code).toBe('exists');
  });

  it('refuses passwords under 12 characters and counts characters, not bytes', async () => {
    const { auth, file } = makeAuth();
    const code = auth.setupCode!;
    for (const weak of ['', 'Short-1', 'Abcdefgh-12', '密码密码密码密码密A1']) {
      const err = await setupError(auth.setup({ password: weak, setupCode: code }, '10.0.0.1'));
      expect(err.code).toBe('weak');
      expect(err.message).toMatch(/at least 12 characters/);
    }
    expect(fs.existsSync(file)).toBe(false);
    expect(auth.setupRequired).toBe(true);
    await auth.setup({ password: '密码密码密码密码密码A1', setupCode: code }, '10.0.0.1'); // exactly 12 characters, 3 classes
    expect(auth.setupRequired).toBe(false);
    expect((await auth.login('密码密码密码密码密码A1', '192.168.1.5')).ok).toBe(true);
  });

  it('needs the setup code of this start, compared whatever the case and dashes; a new code each load', async () => {
    const { auth, dir } = makeAuth();
    const code = auth.setupCode!;
    expect(code).toMatch(/^[A-HJKMNP-Z2-9]{10}$/);
    const other = new WebAuth({ dir });
    other.load();
    expect(other.setupCode).not.toBe(code);
    const err = await setupError(auth.setup({ password: PASSWORD, setupCode: other.setupCode! }, '10.0.0.1'));
    expect(err.code).toBe('setup-code');
    await auth.setup({ password: PASSWORD, setupCode: ` ${code.slice(0, 4).toLowerCase()}-${code.slice(4)} ` }, '10.0.0.1');
    expect(auth.setupCode).toBeNull();
  });
});

describe('load', () => {
  it('reads an existing file so login works after a restart', async () => {
    const { dir } = await withPassword();
    const restarted = new WebAuth({ dir });
    restarted.load();
    expect(restarted.setupRequired).toBe(false);
    expect((await restarted.login(PASSWORD, '10.0.0.1')).ok).toBe(true);
    expect(await restarted.login('wrong password!', '10.0.0.1')).toEqual({ ok: false, reason: 'wrong' });
  });

  it('refuses a group- or world-readable web-admin.json, naming the file', async () => {
    const { dir, file } = await withPassword();
    for (const mode of [0o644, 0o640, 0o604]) {
      fs.chmodSync(file, mode);
      const auth = new WebAuth({ dir });
      expect(() => auth.load()).toThrow(file);
      expect(() => auth.load()).toThrow(/chmod 600/);
      expect(() => auth.setupRequired).toThrow(/chmod 600/); // a bad file refuses everything, never re-opens setup
    }
    fs.chmodSync(file, 0o600);
    expect(() => new WebAuth({ dir }).load()).not.toThrow();
  });

  it('refuses a malformed web-admin.json, naming the file', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'web-admin.json');
    const cases = ['not json', '[]', '{"user":"admin","passwordHash":"plaintext","createdAt":1}', '{"user":"admin","passwordHash":"$argon2id$v=19$m=19456,t=2,p=1$x$y"}'];
    for (const text of cases) {
      fs.writeFileSync(file, text, { mode: 0o600 });
      fs.chmodSync(file, 0o600);
      expect(() => new WebAuth({ dir }).load(), text).toThrow(file);
    }
    fs.writeFileSync(file, '{"user":"admin","passwordHash":"plaintext","createdAt":1}');
    expect(() => new WebAuth({ dir }).load()).toThrow(/passwordHash: not an argon2id hash/);
  });
});

describe('login', () => {
  it('answers no-password before setup, then right and wrong passwords', async () => {
    const { auth } = makeAuth();
    expect(await auth.login(PASSWORD, '10.0.0.1')).toEqual({ ok: false, reason: 'no-password' });
    await auth.setup({ password: PASSWORD, setupCode: auth.setupCode! }, '10.0.0.1');

    const ok = await auth.login(PASSWORD, '10.0.0.1');
    expect(ok.ok).toBe(true);
    if (!ok.ok) throw new Error('unreachable');
    expect(auth.session(ok.token)).toEqual({ user: 'admin', csrf: ok.csrf, createdAt: T0 });

    expect(await auth.login('Correct horse battery 9 ', '10.0.0.1')).toEqual({ ok: false, reason: 'wrong' });
    expect(await auth.login('', '10.0.0.1')).toEqual({ ok: false, reason: 'wrong' });
    // Each login is a new session with its own tokens.
    const ok2 = await auth.login(PASSWORD, '10.0.0.1');
    if (!ok2.ok) throw new Error('expected success');
    expect(ok2.token).not.toBe(ok.token);
    expect(ok2.csrf).not.toBe(ok.csrf);
  });

  it('the lock runs on the monotonic clock: a wall-clock step neither lifts it nor stretches it', async () => {
    const clock = { t: T0, mono: 1000 };
    const auth = new WebAuth({ dir: tmpDir(), now: () => clock.t, mono: () => clock.mono });
    auth.load();
    await auth.setup({ password: PASSWORD, setupCode: auth.setupCode! }, '10.0.0.1');
    for (let i = 1; i <= 5; i++) await auth.login(`wrong ${i}`, '192.168.1.50');
    // NTP moves the wall clock a day ahead: still locked for the full 15 minutes.
    clock.t += 86_400_000;
    expect(await auth.login(PASSWORD, '192.168.1.50')).toEqual({ ok: false, reason: 'locked', retryAfterS: 900 });
    // Then back two days: the lock still ends 15 minutes after it began.
    clock.t -= 2 * 86_400_000;
    clock.mono += 15 * MIN;
    expect((await auth.login(PASSWORD, '192.168.1.50')).ok).toBe(true);
  });

  it('locks an address for 15 minutes after 5 failures within 15 minutes; other addresses still log in', async () => {
    const { auth, clock } = await withPassword();
    for (let i = 1; i <= 4; i++) {
      expect(await auth.login(`wrong ${i}`, '192.168.1.50')).toEqual({ ok: false, reason: 'wrong' });
      clock.t += MIN;
    }
    expect(await auth.login('wrong 5', '192.168.1.50')).toEqual({ ok: false, reason: 'wrong', lockout: 'address', retryAfterS: 900 });

    expect(await auth.login(PASSWORD, '192.168.1.50')).toEqual({ ok: false, reason: 'locked', retryAfterS: 900 });
    // The same host through an IPv4-mapped IPv6 socket is the same address.
    expect(await auth.login(PASSWORD, '::ffff:192.168.1.50')).toEqual({ ok: false, reason: 'locked', retryAfterS: 900 });
    clock.t += 60_000;
    expect(await auth.login(PASSWORD, '192.168.1.50')).toEqual({ ok: false, reason: 'locked', retryAfterS: 840 });
    clock.t += 500;
    expect(await auth.login(PASSWORD, '192.168.1.50')).toEqual({ ok: false, reason: 'locked', retryAfterS: 840 }); // rounded up

    expect((await auth.login(PASSWORD, '192.168.1.51')).ok).toBe(true);

    clock.t = T0 + 4 * MIN + 15 * MIN; // the lock began at the 5th failure
    expect((await auth.login(PASSWORD, '192.168.1.50')).ok).toBe(true);
  });

  it('does not lock an address whose 5 failures are spread over more than 15 minutes', async () => {
    const { auth, clock } = await withPassword();
    for (let i = 1; i <= 8; i++) {
      expect(await auth.login(`wrong ${i}`, '10.9.9.9')).toMatchObject({ ok: false, reason: 'wrong' });
      clock.t += 4 * MIN; // at most 4 failures in any 15-minute window
    }
    expect((await auth.login(PASSWORD, '10.9.9.9')).ok).toBe(true);
  });

  it('delays the account after 5 consecutive failures from many addresses: 2^k s, at most 120 s; never a lock', async () => {
    const { auth, clock } = await withPassword();
    for (let i = 1; i <= 4; i++) expect(await auth.login(`wrong ${i}`, `10.0.1.${i}`)).toEqual({ ok: false, reason: 'wrong' });
    expect(await auth.login('wrong 5', '10.0.1.5')).toEqual({ ok: false, reason: 'wrong', lockout: 'account', retryAfterS: 2 });
    // Everyone waits the delay, a fresh address with the right password too, but only that long.
    expect(await auth.login(PASSWORD, '10.0.2.1')).toEqual({ ok: false, reason: 'throttled', retryAfterS: 2 });
    clock.t += 2000;
    expect(await auth.login('wrong 6', '10.0.1.6')).toEqual({ ok: false, reason: 'wrong' });
    expect(await auth.login(PASSWORD, '10.0.2.1')).toEqual({ ok: false, reason: 'throttled', retryAfterS: 4 });
    for (let i = 7; i <= 40; i++) {
      clock.t += 120_000;
      expect(await auth.login(`wrong ${i}`, `10.0.1.${i}`)).toEqual({ ok: false, reason: 'wrong' });
    }
    expect(await auth.login(PASSWORD, 'fd00::1')).toEqual({ ok: false, reason: 'throttled', retryAfterS: 120 });
    clock.t += 120_000;
    expect((await auth.login(PASSWORD, '10.0.2.1')).ok).toBe(true);
  });

  it('the account delay never holds an address the admin logged in from (an attacker cannot keep the admin out)', async () => {
    const { auth, clock } = await withPassword();
    expect((await auth.login(PASSWORD, '192.168.1.20')).ok).toBe(true);
    // One wrong password each time the delay passes, from a few addresses under their own lock.
    for (let i = 1; i <= 30; i++) {
      clock.t += 120_000;
      await auth.login(`wrong ${i}`, `10.0.9.${i % 3}`);
    }
    expect(await auth.login(PASSWORD, '10.0.2.1')).toMatchObject({ ok: false, reason: 'throttled' });
    // The admin's own address gets in at once, and survives a reload of web-admin.json.
    expect((await auth.login(PASSWORD, '192.168.1.20')).ok).toBe(true);
    const again = new WebAuth({ dir: path.dirname(auth.file), now: () => clock.t });
    again.load();
    for (let i = 1; i <= 6; i++) await again.login(`wrong ${i}`, `10.0.8.${i}`);
    expect((await again.login(PASSWORD, '192.168.1.20')).ok).toBe(true);
    // A wrong password from the trusted address is still counted against that address.
    for (let i = 0; i < 5; i++) await again.login(`wrong again ${i}`, '192.168.1.20');
    expect(await again.login(PASSWORD, '192.168.1.20')).toMatchObject({ ok: false, reason: 'locked' });
  });

  it('answers a locked login without running argon2', async () => {
    const { auth, clock } = await withPassword();
    const verify = vi.spyOn(argon2, 'verify');
    for (let i = 0; i < 5; i++) await auth.login(`wrong ${i}`, '10.1.1.1');
    expect(verify).toHaveBeenCalledTimes(5);

    const started = performance.now();
    for (let i = 0; i < 50; i++) {
      expect(await auth.login(PASSWORD, '10.1.1.1')).toMatchObject({ ok: false, reason: 'locked' });
    }
    const perLogin = (performance.now() - started) / 50;
    expect(verify).toHaveBeenCalledTimes(5);
    expect(perLogin).toBeLessThan(20);

    // For scale: one real verify on this machine (once the account's 2 s delay has passed).
    clock.t += 2000;
    const t = performance.now();
    await auth.login(PASSWORD, '10.1.1.2');
    expect(verify).toHaveBeenCalledTimes(6);
    expect(performance.now() - t).toBeGreaterThan(perLogin);
  });

  it('runs argon2 at most 5 times for a burst of parallel guesses from one address', async () => {
    const { auth } = await withPassword();
    const verify = vi.spyOn(argon2, 'verify');
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => auth.login(`guess ${i}`, '10.2.2.2')));
    expect(verify).toHaveBeenCalledTimes(5);
    expect(results.filter((r) => !r.ok && r.reason === 'wrong')).toHaveLength(5);
    expect(results.filter((r) => !r.ok && r.reason === 'locked')).toHaveLength(25);
  });

  it('resets the address and the account counters on success', async () => {
    const { auth } = await withPassword();
    // Address: 4 failures, a success, 4 more: still not locked.
    for (let i = 0; i < 4; i++) expect(await auth.login(`wrong ${i}`, '10.3.3.3')).toEqual({ ok: false, reason: 'wrong' });
    expect((await auth.login(PASSWORD, '10.3.3.3')).ok).toBe(true);
    for (let i = 0; i < 4; i++) expect(await auth.login(`wrong ${i}`, '10.3.3.3')).toEqual({ ok: false, reason: 'wrong' });
    expect((await auth.login(PASSWORD, '10.3.3.3')).ok).toBe(true);

    // Account: 4 failures from 4 addresses, a success, 4 more: still no delay.
    const spray = async (tag: string) => {
      for (let i = 0; i < 4; i++) expect(await auth.login(`wrong ${i}`, `10.${tag}.0.${i}`)).toEqual({ ok: false, reason: 'wrong' });
    };
    await spray('4');
    expect((await auth.login(PASSWORD, '10.5.5.5')).ok).toBe(true);
    await spray('6');
    expect((await auth.login(PASSWORD, '10.5.5.5')).ok).toBe(true);
    // And the 5th in a row does start it: the counter really counts.
    await spray('7');
    expect(await auth.login('wrong', '10.8.8.8')).toMatchObject({ ok: false, reason: 'wrong', lockout: 'account' });
  });

  it('forgets addresses whose failures are older than the window', async () => {
    const { auth, clock } = await withPassword();
    // Speed: only the bookkeeping matters here.
    vi.spyOn(argon2, 'verify').mockImplementation(async (_hash, pw) => pw === PASSWORD);
    for (let i = 0; i < 15; i++) {
      expect(await auth.login('wrong', `10.10.0.${i}`)).toMatchObject({ reason: 'wrong' });
      // A success elsewhere now and then keeps the account's delay from starting.
      if (i % 4 === 3) expect((await auth.login(PASSWORD, '10.99.0.1')).ok).toBe(true);
    }
    expect(auth.trackedAddresses).toBe(15);
    clock.t += 16 * MIN;
    await auth.login('wrong', '10.10.1.1');
    expect(auth.trackedAddresses).toBe(1);
  });
});

describe('a change on disk (community-gateway reset-admin)', () => {
  it('ends every session and takes up the new hash on the next call; a deleted file re-opens setup with a new code', async () => {
    const codes: string[] = [];
    const dir = tmpDir();
    const auth = new WebAuth({ dir, onSetupCode: (c) => codes.push(c) });
    auth.load();
    expect(codes).toHaveLength(1);
    const s = await auth.setup({ password: PASSWORD, setupCode: codes[0]! }, '10.0.0.1');
    expect(auth.session(s.token)).not.toBeNull();
    writeAdminFile(path.join(dir, 'web-admin.json'), await newAdmin('Reset-password-2026', Date.now()));
    expect(auth.session(s.token)).toBeNull();
    expect((await auth.login(PASSWORD, '10.0.0.1')).ok).toBe(false);
    expect((await auth.login('Reset-password-2026', '10.0.0.1')).ok).toBe(true);
    fs.rmSync(path.join(dir, 'web-admin.json'));
    expect(auth.setupRequired).toBe(true);
    expect(codes).toHaveLength(2);
    expect(auth.setupCode).toBe(codes[1]);
  });

  it('a login whose argon2 ran while the file was replaced opens no session and writes nothing back', async () => {
    const { auth, file } = await withPassword();
    const real = argon2.verify.bind(argon2);
    vi.spyOn(argon2, 'verify').mockImplementation(async (hash, pw) => {
      const ok = await real(hash, pw);
      writeAdminFile(file, await newAdmin('Reset-password-2026', Date.now())); // reset-admin, meanwhile
      return ok;
    });
    const before = await auth.login(PASSWORD, '10.0.0.1');
    expect(before).toEqual({ ok: false, reason: 'wrong' });
    vi.restoreAllMocks();
    expect(await argon2.verify(JSON.parse(fs.readFileSync(file, 'utf8')).passwordHash, 'Reset-password-2026')).toBe(true); // the reset stands
    expect((await auth.login('Reset-password-2026', '10.0.0.2')).ok).toBe(true);
  });
});

describe('sessions', () => {
  it('end after 15 minutes idle; each use restarts the idle timer; alive() does not', async () => {
    const { auth, clock } = await withPassword();
    const s = await auth.login(PASSWORD, '10.0.0.1');
    if (!s.ok) throw new Error('expected success');
    clock.t += 14 * MIN;
    expect(auth.session(s.token)?.user).toBe('admin');
    clock.t += 14 * MIN; // 28 min after login, 14 idle
    expect(auth.session(s.token)?.user).toBe('admin');
    clock.t += 14 * MIN;
    expect(auth.alive(s.token)).toBe(true); // the event stream's check: no activity
    clock.t += 1 * MIN;
    expect(auth.alive(s.token)).toBe(false);
    expect(auth.session(s.token)).toBeNull();
    clock.t -= 30 * MIN; // gone for good, not just hidden
    expect(auth.session(s.token)).toBeNull();
  });

  it('end 12 hours after login however active, and idle/max-age are configurable', async () => {
    const { auth, clock } = await withPassword();
    const s = await auth.login(PASSWORD, '10.0.0.1');
    if (!s.ok) throw new Error('expected success');
    for (let i = 1; i < 72; i++) {
      clock.t += 10 * MIN;
      expect(auth.session(s.token), `after ${i * 10} min`).not.toBeNull();
    }
    clock.t += 10 * MIN; // 12 h
    expect(auth.session(s.token)).toBeNull();

    const short = await withPassword({ idleMs: 1000, maxAgeMs: 5000 });
    const t = await short.auth.login(PASSWORD, '10.0.0.1');
    if (!t.ok) throw new Error('expected success');
    short.clock.t += 999;
    expect(short.auth.session(t.token)).not.toBeNull();
    short.clock.t += 1000;
    expect(short.auth.session(t.token)).toBeNull();
  });

  it('checking CSRF does not extend a session', async () => {
    const { auth, clock } = await withPassword();
    const s = await auth.login(PASSWORD, '10.0.0.1');
    if (!s.ok) throw new Error('expected success');
    clock.t += 10 * MIN;
    expect(auth.checkCsrf(s.token, s.csrf)).toBe(true);
    clock.t += 5 * MIN;
    expect(auth.checkCsrf(s.token, s.csrf)).toBe(false);
    expect(auth.session(s.token)).toBeNull();
  });

  it('logout ends the session and only that one', async () => {
    const { auth } = await withPassword();
    const a = await auth.login(PASSWORD, '10.0.0.1');
    const b = await auth.login(PASSWORD, '10.0.0.2');
    if (!a.ok || !b.ok) throw new Error('expected success');
    auth.logout(a.token);
    expect(auth.session(a.token)).toBeNull();
    expect(auth.checkCsrf(a.token, a.csrf)).toBe(false);
    expect(auth.session(b.token)?.csrf).toBe(b.csrf);
    auth.logout('no-such-token'); // harmless
    expect(auth.session(undefined)).toBeNull();
    expect(auth.session('')).toBeNull();
  });

  it('checkCsrf is true only for the exact token of that session', async () => {
    const { auth } = await withPassword();
    const a = await auth.login(PASSWORD, '10.0.0.1');
    const b = await auth.login(PASSWORD, '10.0.0.2');
    if (!a.ok || !b.ok) throw new Error('expected success');
    expect(auth.checkCsrf(a.token, a.csrf)).toBe(true);
    expect(auth.checkCsrf(a.token, b.csrf)).toBe(false); // another session's token
    expect(auth.checkCsrf(a.token, `${a.csrf}x`)).toBe(false);
    expect(auth.checkCsrf(a.token, a.csrf.slice(0, -1))).toBe(false);
    expect(auth.checkCsrf(a.token, a.csrf.toUpperCase())).toBe(false);
    expect(auth.checkCsrf(a.token, '')).toBe(false);
    expect(auth.checkCsrf(a.token, undefined)).toBe(false);
    expect(auth.checkCsrf(undefined, a.csrf)).toBe(false);
    expect(auth.checkCsrf('forged', a.csrf)).toBe(false);
    expect(auth.checkCsrf(a.csrf, a.csrf)).toBe(false); // the CSRF token is not a session token
  });
});

describe('isLanAddress', () => {
  const table: [string, boolean][] = [
    ['127.0.0.1', true],
    ['127.255.1.2', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['10.0.0.1', true],
    ['10.255.255.255', true],
    ['172.15.0.1', false],
    ['172.16.0.1', true],
    ['172.31.255.255', true],
    ['172.32.0.1', false],
    ['192.168.0.1', true],
    ['192.169.0.1', false],
    ['169.254.10.20', true],
    ['169.253.0.1', false],
    ['8.8.8.8', false],
    ['0.0.0.0', false],
    ['100.64.0.1', false], // carrier-grade NAT is not the site LAN
    ['fe80::1', true],
    ['fe80::1%eth0', true],
    ['febf::1', true],
    ['fec0::1', false],
    ['fc00::1', true],
    ['fd12::1', true],
    ['fe00::1', false],
    ['2001:db8::1', false],
    ['::', false],
    ['::ffff:10.1.2.3', true],
    ['::FFFF:192.168.1.5', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:c0a8:105', true], // ::ffff:192.168.1.5 in hex groups
    ['0:0:0:0:0:ffff:10.1.2.3', true],
    ['::ffff:8.8.8.8', false],
    ['::ffff:172.15.0.1', false],
    ['::10.1.2.3', false], // IPv4-compatible, not mapped
    ['64:ff9b::10.1.2.3', false],
    ['', false],
    ['localhost', false],
    ['10.0.0', false],
    ['256.1.1.1', false],
    ['192.168.1.5:8080', false],
  ];
  it.each(table)('%s → %s', (ip, lan) => {
    expect(isLanAddress(ip)).toBe(lan);
  });
});

describe('cookies', () => {
  it('parses ordinary and odd Cookie headers', () => {
    expect(parseCookies(undefined)).toEqual({});
    expect(parseCookies('')).toEqual({});
    expect(parseCookies('cgw_session=abc')).toEqual({ cgw_session: 'abc' });
    expect(parseCookies('a=1; cgw_session=abc-_9;lang=zh-CN')).toEqual({ a: '1', cgw_session: 'abc-_9', lang: 'zh-CN' });
    expect(parseCookies('  a = 1 ;;  ; b=2;')).toEqual({ a: '1', b: '2' });
    expect(parseCookies('noequals; =orphan; c=3')).toEqual({ c: '3' });
    expect(parseCookies('d=x=y=z')).toEqual({ d: 'x=y=z' });
    expect(parseCookies('e="quoted value"')).toEqual({ e: 'quoted value' });
    expect(parseCookies('f=%E4%B8%AD%E6%96%87; g=%zz')).toEqual({ f: '中文', g: '%zz' });
    expect(parseCookies('empty=; h=1')).toEqual({ empty: '', h: '1' });
    expect(parseCookies('cgw_session=first; cgw_session=second')).toEqual({ cgw_session: 'first' });
    const proto = parseCookies('__proto__=x; constructor=y');
    expect(proto['__proto__']).toBe('x');
    expect(proto['constructor']).toBe('y');
    expect(Object.getPrototypeOf(proto)).toBeNull();
    expect(({} as Record<string, unknown>)['x']).toBeUndefined(); // nothing polluted
  });

  it('sets and clears the session cookie with the documented attributes', () => {
    expect(sessionCookie('tok_en-1')).toBe('cgw_session=tok_en-1; HttpOnly; SameSite=Strict; Path=/');
    const cleared = clearedCookie();
    expect(cleared).toMatch(/^cgw_session=; /);
    expect(cleared).toContain('HttpOnly');
    expect(cleared).toContain('SameSite=Strict');
    expect(cleared).toContain('Path=/');
    expect(cleared).toContain('Max-Age=0');
    expect(parseCookies(cleared.split(';')[0])).toEqual({ cgw_session: '' });
  });
});
