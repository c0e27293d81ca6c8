// The site secret keys the HMAC pseudonyms of identifiers (resident card numbers). It is
// generated on first start into a file only the daemon can read (0600), never leaves the box,
// and differs per site, so the same card gives unrelated pseudonyms at two sites.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const SECRET_BYTES = 32;

export function loadOrCreateSiteSecret(file: string): Buffer {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  if (!fs.existsSync(file)) {
    // Written whole to a temporary file, then linked into place: link() fails if the file
    // appeared meanwhile, so two starts never race to different secrets, and a crash never
    // leaves an empty secret file behind.
    const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    try {
      const fd = fs.openSync(tmp, 'wx', 0o600);
      fs.writeSync(fd, `${crypto.randomBytes(SECRET_BYTES).toString('hex')}\n`);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`privacy.secretFile ${file}: cannot create: ${(err as Error).message}`);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  const st = fs.statSync(file);
  if ((st.mode & 0o077) !== 0) {
    throw new Error(`privacy.secretFile ${file}: readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it`);
  }
  const hex = fs.readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`privacy.secretFile ${file}: not a 32-byte hex secret`);
  return Buffer.from(hex, 'hex');
}

/** A keyed pseudonym: HMAC-SHA256 under the site secret, 16 hex digits (64 bits: collisions
 * among a community's few thousand residents are negligible). */
export function pseudonymiser(secret: Buffer): (value: number | string) => string {
  return (value) => crypto.createHmac('sha256', secret).update(`id:${String(value)}`).digest('hex').slice(0, 16);
}
