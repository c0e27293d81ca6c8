// The admin's second factor: TOTP (RFC 6238 with the parameters every authenticator app
// supports: HMAC-SHA-1, 6 digits, 30 s steps) through the otpauth library, and single-use
// recovery codes kept only as SHA-256 hashes (each code has ~50 bits of entropy, so a fast
// hash is enough: there is nothing to brute-force offline that a slow hash would protect).
import crypto from 'node:crypto';
import os from 'node:os';
import * as OTPAuth from 'otpauth';
import qrcode from 'qrcode-generator';

export const TOTP_PERIOD_S = 30;
const TOTP_DIGITS = 6;
/** RFC 6238 5.2: accept one step either side for clock drift between the box and the phone. */
const TOTP_WINDOW = 1;
/** RFC 4226 4 R6: at least 128 bits, 160 recommended. */
const SECRET_BYTES = 20;
export const RECOVERY_CODES = 10;
/** Upper case letters and digits without 0/O, 1/I/L: readable and typable on a phone. */
export const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';

/** A random code of `n` characters from CODE_ALPHABET (node:crypto, uniform). */
export function randomCode(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += CODE_ALPHABET[crypto.randomInt(CODE_ALPHABET.length)];
  return s;
}

/** Upper case, only alphabet characters: "abcde-fghjk" and "ABCDE FGHJK" are the same code. */
export function normaliseCode(s: string): string {
  return s.toUpperCase().replace(/[^A-Z0-9]/g, '');
}

/** Constant-time equality of two short strings (hashed first, so lengths do not leak). */
export function sameCode(a: string, b: string): boolean {
  const x = crypto.createHash('sha256').update(a).digest();
  const y = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(x, y);
}

function totp(secretBase32: string, issuer: string): OTPAuth.TOTP {
  return new OTPAuth.TOTP({
    issuer,
    label: `admin@${os.hostname()}`,
    algorithm: 'SHA1',
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_S,
    secret: OTPAuth.Secret.fromBase32(secretBase32),
  });
}

export interface Enrolment {
  /** Base32 (RFC 4648), to type into an app by hand. */
  secret: string;
  /** otpauth://totp/... (the Key URI format authenticator apps scan). */
  uri: string;
  /** The URI as a QR code: an SVG image in a data: URI (the page's CSP allows data: images). */
  qr: string;
}

export function newEnrolment(issuer = 'community-gateway'): Enrolment {
  const secret = new OTPAuth.Secret({ size: SECRET_BYTES }).base32;
  const uri = totp(secret, issuer).toString();
  const qr = qrcode(0, 'M');
  qr.addData(uri);
  qr.make();
  const svg = qr.createSvgTag({ cellSize: 4, margin: 4, scalable: true });
  return { secret, uri, qr: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}` };
}

/** The time step (RFC 6238 4.2, T) a 6-digit code matches at `now`, within the window; null if none. */
export function totpStep(secretBase32: string, code: string, now: number): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const delta = totp(secretBase32, 'x').validate({ token: code, timestamp: now, window: TOTP_WINDOW });
  if (delta === null) return null;
  return OTPAuth.TOTP.counter({ period: TOTP_PERIOD_S, timestamp: now }) + delta;
}

export const isBase32Secret = (s: string): boolean => /^[A-Z2-7]{32}$/.test(s);

export function hashRecoveryCode(code: string): string {
  return crypto.createHash('sha256').update(normaliseCode(code)).digest('hex');
}

/** Ten fresh codes (shown once, as XXXXX-XXXXX) and their hashes (stored). */
export function newRecoveryCodes(): { codes: string[]; hashes: string[] } {
  const codes = Array.from({ length: RECOVERY_CODES }, () => {
    const c = randomCode(10);
    return `${c.slice(0, 5)}-${c.slice(5)}`;
  });
  return { codes, hashes: codes.map(hashRecoveryCode) };
}

/** Index of the stored hash this code matches, or -1; every hash is compared (constant time). */
export function matchRecoveryCode(hashes: readonly string[], code: string): number {
  const h = Buffer.from(hashRecoveryCode(code), 'hex');
  let found = -1;
  hashes.forEach((stored, i) => {
    const s = Buffer.from(stored, 'hex');
    if (s.length === h.length && crypto.timingSafeEqual(s, h) && found < 0) found = i;
  });
  return found;
}
