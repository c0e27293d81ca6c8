// The technician page's HTTPS certificate (docs/WEB.md "HTTPS"). Either the site's own PEM pair
// (web.tls) or a self-signed ECDSA P-256 certificate made on first start into the state
// directory and reused afterwards, so its fingerprint stays the one the technician checked.
// Its SANs name the box as a browser may reach it: os.hostname(), <hostname>.local, localhost,
// 127.0.0.1, ::1 and the interface addresses at creation time.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generate } from 'selfsigned';
import { fsyncDir } from '../store/fsync-dir.js';

export const TLS_KEY_FILE = 'web-tls.key';
export const TLS_CERT_FILE = 'web-tls.crt';
/** Years of validity of the self-signed certificate: the box runs unattended for years and a
 * technician should not meet an "expired" page; a new one is made when it runs out anyway. */
const VALID_YEARS = 10;

export interface TlsMaterial {
  key: string;
  cert: string;
  /** SHA-256 of the DER certificate, as colon-separated upper-case hex (what browsers show). */
  fingerprint256: string;
  source: 'self-signed' | 'site';
  /** True when this start made a new self-signed certificate. */
  created: boolean;
  certFile: string;
  validTo: string;
  /** Why an existing self-signed pair was replaced, if it was. */
  replaced?: string;
}

/** The names and addresses a technician's browser may use for the box. */
export function boxNames(): { dns: string[]; ips: string[] } {
  const host = os.hostname().trim();
  const dns = [...new Set([host, host && !host.includes('.') ? `${host}.local` : '', 'localhost'].filter(Boolean))];
  const ips = new Set(['127.0.0.1', '::1']);
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) ips.add(a.address);
  return { dns, ips: [...ips] };
}

/** The site's own pair (`own`) or the self-signed one in `stateDir`, made if missing or unusable. */
export async function loadOrCreateTls(stateDir: string, own?: { certFile: string; keyFile: string }, now: () => number = Date.now): Promise<TlsMaterial> {
  if (own) {
    const cert = readPem(own.certFile, 'web.tls.certFile');
    const key = readPem(own.keyFile, 'web.tls.keyFile');
    const x = check(cert, key);
    if (typeof x === 'string') throw new Error(`web.tls: ${x}`);
    return { key, cert, fingerprint256: x.fingerprint256, source: 'site', created: false, certFile: path.resolve(own.certFile), validTo: new Date(x.validTo).toISOString() };
  }
  const keyFile = path.join(stateDir, TLS_KEY_FILE);
  const certFile = path.join(stateDir, TLS_CERT_FILE);
  let replaced: string | undefined;
  if (fs.existsSync(keyFile) || fs.existsSync(certFile)) {
    try {
      const key = fs.readFileSync(keyFile, 'utf8');
      const cert = fs.readFileSync(certFile, 'utf8');
      const x = check(cert, key);
      if (typeof x !== 'string' && Date.parse(x.validTo) > now()) {
        // A wider key file (restored from a backup, say) is narrowed again.
        if ((fs.statSync(keyFile).mode & 0o777) !== 0o600) fs.chmodSync(keyFile, 0o600);
        return { key, cert, fingerprint256: x.fingerprint256, source: 'self-signed', created: false, certFile, validTo: new Date(x.validTo).toISOString() };
      }
      replaced = typeof x === 'string' ? x : `expired on ${new Date(x.validTo).toISOString()}`;
    } catch (err) {
      replaced = (err as Error).message;
    }
  }
  const { dns, ips } = boxNames();
  const from = new Date(now() - 60_000); // a little slack for a clock that is slightly behind
  const to = new Date(from);
  to.setUTCFullYear(to.getUTCFullYear() + VALID_YEARS);
  const pems = await generate([{ name: 'commonName', value: dns[0] ?? 'community-gateway' }, { name: 'organizationName', value: 'community-gateway (self-signed)' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: from,
    notAfterDate: to,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [...dns.map((value) => ({ type: 2 as const, value })), ...ips.map((ip) => ({ type: 7 as const, ip }))] },
    ],
  });
  fs.mkdirSync(stateDir, { recursive: true });
  // Key first, then certificate: a crash in between leaves a pair that does not match, which
  // the next start replaces (check() above).
  writeAtomic(keyFile, pems.private, 0o600);
  writeAtomic(certFile, pems.cert, 0o644);
  const x = new crypto.X509Certificate(pems.cert);
  return { key: pems.private, cert: pems.cert, fingerprint256: x.fingerprint256, source: 'self-signed', created: true, certFile, validTo: new Date(x.validTo).toISOString(), ...(replaced ? { replaced } : {}) };
}

function readPem(file: string, field: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The certificate, or why the pair cannot serve. */
function check(cert: string, key: string): crypto.X509Certificate | string {
  let x: crypto.X509Certificate;
  try {
    x = new crypto.X509Certificate(cert);
  } catch (err) {
    return `the certificate is not a PEM X.509 certificate (${(err as Error).message})`;
  }
  let k: crypto.KeyObject;
  try {
    k = crypto.createPrivateKey(key);
  } catch (err) {
    return `the key is not a PEM private key (${(err as Error).message})`;
  }
  return x.checkPrivateKey(k) ? x : 'the key does not belong to the certificate';
}

/** Temp file in the same folder, fsync, rename, fsync the folder: all or nothing on disk. */
function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.fchmodSync(fd, mode); // the umask must not widen or narrow it
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}
