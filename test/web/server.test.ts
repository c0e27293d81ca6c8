// The technician page's JSON API against the whole daemon in-process: a simulated site, a
// real Mosquitto as the platform, real files for the config, its versions and the audit log.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import net from 'node:net';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import argon2 from 'argon2';
import * as OTPAuth from 'otpauth';
import { RawClient, rawRequest } from '../helpers/http-raw.js';
import { CLI, assertBuilt } from '../helpers/cli.js';
import { parse, stringify } from 'yaml';
import { restartablePort, waitFor } from '../helpers/peers.js';
import { baseConfig, capturingLogger, makeApp, WebClient } from '../helpers/gateway.js';
import { Mosquitto } from '../helpers/mosquitto.js';
import type { App } from '../../src/app.js';

const PASSWORD = 'Xihu-station-2026';
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function site(uplinkUrl = 'mqtt://127.0.0.1:1') {
  // The simulator rebinds this port when the gateway restarts (an uplink change): one outside
  // the ephemeral range cannot be taken by a parallel test in between.
  const simPort = await restartablePort();
  const { app, file } = makeApp(
    baseConfig({
      uplink: { url: uplinkUrl, windowSeconds: 60, reconnectMinMs: 500, reconnectMaxMs: 1000 },
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
      devices: [
        { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 500 },
        { id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 2, pollMs: 500 },
        { id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 3, pollMs: 500 },
      ],
      simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 3 },
    }),
  );
  cleanups.push(() => app.stop());
  await app.start();
  return { app, file, client: new WebClient(`http://127.0.0.1:${app.web.port}`) };
}

async function loggedIn(app: App, c: WebClient): Promise<void> {
  const r = app.auth.setupRequired ? await c.post('/api/setup', { password: PASSWORD, setupCode: app.auth.setupCode }) : await c.post('/api/login', { password: PASSWORD });
  expect(r.status).toBe(200);
}

function auditActions(app: App): string[] {
  return app.audit.recent(100).map((e) => e.action);
}

describe('web API: login, CSRF, lockout', () => {
  it('asks for the first password once, then needs a session for everything under /api', async () => {
    const { app, client } = await site();
    expect((await client.get('/api/session')).body).toEqual({ setupRequired: true, authenticated: false, secondFactor: false, totpRequired: false });
    expect((await client.get('/api/overview')).status).toBe(401);
    const setupCode = app.auth.setupCode!;
    expect((await client.post('/api/setup', { password: 'short', setupCode })).status).toBe(400);
    const set = await client.post('/api/setup', { password: PASSWORD, setupCode });
    expect(set.status).toBe(200);
    expect(set.headers.get('set-cookie')).toMatch(/^cgw_session=[\w-]{40,}; HttpOnly; SameSite=Strict; Path=\//);
    expect((await client.get('/api/session')).body).toMatchObject({ setupRequired: false, authenticated: true, user: 'admin' });
    expect((await client.get('/api/overview')).status).toBe(200);
    // Only once: a second setup, even from a logged-in page, is refused.
    expect((await client.post('/api/setup', { password: 'Another-password-1', setupCode })).status).toBe(409);
    const stranger = new WebClient(client.base);
    expect((await stranger.post('/api/setup', { password: 'Another-password-1', setupCode })).status).toBe(409);
    expect(auditActions(app)).toContain('setup');
    // The hash, not the password, is on disk.
    const adminFile = path.join(path.dirname(app.config.storage.path), 'web-admin.json');
    const admin = fs.readFileSync(adminFile, 'utf8');
    expect(admin).toContain('$argon2id$');
    expect(admin).not.toContain(PASSWORD);
    expect(fs.statSync(adminFile).mode & 0o777).toBe(0o600);
  });

  it('refuses a change without the CSRF token, with a wrong one, or from another origin', async () => {
    const { app, client } = await site();
    await loggedIn(app, client);
    const body = { text: app.configText };
    expect((await client.post('/api/config/validate', body, { 'x-csrf-token': '' })).body).toMatchObject({ error: 'csrf' });
    expect((await client.post('/api/config/validate', body, { 'x-csrf-token': 'x'.repeat(43) })).status).toBe(403);
    expect((await client.post('/api/config/validate', body, { origin: 'http://evil.example' })).status).toBe(403);
    const ok = await client.post('/api/config/validate', body);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ ok: true, errors: [] });
    // Logout ends the session: the same cookie is then refused.
    expect((await client.post('/api/logout')).status).toBe(200);
    expect((await client.call('GET', '/api/overview', undefined, { cookie: client.cookie })).status).toBe(401);
  });

  it('locks an address out after five wrong passwords and audits it', async () => {
    const { app, client } = await site();
    await loggedIn(app, client);
    const guesser = new WebClient(client.base);
    for (let i = 0; i < 5; i++) expect((await guesser.post('/api/login', { password: `guess-number-${i}` })).status).toBe(401);
    const locked = await guesser.post('/api/login', { password: PASSWORD });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(800);
    expect(auditActions(app).filter((a) => a === 'login-failed')).toHaveLength(5);
    expect(auditActions(app)).toContain('lockout');
  });

  it('validates bodies at the edge, naming the field', async () => {
    const { app, client } = await site();
    await loggedIn(app, client);
    expect((await client.post('/api/devices/fridge-1/read', { register: 'holding', start: 0, count: 126 })).body).toEqual({ error: 'count: at most 125 registers (2000 bits) per read', msg: { code: 'web.read-limit', params: {}, path: 'count' } });
    expect((await client.post('/api/devices/fridge-1/read', { register: 'eeprom', start: 0, count: 1 })).body.error).toMatch(/^register: /);
    expect((await client.post('/api/config', { text: 'a: 1', form: {} })).body).toEqual({ error: 'body: give exactly one of text, form or edit', msg: { code: 'web.text-form-edit', params: {}, path: 'body' } });
    expect((await client.post('/api/config', { form: { 'storage.path': '/tmp/x' } })).body.error).toMatch(/^form\.storage\.path: is not an editable form field/);
    const raw = await fetch(`${client.base}/api/config/validate`, { method: 'POST', headers: { cookie: client.cookie, 'x-csrf-token': client.csrf, 'content-type': 'application/json' }, body: '{"text": ' });
    expect(raw.status).toBe(400);
    expect((await raw.json()).error).toMatch(/^body is not valid JSON/);
  });
});

