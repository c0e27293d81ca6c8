// One password policy for every password the box accepts from a person: the web admin's
// (first setup, change, `reset-admin`) and the local broker accounts' (`hash-password`).
// GB/T 22239-2019 8.1.4.1 a): identities have passwords of sufficient complexity, no default.
//
// Why 12 characters and 3 of 4 classes: the stored argon2id hash (m=19 MiB, t=2) costs an
// offline attacker tens of milliseconds per guess on a GPU-less box and still ~1 ms on a
// rig; 12 characters from three classes (>= 62^12 ~ 2^71 in the ideal, well over 2^40 for
// human-chosen ones) keeps even a stolen web-admin.json out of reach, while an online
// attacker is already held back by the login backoff. NIST SP 800-63B asks for at least 8
// and for a deny list; the Chinese baseline practice (GB/T 22239 assessors) expects length
// plus mixed classes, hence both.
export const MIN_PASSWORD_CHARS = 12;
export const MAX_PASSWORD_CHARS = 256;
export const MIN_CLASSES = 3;

/** Common, default and product passwords (compared case-insensitively, also with trailing
 * digits/punctuation stripped, so "Admin123456!" is caught as "admin"). Short on purpose:
 * the length and class rules do most of the work; this list catches what passes them anyway. */
const COMMON = [
  'admin', 'administrator', 'root', 'password', 'passw0rd', 'p@ssw0rd', 'p@ssword', 'qwerty', 'qwertyuiop',
  'asdfghjkl', 'zxcvbnm', 'letmein', 'welcome', 'changeme', 'default', 'iloveyou', 'abc', 'abcd', 'abcdef',
  'abc123', 'aa123456', 'raspberry', 'raspberrypi', 'pi', 'ubuntu', 'debian', 'guest', 'user', 'test',
  'mosquitto', 'mqtt', 'modbus', 'gateway', 'community', 'communitygateway', 'community-gateway', 'cgw',
  'iot', 'edge', 'edgegateway', 'woaini', 'woaini1314', 'huawei', 'zte', 'tplink', 'hikvision', 'dahua',
  'shequ', 'wangguan', 'mima', 'a1b2c3', 'q1w2e3r4', '1q2w3e4r', '1qaz2wsx', '1qaz@wsx', 'zaq12wsx',
];
/** Whole passwords that no rule above would catch. */
const COMMON_EXACT = ['12345678', '123456789', '1234567890', '12345678901', '123456789012', '1234567890123', '0987654321', '11111111', '00000000', '88888888', '66666666'];

export type PolicyReason = 'too-short' | 'too-long' | 'classes' | 'contains-user' | 'common';

export interface PolicyProblem {
  reason: PolicyReason;
  message: string;
}

function classes(pw: string): number {
  let n = 0;
  if (/\p{Ll}/u.test(pw)) n++;
  if (/\p{Lu}/u.test(pw)) n++;
  if (/\p{Nd}/u.test(pw)) n++;
  if (/[^\p{Ll}\p{Lu}\p{Nd}]/u.test(pw)) n++;
  return n;
}

/** The core of a password: lower case, without leading/trailing digits and punctuation. */
function core(pw: string): string {
  return pw.toLowerCase().replace(/^[\d\W_]+|[\d\W_]+$/gu, '');
}

function isCommon(pw: string): boolean {
  const lower = pw.toLowerCase();
  if (COMMON_EXACT.includes(lower)) return true;
  // Digits only in a run (12345678..., 1111...): any length.
  if (/^\d+$/.test(lower) && (/^(\d)\1+$/.test(lower) || '01234567890123456789'.includes(lower) || '98765432109876543210'.includes(lower))) return true;
  const c = core(pw);
  if (c === '' || COMMON.includes(c) || COMMON.includes(lower)) return true;
  // "P@ssw0rd" style substitutions.
  const plain = c.replace(/@/g, 'a').replace(/0/g, 'o').replace(/1/g, 'i').replace(/3/g, 'e').replace(/\$/g, 's');
  return COMMON.includes(plain);
}

/** Every rule the password breaks, empty if it is acceptable. Characters are counted as code
 * points (a Chinese character is one). */
export function checkPassword(password: string, opts: { user?: string } = {}): PolicyProblem[] {
  const out: PolicyProblem[] = [];
  const n = [...password].length;
  if (n < MIN_PASSWORD_CHARS) out.push({ reason: 'too-short', message: `needs at least ${MIN_PASSWORD_CHARS} characters` });
  if (n > MAX_PASSWORD_CHARS) out.push({ reason: 'too-long', message: `has more than ${MAX_PASSWORD_CHARS} characters` });
  if (classes(password) < MIN_CLASSES) out.push({ reason: 'classes', message: `needs at least ${MIN_CLASSES} of: lower-case letters, upper-case letters, digits, other characters` });
  const user = opts.user?.trim().toLowerCase();
  if (user && password.toLowerCase().includes(user)) out.push({ reason: 'contains-user', message: `must not contain the user name "${opts.user}"` });
  if (isCommon(password)) out.push({ reason: 'common', message: 'is a common or default password' });
  return out;
}

/** One line for a refusal: "the password needs ...; is a common ...". */
export function policyMessage(problems: PolicyProblem[]): string {
  return `the password ${problems.map((p) => p.message).join('; ')}`;
}
