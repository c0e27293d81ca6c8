// The page over HTTPS against the whole daemon in-process: the self-signed certificate made on
// first start (ECDSA P-256, SANs, key 0600), trusted as its own CA by a real TLS client, the
// fingerprint in the log equal to the served one, reuse on the next start, the Secure cookie,
// a site's own certificate, and plain HTTP only on request (with a warning).
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/peers.js';
import { baseConfig, capturingLogger, makeApp, WebClient } from '../helpers/gateway.js';
import { TLS_CERT_FILE, TLS_KEY_FILE } from '../../src/web/tls-cert.js';

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function start(web: Record<string, unknown>, dir = tmpDir('cgw-tls-')) {
  const cap = capturingLogger();
  const { app } = makeApp(baseConfig({ web: { host: '127.0.0.1', port: 0, ...web }, storage: { path: path.join(dir, 'gateway.db') } }), cap.log);
  await app.start();
  let stopped = false;
  const stop = async () => {
    if (!stopped) await app.stop();
    stopped = true;
  };
  cleanups.push(stop);
  return { app, dir, stop, lines: cap.lines };
}

/** One HTTPS request that trusts only `ca`; the served certificate comes back with the answer. */
function get(host: string, port: number, ca: string, urlPath: string, opts: { method?: string; body?: string } = {}) {
  return new Promise<{ status: number; body: string; headers: Record<string, unknown>; fingerprint256: string }>((resolve, reject) => {
    const req = https.request({ host, port, path: urlPath, ca, method: opts.method ?? 'GET', headers: opts.body ? { 'content-type': 'application/json' } : {} }, (res) => {
      const fingerprint256 = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers, fingerprint256 }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('the page over HTTPS', () => {
  it('makes a self-signed P-256 certificate on first start, serves it, logs its fingerprint, and reuses it', async () => {
    const { app, dir, stop, lines } = await start({});
    const cert = fs.readFileSync(path.join(dir, TLS_CERT_FILE), 'utf8');
    const x = new crypto.X509Certificate(cert);
    expect(x.publicKey.asymmetricKeyDetails).toMatchObject({ namedCurve: 'prime256v1' });
    expect(x.subjectAltName).toContain('DNS:localhost');
    expect(x.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(fs.statSync(path.join(dir, TLS_KEY_FILE)).mode & 0o777).toBe(0o600);

    // A real TLS client that trusts only this certificate, by address and by name.
    const byIp = await get('127.0.0.1', app.web.port, cert, '/api/session');
    expect(byIp.status).toBe(200);
    expect((await get('localhost', app.web.port, cert, '/healthz')).status).toBe(200);
    const logged = lines().find((l) => typeof l['fingerprint256'] === 'string');
    expect(logged).toMatchObject({ level: 30, fingerprint256: byIp.fingerprint256, created: true, source: 'self-signed' });
    expect(logged!['msg']).toMatch(/certificate created/);
    expect(byIp.fingerprint256).toBe(x.fingerprint256);
    // The page can show it.
    expect(JSON.parse((await get('127.0.0.1', app.web.port, cert, '/api/tls')).body)).toEqual({ https: true, fingerprint256: x.fingerprint256, source: 'self-signed', validTo: new Date(x.validTo).toISOString() });
    // The session cookie is Secure on HTTPS.
    const setup = await get('127.0.0.1', app.web.port, cert, '/api/setup', { method: 'POST', body: JSON.stringify({ password: 'Xihu-station-2026', setupCode: app.auth.setupCode }) });
    expect(setup.status).toBe(200);
    expect(String(setup.headers['set-cookie'])).toMatch(/; Secure$/);
    // No plain HTTP on the page's port.
    await expect(fetch(`http://127.0.0.1:${app.web.port}/healthz`)).rejects.toThrow();

    await stop();
    const again = await start({}, dir);
    const second = await get('127.0.0.1', again.app.web.port, cert, '/healthz');
    expect(second.fingerprint256).toBe(x.fingerprint256);
    expect(again.lines().find((l) => typeof l['fingerprint256'] === 'string')).toMatchObject({ fingerprint256: x.fingerprint256, created: false });
  });

  it('replaces a pair that does not match (a crash between the two writes) and narrows a wide key file', async () => {
    const first = await start({});
    const cert = fs.readFileSync(path.join(first.dir, TLS_CERT_FILE), 'utf8');
    await first.stop();
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    fs.writeFileSync(path.join(first.dir, TLS_KEY_FILE), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o644 });
    const again = await start({}, first.dir);
    expect(again.lines().find((l) => typeof l['fingerprint256'] === 'string')).toMatchObject({ created: true, replaced: 'the key does not belong to the certificate' });
    expect(again.app.web.tls!.fingerprint256).not.toBe(new crypto.X509Certificate(cert).fingerprint256);
    expect(fs.statSync(path.join(first.dir, TLS_KEY_FILE)).mode & 0o777).toBe(0o600);
  });

  it("serves a site's own certificate from web.tls", async () => {
    const own = tmpDir('cgw-own-');
    const seed = await start({}, own); // any valid pair will do: take a generated one
    await seed.stop();
    const certFile = path.join(own, 'site.crt');
    const keyFile = path.join(own, 'site.key');
    fs.renameSync(path.join(own, TLS_CERT_FILE), certFile);
    fs.renameSync(path.join(own, TLS_KEY_FILE), keyFile);
    const cert = fs.readFileSync(certFile, 'utf8');
    const { app, dir } = await start({ tls: { certFile, keyFile } });
    const r = await get('127.0.0.1', app.web.port, cert, '/api/tls');
    expect(JSON.parse(r.body)).toMatchObject({ https: true, source: 'site', fingerprint256: new crypto.X509Certificate(cert).fingerprint256 });
    expect(fs.existsSync(path.join(dir, TLS_CERT_FILE))).toBe(false); // nothing self-signed made
  });

  it('refuses web.tls with https: false, and a missing certificate file names the field', async () => {
    expect(() => makeApp(baseConfig({ web: { host: '127.0.0.1', port: 0, https: false, tls: { certFile: 'a', keyFile: 'b' } } }))).toThrow(/web\.tls: tls needs https: true/);
    // A file that does not exist is a config error, named before anything starts.
    expect(() => makeApp(baseConfig({ web: { host: '127.0.0.1', port: 0, tls: { certFile: '/nonexistent/site.crt', keyFile: '/nonexistent/site.key' } } }))).toThrow(
      /web\.tls\.certFile: file not found: \/nonexistent\/site\.crt/,
    );
    // One that vanished between the check and the start still names the field.
    const dir = tmpDir('cgw-tls-gone-');
    const certFile = path.join(dir, 'site.crt');
    const keyFile = path.join(dir, 'site.key');
    fs.writeFileSync(certFile, '');
    fs.writeFileSync(keyFile, '');
    const { app } = makeApp(baseConfig({ web: { host: '127.0.0.1', port: 0, tls: { certFile, keyFile } } }));
    fs.rmSync(certFile);
    await expect(app.start()).rejects.toThrow(/web\.tls\.certFile: cannot read .*site\.crt: ENOENT/);
  });

  it('https: false serves plain HTTP, with a warning at start and no Secure cookie', async () => {
    const { app, dir, lines } = await start({ https: false });
    const c = new WebClient(`http://127.0.0.1:${app.web.port}`);
    expect((await c.get('/api/tls')).body).toEqual({ https: false });
    const setup = await c.post('/api/setup', { password: 'Xihu-station-2026', setupCode: app.auth.setupCode });
    expect(setup.headers.get('set-cookie')).not.toContain('Secure');
    expect(lines().find((l) => l['level'] === 40 && /plain HTTP/.test(String(l['msg'])))).toBeDefined();
    expect(fs.existsSync(path.join(dir, TLS_KEY_FILE))).toBe(false);
  });
});