describe('web API: configuration', () => {
  it('refuses an invalid config with field errors and keeps the running one', async () => {
    const { app, client, file } = await site();
    await loggedIn(app, client);
    const before = fs.readFileSync(file, 'utf8');
    const bad = before.replace('unitId: 1\n', 'unitId: 300\n');
    expect(bad).not.toBe(before);
    const r = await client.post('/api/config', { text: bad });
    expect(r.status).toBe(422);
    expect(r.body.errors).toEqual([expect.objectContaining({ path: 'devices[0].unitId', message: 'must be 1..247', line: expect.any(Number) })]);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(app.configs.versions()).toEqual([]);
    expect(app.config.devices[0]!.unitId).toBe(1);
    // The form path: an error names the form field.
    const f = await client.post('/api/config', { form: { 'devices[1].pollMs': 5 } });
    expect(f.status).toBe(422);
    expect(f.body.errors[0]).toMatchObject({ path: 'devices[1].pollMs', message: 'must be 100..86400000' });
    expect(auditActions(app).filter((a) => a === 'config-rejected')).toHaveLength(2);
  });

  it('applies device changes in place without dropping the uplink session, and rolls back', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const { app, client, file } = await site(`mqtt://127.0.0.1:${broker.port}`);
    await waitFor(() => app.gateway.uplink!.state === 'connected', 10000, 'uplink connected');
    await loggedIn(app, client);
    const original = fs.readFileSync(file, 'utf8');
    const gateway = app.gateway;
    const connects = gateway.uplink!.stats.connects;

    const r = await client.post('/api/config', { form: { 'devices[0].pollMs': 2000, 'site.name': '西湖 测试' }, note: 'slower fridge' });
    expect(r.body).toEqual({ ok: true, applied: 'reload', version: 2 }); // 1: the file as found
    expect(app.gateway).toBe(gateway); // same gateway: no restart
    expect(app.gateway.uplink!.state).toBe('connected');
    expect(app.gateway.uplink!.stats.connects).toBe(connects);
    expect(app.gateway.pollers.find((p) => p.device.id === 'fridge-1')!.device.pollMs).toBe(2000);
    const saved = parse(fs.readFileSync(file, 'utf8'));
    expect(saved.devices[0].pollMs).toBe(2000);
    expect(saved.site.name).toBe('西湖 测试');
    await waitFor(() => app.gateway.pollers.every((p) => p.stats.online), 5000, 'devices polled again after the reload');

    const cfg = await client.get('/api/config');
    // Version 2 holds the change it is noted with, and is the running one.
    expect(cfg.body.versions).toEqual([
      expect.objectContaining({ id: 2, user: 'admin', note: 'slower fridge', running: true }),
      expect.objectContaining({ id: 1, user: 'system', note: 'the config as found', running: false }),
    ]);
    expect(cfg.body.running).toBe(2);
    expect(parse((await client.get('/api/config/versions/2')).body.text).devices[0].pollMs).toBe(2000);
    expect((await client.get('/api/config/versions/1')).body.text).toBe(original);
    expect(cfg.body.form['devices[0].pollMs']).toBe(2000);

    const back = await client.post('/api/config/rollback', { version: 1 });
    expect(back.body).toMatchObject({ ok: true, applied: 'reload', version: 3, rollbackOf: 1 });
    expect(fs.readFileSync(file, 'utf8')).toBe(original);
    expect(app.config.devices[0]!.pollMs).toBe(500);
    expect(app.configs.versions().map((v) => [v.id, v.note, v.running])).toEqual([
      [3, 'rollback to version 1', true],
      [2, 'slower fridge', false],
      [1, 'the config as found', false],
    ]);
    expect(app.gateway.uplink!.stats.connects).toBe(connects);
    expect(auditActions(app)).toEqual(expect.arrayContaining(['config-apply', 'config-rollback']));
  });

  it('restarts the gateway for an uplink change and keeps what was buffered', async () => {
    const { app, client } = await site();
    await loggedIn(app, client);
    const rowsBefore = app.gateway.outbox!.stats().rows;
    expect(rowsBefore).toBeGreaterThan(0); // at least the inventory, waiting for a platform
    const old = app.gateway;
    const r = await client.post('/api/config', { form: { 'uplink.windowSeconds': 30 } });
    expect(r.body, JSON.stringify(r.body)).toMatchObject({ ok: true, applied: 'restart' });
    expect(app.gateway).not.toBe(old);
    expect(app.config.uplink.windowSeconds).toBe(30);
    // Buffered rows survive; the restarted gateway adds its own inventory.
    expect(app.gateway.outbox!.stats().rows).toBeGreaterThan(rowsBefore);
    expect((await client.get('/api/overview')).status).toBe(200);
  });

  it('puts the previous config back, file and gateway, when the applied one cannot start', async () => {
    const { app, client, file } = await site();
    await loggedIn(app, client);
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => blocker.close(() => r())));
    const taken = (blocker.address() as net.AddressInfo).port;
    const before = fs.readFileSync(file, 'utf8');
    const doc = parse(before);
    doc.localBroker.port = taken;
    const r = await client.post('/api/config', { text: stringify(doc) });
    expect(r.status).toBe(500);
    expect(r.body.error).toMatch(/the previous one is running again: .*EADDRINUSE/);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(app.config.localBroker.port).toBe(0);
    await waitFor(() => app.gateway.pollers.every((p) => p.stats.online), 5000, 'the previous config polls again');
    expect(auditActions(app)).toContain('config-restored');
  });
});

