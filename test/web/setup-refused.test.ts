// POST /api/setup from outside the LAN, over real HTTP against the whole daemon. Loopback has
// no outside address, so the test sets the server-side socket's remoteAddress as each
// connection arrives (before the request is read): the route, clientIp() and the audit log
// run as they would for a client at 203.0.113.x. Each refusal used to be one fsynced audit
// line, an easy flood; now one line per address per minute and a global cap, and the held-back
// attempts are counted in the next line written.
import type http from 'node:http';
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { baseConfig, makeApp } from '../helpers/gateway.js';

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

describe('setup refused from outside the LAN', () => {
  it('is audited at most once per address per minute, the rest counted in the next line', async () => {
    const { app } = makeApp(baseConfig());
    cleanups.push(() => app.stop());
    await app.start();
    const server = (app.web as unknown as { server: http.Server }).server;
    let next = '203.0.113.7';
    server.prependListener('connection', (sock: net.Socket) => Object.defineProperty(sock, 'remoteAddress', { value: next }));
    const base = `http://127.0.0.1:${app.web.port}`;
    // A fresh connection per request, so each carries the address set for it.
    const attempt = async (ip: string) => {
      next = ip;
      const r = await fetch(`${base}/api/setup`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ password: 'Xihu-station-2026', setupCode: app.auth.setupCode }) });
      await r.text();
      return r.status;
    };
    for (let i = 0; i < 25; i++) expect(await attempt('203.0.113.7')).toBe(403);
    expect(await attempt('198.51.100.9')).toBe(403);
    const refused = app.audit.recent(100).filter((e) => e.action === 'setup-refused');
    expect(refused.map((e) => e.ip)).toEqual(['198.51.100.9', '203.0.113.7']);
    expect(refused[0]!.suppressed).toEqual({ count: 24, byKey: { '203.0.113.7': 24 } });
    expect(app.audit.stats.suppressed).toBe(24);
    // Still refused, and the password was never set.
    expect(app.auth.setupRequired).toBe(true);
    // From a LAN address the same request sets the password.
    expect(await attempt('192.168.1.20')).toBe(200);
    expect(app.audit.recent(1)[0]).toMatchObject({ action: 'setup', ip: '192.168.1.20' });
  });
});
