// TLS failures that are really the box's clock: a gateway without RTC that has not synced
// yet sees a valid broker certificate as "not yet valid" (or, far ahead, "expired"). The
// message names the clock and shows the box's time and, when known, the certificate's
// validity, so the technician checks NTP rather than uplink.caFile.
import { isIP } from 'node:net';
import tls from 'node:tls';

export const CLOCK_CODES = new Set(['CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED']);

export interface Validity {
  from: number;
  to: number;
}

const iso = (t: number) => new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The technician's line for a CERT_NOT_YET_VALID / CERT_HAS_EXPIRED failure at wall time `now`. */
export function clockMessage(code: string, now: number, validity?: Validity | null): string {
  const box = `this box's clock says ${iso(now)}`;
  if (code === 'CERT_NOT_YET_VALID') {
    const what = validity ? `is not valid until ${iso(validity.from)}` : 'is not yet valid';
    return `TLS: the broker's certificate ${what} but ${box}; the clock may be wrong (not synchronised yet: check NTP), not uplink.caFile`;
  }
  const what = validity ? `expired at ${iso(validity.to)}` : 'has expired';
  return `TLS: the broker's certificate ${what} and ${box}; the clock may be wrong (check NTP); if it is right, the platform must renew its certificate (not uplink.caFile)`;
}

/**
 * Node's verification error carries no certificate, so this opens one more TLS connection to
 * the broker with verification off, only to read the validity of the certificate it presents
 * (the one of its chain that `now` falls outside). Nothing is sent over it: it is closed as
 * soon as the handshake ends. Resolves null when the broker cannot be reached or every
 * certificate it sent covers `now` (the failing one is then a CA of uplink.caFile, not sent).
 */
export function probeValidity(url: string, opts: Pick<tls.ConnectionOptions, 'ca' | 'cert' | 'key'>, now: number, timeoutMs: number): Promise<Validity | null> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.resolve(null);
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port) || (u.protocol === 'wss:' ? 443 : 8883);
  return new Promise((resolve) => {
    const sock = tls.connect({ host, port, ...opts, servername: isIP(host) ? undefined : host, rejectUnauthorized: false });
    const done = (v: Validity | null) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    sock.once('error', () => done(null));
    sock.once('secureConnect', () => {
      let c: tls.DetailedPeerCertificate | undefined = sock.getPeerCertificate(true);
      const seen = new Set<unknown>();
      while (c && c.valid_from && !seen.has(c)) {
        seen.add(c);
        const v = { from: Date.parse(c.valid_from), to: Date.parse(c.valid_to) };
        if (now < v.from || now > v.to) return done(v);
        c = c.issuerCertificate;
      }
      done(null);
    });
  });
}