describe('web API: devices', () => {
  it('overview and device pages withhold personal data', async () => {
    const { app, client } = await site();
    await loggedIn(app, client);
    await waitFor(() => app.gateway.pollers.every((p) => p.stats.online), 5000, 'online');
    const o = (await client.get('/api/overview')).body;
    // Facilities the config does not list come in the order their devices do, each by its type.
    expect(o.facilities.map((f: { id: string }) => f.id).sort()).toEqual(['canteen', 'health', 'security']);
    expect(o.facilities.every((f: { id: string; type: string; houseCode: unknown }) => f.type === f.id && f.houseCode === null)).toBe(true);
    expect(o.facilityTypes.find((t: { id: string }) => t.id === 'health').name).toEqual({ zh: '智慧健康站', en: 'Smart health station' });
    const kiosk = o.facilities.find((f: { id: string }) => f.id === 'health').devices[0];
    expect(kiosk.id).toBe('kiosk-1');
    const personal = Object.values(kiosk.points as Record<string, { withheld?: string; value: unknown }>).filter((p) => p.withheld);
    expect(personal.length).toBeGreaterThan(0);
    expect(personal.every((p) => p.value === null)).toBe(true);
    const d = (await client.get('/api/devices/kiosk-1')).body;
    expect(d.points.find((p: { id: string }) => p.id === 'systolic_bp').privacy).toBe('personal');
    expect((await client.get('/api/devices/kiosk-1/history?point=systolic_bp&hours=6')).status).toBe(403);
    const h = await client.get('/api/devices/fridge-1/history?point=fridge_1_temperature&hours=1');
    expect(h.status).toBe(200);
    await waitFor(async () => (await client.get('/api/devices/fridge-1/history?point=fridge_1_temperature&hours=1')).body.series[0].points.length > 0, 5000, 'history');
  });

  it('try-read goes through the bus queue and decodes every type and order', async () => {
    const { app, client } = await site();
    await loggedIn(app, client);
    await waitFor(() => app.gateway.pollers.every((p) => p.stats.online), 5000, 'online');
    const sim = app.gateway.simulator!;
    const r = await client.post('/api/devices/fridge-1/read', { register: 'holding', start: 0, count: 2 });
    expect(r.status).toBe(200);
    expect(r.body.words).toHaveLength(2);
    expect(r.body.hex).toEqual(r.body.words.map((w: number) => w.toString(16).padStart(4, '0')));
    const row0 = r.body.decoded[0];
    const w = r.body.words as number[];
    expect(row0.uint16.ABCD).toBe(w[0]);
    expect(row0.uint16.BADC).toBe(((w[0]! & 0xff) << 8) | (w[0]! >> 8));
    expect(row0.uint32.ABCD).toBe(w[0]! * 65536 + w[1]!);
    expect(row0.uint32.CDAB).toBe(w[1]! * 65536 + w[0]!);
    expect(r.body.decoded[1].int32).toBeUndefined(); // no second word after offset 1
    expect(sim).toBeTruthy();
    const ex = await client.post('/api/devices/fridge-1/read', { register: 'holding', start: 60000, count: 1 });
    expect(ex.body).toEqual({ error: 'modbus exception 2 ILLEGAL DATA ADDRESS', quality: 'exception', msg: { code: 'modbus.exception', params: { code: '2', name: { code: 'exception.illegal-data-address', params: {} } } } });
    expect(auditActions(app).filter((a) => a === 'device-read')).toHaveLength(2);
  });

  it('writes a writable point after confirmation and audits it; refuses the rest', async () => {
    const { app, client } = await site();
    await loggedIn(app, client);
    await waitFor(() => app.gateway.pollers.every((p) => p.stats.online), 5000, 'online');
    expect((await client.post('/api/devices/io-1/write', { point: 'alarm_siren', value: true })).body.error).toMatch(/^confirm: /);
    const w = await client.post('/api/devices/io-1/write', { point: 'alarm_siren', value: true, confirm: true });
    expect(w.body).toEqual({ ok: true });
    const bits = await client.post('/api/devices/io-1/read', { register: 'coil', start: 16, count: 1 });
    expect(bits.body).toEqual({ bits: [1] });
    const refused = await client.post('/api/devices/io-1/write', { point: 'entrance_door', value: true, confirm: true });
    expect(refused.status).toBe(422);
    expect(refused.body.error).toBe('point entrance_door is not writable (the profile does not mark it writable)');
    const entries = app.audit.recent(10);
    expect(entries.find((e) => e.action === 'device-write')).toMatchObject({ user: 'admin', detail: { device: 'io-1', point: 'alarm_siren', value: true } });
    expect(entries.find((e) => e.action === 'device-write-refused')).toBeDefined();
  });

  it('serves the page with a strict CSP and nothing outside its folder', async () => {
    const { client } = await site();
    const page = await fetch(`${client.base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('<html lang="zh-CN"');
    expect((await fetch(`${client.base}/vendor/uplot.iife.min.js`)).status).toBe(200);
    expect((await fetch(`${client.base}/%2e%2e/%2e%2e/%2e%2e/package.json`)).status).toBe(404);
    expect((await fetch(`${client.base}/healthz`)).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------
// Issue 12: the admin login (findings 5 and 9, password policy, TOTP, session timeout,
// password change and reset). Driven with node:http (RawClient) so a test can send any Host
// header, come from several loopback addresses, and move Date without fetch's own timers.

/** The daemon with a capturing log (the setup code is read from it, as a technician would). */
async function authSite(web: Record<string, unknown> = {}) {
  const cap = capturingLogger();
  const { app } = makeApp(baseConfig({ web: { host: '127.0.0.1', port: 0, https: false, ...web } }), cap.log);
  cleanups.push(() => app.stop());
  await app.start();
  const codes = () => cap.lines().map((l) => l.setupCode).filter((c): c is string => typeof c === 'string');
  return { app, port: app.web.port, codes, lines: cap.lines };
}

function stateFile(app: App, name: string): string {
  return path.join(path.dirname(app.config.storage.path), name);
}

/** The TOTP code for `secret` at Date.now() + `offsetSteps` steps, as the phone shows it. */
function totpCode(secret: string, offsetSteps = 0): string {
  return new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: Date.now() + offsetSteps * 30_000 });
}

const SITE_PASSWORD = 'Qiantang-Canteen-2026';

async function setUp(app: App, c: RawClient, extra: Record<string, unknown> = {}) {
  const r = await c.post('/api/setup', { password: SITE_PASSWORD, setupCode: app.auth.setupCode, ...extra });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r;
}

describe('web API: admin authentication (issue 12)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('refuses API requests whose Host does not name the box (DNS rebinding), also for setup', async () => {
    const { app, port } = await authSite({ allowedHosts: ['gw-7.site.lan'] });
    const evil = new RawClient(port, '127.0.0.1', `rebind.attacker.example:${port}`);
    const s = await evil.get('/api/session');
    expect(s.status).toBe(403);
    expect(s.body).toMatchObject({ error: 'host' });
    const setup = await evil.post('/api/setup', { password: SITE_PASSWORD, setupCode: app.auth.setupCode });
    expect(setup.status).toBe(403);
    expect(app.auth.setupRequired).toBe(true);
    // The right name on another port (or none: port 80), a malformed one: refused too.
    for (const host of [`127.0.0.1:${port + 1}`, '127.0.0.1', 'a b', `[::1`, `127.0.0.1:${port}@evil.example`]) {
      expect((await rawRequest(port, 'GET', '/api/session', { headers: { host } })).status, host).toBe(403);
    }
    expect((await rawRequest(port, 'GET', '/metrics', { headers: { host: `rebind.attacker.example:${port}` } })).status).toBe(403);
    // The box's own names and addresses, and the configured extra name, are fine.
    const own = ['localhost', '127.0.0.1', '[::1]', os.hostname(), `${os.hostname().split('.')[0]}.local`, 'gw-7.site.lan', 'GW-7.Site.Lan'];
    for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) own.push(a.family === 'IPv6' ? `[${a.address.split('%')[0]}]` : a.address);
    for (const host of own) expect((await rawRequest(port, 'GET', '/api/session', { headers: { host: `${host}:${port}` } })).status, host).toBe(200);
    // Static assets are public anyway (no data in them): served whatever the Host.
    expect((await rawRequest(port, 'GET', '/', { headers: { host: 'rebind.attacker.example' } })).status).toBe(200);
  });

  it('setup needs the one-time code printed in the log; wrong codes count against the address', async () => {
    const { app, port, codes } = await authSite();
    const code = codes()[0]!;
    expect(code).toMatch(/^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{10}$/);
    expect(app.auth.setupCode).toBe(code);
    const c = new RawClient(port, '127.0.0.2');
    const missing = await c.post('/api/setup', { password: SITE_PASSWORD });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatch(/^setupCode: /);
    for (let i = 0; i < 4; i++) {
      const r = await c.post('/api/setup', { password: SITE_PASSWORD, setupCode: `WRONGCODE${i}` });
      expect(r.status).toBe(403);
      expect(r.body.reason).toBe('setup-code');
    }
    // Audited at most once a minute per address (the rest counted, not lost).
    expect(auditActions(app).filter((a) => a === 'setup-refused')).toHaveLength(1);
    expect(app.audit.stats.suppressed).toBe(3);
    // The fifth wrong code locks the address: then even the right code is refused for a while.
    expect((await c.post('/api/setup', { password: SITE_PASSWORD, setupCode: 'WRONGCODE5' })).status).toBe(403);
    const locked = await c.post('/api/setup', { password: SITE_PASSWORD, setupCode: code });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(800);
    expect(app.auth.setupRequired).toBe(true);
    // Another address with the code (typed in lower case with a dash) sets the password.
    const tech = new RawClient(port, '127.0.0.3');
    const ok = await tech.post('/api/setup', { password: SITE_PASSWORD, setupCode: `${code.slice(0, 5).toLowerCase()}-${code.slice(5)}` });
    expect(ok.status).toBe(200);
    expect(app.auth.setupCode).toBeNull();
    // The next line written carries what the rate limit held back.
    expect(app.audit.recent(1)[0]).toMatchObject({ action: 'setup', suppressed: { count: 4 } });
    // A daemon started on an empty state directory prints a new code each start.
    const again = await authSite();
    const again2 = await authSite();
    expect(again.codes()[0]).not.toBe(again2.codes()[0]);
  });

  it('a spray of wrong passwords from many addresses delays the account (growing, capped) but never locks the admin out', async () => {
    const { app, port } = await authSite();
    await setUp(app, new RawClient(port));
    // The delays run on the monotonic clock (performance.now): both clocks move together here.
    vi.useFakeTimers({ toFake: ['Date', 'performance'], now: Date.now() });
    const verify = vi.spyOn(argon2, 'verify');
    const delays: number[] = [];
    // 30 failures, each from its own address, each as soon as the account delay allows it.
    let addr = 0;
    for (let failures = 0; failures < 30; ) {
      const r = await new RawClient(port, `127.0.1.${++addr % 250}`).post('/api/login', { password: `guess-${addr}` });
      if (r.status === 429) {
        expect(r.body.reason).toBe('throttled');
        const wait = Number(r.headers['retry-after']);
        delays.push(wait);
        vi.advanceTimersByTime(wait * 1000);
        continue;
      }
      expect(r.status).toBe(401);
      failures++;
    }
    // The first five failures are free; then 2, 4, 8, ... seconds, never above two minutes.
    expect(delays.slice(0, 7)).toEqual([2, 4, 8, 16, 32, 64, 120]);
    expect(delays).toHaveLength(25);
    expect(Math.max(...delays)).toBe(120);
    // Throttled answers ran no argon2: one verify per failure, none per refusal.
    expect(verify).toHaveBeenCalledTimes(30);
    const verifiesBefore = verify.mock.calls.length;
    vi.advanceTimersByTime(120_000);
    expect((await new RawClient(port, '127.0.3.1').post('/api/login', { password: 'guess-x' })).status).toBe(401);
    const throttled = await new RawClient(port, '127.0.3.2').post('/api/login', { password: SITE_PASSWORD });
    expect(throttled.status).toBe(429);
    expect(verify.mock.calls.length).toBe(verifiesBefore + 1);
    // The real admin waits at most the cap, then gets in (today's code: a 15 min account lock).
    vi.advanceTimersByTime(120_000);
    const admin = await new RawClient(port, '127.0.4.1').post('/api/login', { password: SITE_PASSWORD });
    expect(admin.status).toBe(200);
    // The delay started once and was audited as such.
    expect(app.audit.recent(1000).filter((e) => e.action === 'lockout' && e.detail?.scope === 'account').length).toBeGreaterThan(0);
  });

  it('applies the password policy at setup and on change, naming the rule', async () => {
    const { app, port } = await authSite();
    const c = new RawClient(port);
    const code = app.auth.setupCode;
    const cases: [string, RegExp][] = [
      ['Short-1a', /at least 12 characters/],
      ['admin123456', /at least 12 characters/],
      ['password1234', /at least 3 of/],
      ['Password1234', /common or default/],
      ['Raspberry-2026', /common or default/],
      ['123456789012', /common or default/],
      ['Community-Gateway1', /common or default/],
      ['alllowercaseletters', /at least 3 of/],
      ['My-Admin-Box-2026', /must not contain the user name "admin"/],
    ];
    for (const [pw, why] of cases) {
      const r = await c.post('/api/setup', { password: pw, setupCode: code });
      expect(r.status, pw).toBe(400);
      expect(r.body.error, pw).toMatch(why);
    }
    expect(app.auth.setupRequired).toBe(true);
    await setUp(app, c);
    const weak = await c.post('/api/account/password', { current: SITE_PASSWORD, password: 'Password1234' });
    expect(weak.status).toBe(400);
    expect(weak.body.error).toMatch(/common or default/);
  });

  it('TOTP: enrol at setup (QR as an SVG data URI), then login needs a code; a code is used once; recovery codes are single-use', async () => {
    const { app, port } = await authSite();
    const c = new RawClient(port);
    const enrol = await c.post('/api/setup/totp');
    expect(enrol.status).toBe(200);
    const { secret, uri, qr } = enrol.body as { secret: string; uri: string; qr: string };
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(uri).toMatch(/^otpauth:\/\/totp\/.*secret=[A-Z2-7]{32}/);
    expect(uri).toContain('algorithm=SHA1');
    expect(uri).toContain('digits=6');
    expect(uri).toContain('period=30');
    expect(qr).toMatch(/^data:image\/svg\+xml;base64,/);
    expect(Buffer.from(qr.split(',')[1]!, 'base64').toString()).toMatch(/^<svg[\s\S]*<\/svg>$/);
    vi.useFakeTimers({ toFake: ['Date'], now: Math.floor(Date.now() / 30_000) * 30_000 + 1000 });
    const bad = await c.post('/api/setup', { password: SITE_PASSWORD, setupCode: app.auth.setupCode, totp: { secret, code: totpCode(secret, 5) } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/^totp\.code: /);
    const setupCode = totpCode(secret);
    const set = await setUp(app, c, { totp: { secret, code: setupCode } });
    const recovery = set.body.recoveryCodes as string[];
    expect(recovery).toHaveLength(10);
    for (const r of recovery) expect(r).toMatch(/^[A-Z2-9]{5}-[A-Z2-9]{5}$/);
    expect(new Set(recovery).size).toBe(10);
    // Stored: the secret (0600 file) and only hashes of the recovery codes.
    const admin = fs.readFileSync(stateFile(app, 'web-admin.json'), 'utf8');
    expect(JSON.parse(admin).totp.secret).toBe(secret);
    for (const r of recovery) expect(admin).not.toContain(r.replace('-', ''));
    expect((await c.get('/api/session')).body.secondFactor).toBe(true);

    const login = (code?: string, from = '127.0.5.1') => new RawClient(port, from).post('/api/login', code === undefined ? { password: SITE_PASSWORD } : { password: SITE_PASSWORD, code });
    expect((await login()).status).toBe(401);
    expect((await login(undefined, '127.0.5.2')).body.error).toBe('wrong password or code');
    // The code used at setup is spent: a replay in the same 30 s step is refused.
    expect((await login(setupCode, '127.0.5.3')).status).toBe(401);
    expect((await new RawClient(port, '127.0.5.4').post('/api/login', { password: 'Wrong-Password-99', code: totpCode(secret, 1) })).status).toBe(401);
    // Next step: the new code works once (window ±1 step), not twice.
    vi.setSystemTime(Date.now() + 30_000);
    const now1 = totpCode(secret);
    expect((await login(now1, '127.0.5.5')).status).toBe(200);
    expect((await login(now1, '127.0.5.6')).status).toBe(401);
    // One step ahead (a phone clock 30 s fast) is accepted; two steps are not.
    expect((await login(totpCode(secret, 2), '127.0.5.7')).status).toBe(401);
    expect((await login(totpCode(secret, 1), '127.0.5.8')).status).toBe(200);
    // A recovery code, once.
    const rec = await login(recovery[3]!.toLowerCase(), '127.0.5.9');
    expect(rec.status).toBe(200);
    expect(rec.body.recoveryCodesLeft).toBe(9);
    expect((await login(recovery[3]!, '127.0.5.10')).status).toBe(401);
    expect(auditActions(app).filter((a) => a === 'login-failed').length).toBeGreaterThanOrEqual(6);

    // Switch it off with the password and a current code; login is password-only again.
    vi.setSystemTime(Date.now() + 60_000);
    const off = await c.post('/api/account/totp/disable', { password: SITE_PASSWORD, code: totpCode(secret) });
    expect(off.status, JSON.stringify(off.body)).toBe(200);
    expect((await login(undefined, '127.0.6.1')).status).toBe(200);
    // And on again from the account page: a new secret, confirmed with a code.
    const fresh = (await c.post('/api/account/totp/new')).body as { secret: string };
    const wrongPw = await c.post('/api/account/totp', { password: 'Not-The-Password-1', secret: fresh.secret, code: totpCode(fresh.secret) });
    expect(wrongPw.status).toBe(403);
    const on = await c.post('/api/account/totp', { password: SITE_PASSWORD, secret: fresh.secret, code: totpCode(fresh.secret) });
    expect(on.status).toBe(200);
    expect(on.body.recoveryCodes).toHaveLength(10);
    expect((await login(undefined, '127.0.6.2')).status).toBe(401);
    vi.setSystemTime(Date.now() + 30_000);
    expect((await login(totpCode(fresh.secret), '127.0.6.3')).status).toBe(200);
    expect(auditActions(app)).toEqual(expect.arrayContaining(['totp-enable', 'totp-disable', 'totp-enable-failed']));
  });

  it('a site can require the second factor (web.requireTotp)', async () => {
    const { app, port } = await authSite({ requireTotp: true });
    const c = new RawClient(port);
    expect((await c.get('/api/session')).body.totpRequired).toBe(true);
    const r = await c.post('/api/setup', { password: SITE_PASSWORD, setupCode: app.auth.setupCode });
    expect(r.status).toBe(400);
    expect(r.body.reason).toBe('totp-required');
  });

  it('web.requireTotp turned on after setup: the session may only enrol a second factor, then the page opens', async () => {
    const { app, port } = await authSite();
    const c = new RawClient(port);
    await setUp(app, c);
    const cfg = await c.get('/api/config');
    const text = (cfg.body.text as string).replace('https: false', 'https: false\n  requireTotp: true');
    expect(text).toContain('requireTotp: true');
    const nonce = { 'x-request-nonce': 'require-totp-nonce-0001' };
    expect((await c.call('POST', '/api/config', { text }, nonce)).status).toBe(200);
    expect((await c.get('/api/session')).body).toMatchObject({ authenticated: true, totpRequired: true, mustEnrol: true });
    const blocked = await c.get('/api/overview');
    expect(blocked.status).toBe(403);
    expect(blocked.body.reason).toBe('enrol-totp');
    expect((await c.get('/api/account')).status).toBe(200);
    const e = await c.post('/api/account/totp/new', {});
    expect(e.status).toBe(200);
    const on = await c.post('/api/account/totp', { password: SITE_PASSWORD, secret: e.body.secret, code: totpCode(e.body.secret) });
    expect(on.status, JSON.stringify(on.body)).toBe(200);
    expect((await c.get('/api/overview')).status).toBe(200);
    expect((await c.get('/api/session')).body.mustEnrol).toBe(false);
  });

  it('ends a session after 15 minutes idle by default, and after web.sessionIdleMinutes when set', async () => {
    const { app, port } = await authSite();
    const c = new RawClient(port);
    await setUp(app, c);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    vi.setSystemTime(Date.now() + 14 * 60_000);
    expect((await c.get('/api/overview')).status).toBe(200); // activity restarts the idle timer
    vi.setSystemTime(Date.now() + 14 * 60_000);
    expect((await c.get('/api/overview')).status).toBe(200);
    vi.setSystemTime(Date.now() + 15 * 60_000);
    expect((await c.get('/api/overview')).status).toBe(401);
    vi.useRealTimers();

    const short = await authSite({ sessionIdleMinutes: 5 });
    const d = new RawClient(short.port);
    await setUp(short.app, d);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    vi.setSystemTime(Date.now() + 4 * 60_000);
    expect((await d.get('/api/overview')).status).toBe(200);
    vi.setSystemTime(Date.now() + 5 * 60_000 + 1000);
    expect((await d.get('/api/overview')).status).toBe(401);
  });

  it('changes the password from the page: current password checked, policy applied, other sessions end, audited', async () => {
    const { app, port } = await authSite();
    const a = new RawClient(port, '127.0.7.1');
    await setUp(app, a);
    const b = new RawClient(port, '127.0.7.2');
    expect((await b.post('/api/login', { password: SITE_PASSWORD })).status).toBe(200);
    const NEW = 'Gongshu-Health-Station-7';
    const wrong = await a.post('/api/account/password', { current: 'Not-The-Password-1', password: NEW });
    expect(wrong.status).toBe(403);
    expect(wrong.body.error).toBe('wrong password or code');
    expect((await a.post('/api/account/password', { current: SITE_PASSWORD, password: NEW }, )).status).toBe(200);
    expect((await b.get('/api/overview')).status).toBe(401); // the other session ended
    expect((await a.get('/api/overview')).status).toBe(200); // this one goes on
    expect((await new RawClient(port, '127.0.7.3').post('/api/login', { password: SITE_PASSWORD })).status).toBe(401);
    expect((await new RawClient(port, '127.0.7.4').post('/api/login', { password: NEW })).status).toBe(200);
    expect(auditActions(app)).toEqual(expect.arrayContaining(['password-change', 'password-change-failed']));
    // A change without the CSRF token is refused like any other.
    expect((await a.call('POST', '/api/account/password', { current: NEW, password: SITE_PASSWORD }, { 'x-csrf-token': 'forged' })).status).toBe(403);
  });

  it('community-gateway reset-admin sets a new password or re-opens setup; a running daemon takes it up at once; audited', async () => {
    assertBuilt();
    const { app, port, codes } = await authSite();
    const a = new RawClient(port);
    await setUp(app, a);
    const stateDir = path.dirname(app.config.storage.path);
    const NEW = 'Reset-By-Technician-42';
    const weak = spawnSync(process.execPath, [CLI, 'reset-admin', '--state-dir', stateDir], { input: 'password1234', encoding: 'utf8' });
    expect(weak.status).toBe(1);
    expect(weak.stderr).toMatch(/at least 3 of/);
    const r = spawnSync(process.execPath, [CLI, 'reset-admin', '--state-dir', stateDir], { input: `${NEW}\n`, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('no restart needed');
    // The running daemon: the old session is gone, the old password too, the new one works.
    expect((await a.get('/api/overview')).status).toBe(401);
    expect((await new RawClient(port, '127.0.8.1').post('/api/login', { password: SITE_PASSWORD })).status).toBe(401);
    expect((await new RawClient(port, '127.0.8.2').post('/api/login', { password: NEW })).status).toBe(200);
    expect(fs.statSync(stateFile(app, 'web-admin.json')).mode & 0o777).toBe(0o600);
    const reset = app.audit.recent(100).find((e) => e.action === 'admin-reset');
    expect(reset).toMatchObject({ ip: 'local', detail: { mode: 'password', via: 'cli' } });

    const del = spawnSync(process.execPath, [CLI, 'reset-admin', '--state-dir', stateDir, '--delete'], { encoding: 'utf8' });
    expect(del.status, del.stderr).toBe(0);
    expect(fs.existsSync(stateFile(app, 'web-admin.json'))).toBe(false);
    const s = await new RawClient(port).get('/api/session');
    expect(s.body.setupRequired).toBe(true);
    // A new setup code is logged for the re-opened setup, different from the first.
    expect(codes()).toHaveLength(2);
    expect(codes()[1]).not.toBe(codes()[0]);
    expect(app.auth.setupCode).toBe(codes()[1]);
    expect((await new RawClient(port).post('/api/setup', { password: NEW, setupCode: codes()[0] })).status).toBe(403);
    expect(app.audit.recent(100).filter((e) => e.action === 'admin-reset').map((e) => e.detail?.mode)).toEqual(['delete', 'password']);
  });
});
