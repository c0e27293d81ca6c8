// The technician page's JSON API against the whole daemon in-process: a simulated site, a
// real Mosquitto as the platform, real files for the config, its versions and the audit log.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { parse, stringify } from 'yaml';
import { restartablePort, waitFor } from '../helpers/peers.js';
import { baseConfig, makeApp, WebClient } from '../helpers/gateway.js';
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
  const r = app.auth.setupRequired ? await c.post('/api/setup', { password: PASSWORD }) : await c.post('/api/login', { password: PASSWORD });
  expect(r.status).toBe(200);
}

function auditActions(app: App): string[] {
  return app.audit.recent(100).map((e) => e.action);
}

describe('web API: login, CSRF, lockout', () => {
  it('asks for the first password once, then needs a session for everything under /api', async () => {
    const { app, client } = await site();
    expect((await client.get('/api/session')).body).toEqual({ setupRequired: true, authenticated: false });
    expect((await client.get('/api/overview')).status).toBe(401);
    expect((await client.post('/api/setup', { password: 'short' })).status).toBe(400);
    const set = await client.post('/api/setup', { password: PASSWORD });
    expect(set.status).toBe(200);
    expect(set.headers.get('set-cookie')).toMatch(/^cgw_session=[\w-]{40,}; HttpOnly; SameSite=Strict; Path=\//);
    expect((await client.get('/api/session')).body).toMatchObject({ setupRequired: false, authenticated: true, user: 'admin' });
    expect((await client.get('/api/overview')).status).toBe(200);
    // Only once: a second setup, even from a logged-in page, is refused.
    expect((await client.post('/api/setup', { password: 'another-password-1' })).status).toBe(409);
    const stranger = new WebClient(client.base);
    expect((await stranger.post('/api/setup', { password: 'another-password-1' })).status).toBe(409);
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
    expect((await client.post('/api/devices/fridge-1/read', { register: 'holding', start: 0, count: 126 })).body).toEqual({ error: 'count: at most 125 registers (2000 bits) per read' });
    expect((await client.post('/api/devices/fridge-1/read', { register: 'eeprom', start: 0, count: 1 })).body.error).toMatch(/^register: /);
    expect((await client.post('/api/config', { text: 'a: 1', form: {} })).body).toEqual({ error: 'body: give exactly one of text or form' });
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
    expect(r.body).toEqual({ ok: true, applied: 'reload', version: 1 });
    expect(app.gateway).toBe(gateway); // same gateway: no restart
    expect(app.gateway.uplink!.state).toBe('connected');
    expect(app.gateway.uplink!.stats.connects).toBe(connects);
    expect(app.gateway.pollers.find((p) => p.device.id === 'fridge-1')!.device.pollMs).toBe(2000);
    const saved = parse(fs.readFileSync(file, 'utf8'));
    expect(saved.devices[0].pollMs).toBe(2000);
    expect(saved.site.name).toBe('西湖 测试');
    await waitFor(() => app.gateway.pollers.every((p) => p.stats.online), 5000, 'devices polled again after the reload');

    const cfg = await client.get('/api/config');
    expect(cfg.body.versions).toEqual([expect.objectContaining({ id: 1, user: 'admin', note: 'slower fridge' })]);
    expect((await client.get('/api/config/versions/1')).body.text).toBe(original);
    expect(cfg.body.form['devices[0].pollMs']).toBe(2000);

    const back = await client.post('/api/config/rollback', { version: 1 });
    expect(back.body).toMatchObject({ ok: true, applied: 'reload' });
    expect(fs.readFileSync(file, 'utf8')).toBe(original);
    expect(app.config.devices[0]!.pollMs).toBe(500);
    expect(app.configs.versions().map((v) => v.id)).toEqual([2, 1]);
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
    expect(o.facilities.map((f: { id: string }) => f.id)).toEqual(['health', 'canteen', 'security']);
    const kiosk = o.facilities[0].devices[0];
    expect(kiosk.id).toBe('kiosk-1');
    const personal = Object.values(kiosk.points as Record<string, { withheld?: string; value: unknown }>).filter((p) => p.withheld);
    expect(personal.length).toBeGreaterThan(0);
    expect(personal.every((p) => p.value === null)).toBe(true);
    const d = (await client.get('/api/devices/kiosk-1')).body;
    expect(d.points.find((p: { id: string }) => p.id === 'systolic_bp').privacy).toBe('personal');
    expect((await client.get('/api/devices/kiosk-1/history?point=systolic_bp&hours=6')).status).toBe(403);
    const h = await client.get('/api/devices/fridge-1/history?point=fridge_1_temperature&hours=1');
    expect(h.status).toBe(200);
    await waitFor(async () => (await client.get('/api/devices/fridge-1/history?point=fridge_1_temperature&hours=1')).body.points.length > 0, 5000, 'history');
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
    expect(ex.body).toEqual({ error: 'modbus exception 2 ILLEGAL DATA ADDRESS', quality: 'exception' });
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
