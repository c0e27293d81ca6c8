// Diagnostics (issue 16, item 4) against the whole daemon in-process: the offline list on the
// overview, the recent log from the in-memory ring, the diagnostic bundle (searched for every
// secret and a resident's card number), "reconnect uplink now" against a real Mosquitto, and a
// restart of the daemon run as a child process.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import argon2 from 'argon2';
import * as OTPAuth from 'otpauth';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort, PymodbusServer, restartablePort, sleep, tmpDir, waitFor } from '../helpers/peers.js';
import { baseConfig, makeApp, WebClient } from '../helpers/gateway.js';
import { CLI, ROOT, assertBuilt } from '../helpers/cli.js';
import { Mosquitto } from '../helpers/mosquitto.js';
import { createLogger, LogRing } from '../../src/log.js';
import type { App } from '../../src/app.js';

const PASSWORD = 'Xihu-station-2026';
const UPLINK_PASSWORD = 'Uplink-Pw-Qz81-platform';
const BROKER_PASSWORD = 'Local-App-Pw-9931';

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** A logger that writes JSON nowhere and tees into its own ring (as the daemon's does). */
function ringLogger(): { log: ReturnType<typeof createLogger>; ring: LogRing } {
  const ring = new LogRing(500);
  const devNull = new Writable({ write: (_c, _e, cb) => cb() });
  return { log: createLogger('info', { format: 'json', destination: devNull, ring }), ring };
}

async function site(over: Record<string, unknown> = {}) {
  const simPort = await restartablePort();
  const deadPort = await freePort(); // nothing listens there: the device on it goes offline
  const { log, ring } = ringLogger();
  const { app } = makeApp(
    baseConfig({
      uplink: { url: 'mqtt://127.0.0.1:1', windowSeconds: 60, reconnectMinMs: 500, reconnectMaxMs: 1000 },
      buses: [
        { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 },
        { id: 'dead', type: 'modbus-tcp', host: '127.0.0.1', port: deadPort, timeoutMs: 300 },
      ],
      devices: [
        { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 500 },
        { id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 3, pollMs: 500 },
        { id: 'freezer-9', name: '冷冻柜', facility: 'canteen', profile: 'r4dcb08', bus: 'dead', unitId: 1, pollMs: 500 },
      ],
      simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 3 },
      ...over,
    }),
    log,
    { logs: ring },
  );
  cleanups.push(() => app.stop());
  await app.start();
  const client = new WebClient(`http://127.0.0.1:${app.web.port}`);
  const setupCode = app.auth.setupCode!;
  const r = await client.post('/api/setup', { password: PASSWORD, setupCode });
  expect(r.status).toBe(200);
  return { app, client, ring, setupCode };
}

const actions = (app: App) => app.audit.recent(100).map((e) => e.action);

describe('overview: offline devices first, with count and reason', () => {
  it('counts the offline devices, gives each reason and last answer, and lists them first', async () => {
    const { client } = await site();
    const o = await waitFor(async () => {
      const b = (await client.get('/api/overview')).body;
      return b.offline?.count === 1 && b.facilities.flatMap((f: any) => f.devices).filter((d: any) => d.online === true).length === 2 && b;
    }, 15_000, 'one device offline, two online');
    expect(o.offline).toMatchObject({ count: 1, of: 3 });
    const off = o.offline.devices[0];
    expect(off).toMatchObject({ id: 'freezer-9', name: '冷冻柜', facility: 'canteen', kind: 'modbus', since: null });
    expect(off.reason).toMatch(/ECONNREFUSED|refused/i);
    // In its facility the offline device comes before the online one.
    const canteen = o.facilities.find((f: any) => f.id === 'canteen').devices.map((d: any) => d.id);
    expect(canteen).toEqual(['freezer-9', 'fridge-1']);
  });
});

describe('overview: a device that was online', () => {
  it('when its pymodbus device goes away: offline, with the time of its last answer', async () => {
    const server = await PymodbusServer.start({ units: { '1': { hr: { '0': 42, '1': 43, '2': 44, '3': 45 } } } });
    cleanups.push(() => server.stop());
    const { client } = await site({
      buses: [{ id: 'rs', type: 'modbus-tcp', host: '127.0.0.1', port: server.port, timeoutMs: 300 }],
      devices: [{ id: 'fridge-7', facility: 'canteen', profile: 'r4dcb08', bus: 'rs', unitId: 1, pollMs: 300 }],
      simulator: { enabled: false },
    });
    const on = await waitFor(async () => {
      const b = (await client.get('/api/overview')).body;
      return b.facilities[0]?.devices[0]?.online === true && b;
    }, 15_000, 'the device online');
    expect(on.offline).toEqual({ count: 0, of: 1, devices: [] });
    await server.stop();
    const o = await waitFor(async () => {
      const b = (await client.get('/api/overview')).body;
      return b.offline.count === 1 && b;
    }, 15_000, 'the device offline');
    const d = o.offline.devices[0];
    expect(d.id).toBe('fridge-7');
    expect(typeof d.reason).toBe('string');
    expect(d.reason.length).toBeGreaterThan(0);
    // The last answer: after the start, before now, and the same as the device's own.
    const dev = o.facilities[0].devices[0];
    expect(d.since).toBe(dev.lastSuccess);
    expect(d.since).toBeGreaterThan(on.clock.now - 15_000);
    expect(d.since).toBeLessThanOrEqual(o.clock.now);
  });
});

describe('GET /api/logs', () => {
  it('serves the ring, oldest first, with a level filter; needs a login; a bad level is refused', async () => {
    const { app, client, ring, setupCode } = await site();
    await waitFor(() => ring.records('warn').some((r) => r.device === 'freezer-9'), 15_000, 'the offline warning');
    const all = (await client.get('/api/logs')).body;
    expect(all.capacity).toBe(500);
    expect(all.records.some((r: any) => r.msg === 'web server listening' && r.levelName === 'info')).toBe(true);
    const warn = (await client.get('/api/logs?level=warn')).body;
    expect(warn.level).toBe('warn');
    expect(warn.records.length).toBeGreaterThan(0);
    expect(warn.records.every((r: any) => r.level >= 40)).toBe(true);
    expect(warn.records.some((r: any) => r.device === 'freezer-9' && r.levelName === 'warn')).toBe(true);
    expect(warn.records.length).toBeLessThan(all.records.length);
    // The setup hint went through the ring: its code did not.
    const hint = all.records.find((r: any) => /no admin account yet/.test(r.msg));
    expect(hint.setupCode).toBe('[redacted]');
    expect(setupCode.length).toBeGreaterThanOrEqual(8);
    expect(JSON.stringify(all)).not.toContain(setupCode);
    expect((await client.get('/api/logs?level=loud')).status).toBe(400);
    expect((await client.get('/api/logs?level=warn&x=1')).status).toBe(400);
    expect((await new WebClient(client.base).get('/api/logs')).status).toBe(401);
    // 600 more records: the page still gets the last 500.
    for (let i = 0; i < 600; i++) app.logs.write(JSON.stringify({ level: 30, time: new Date().toISOString(), msg: `filler ${i}` }));
    const full = (await client.get('/api/logs')).body;
    expect(full.records).toHaveLength(500);
    expect(full.records.at(-1).msg).toBe('filler 599');
    expect(full.records[0].msg).toBe('filler 100');
  });
});

function totpCode(secret: string): string {
  return new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate();
}

describe('GET /api/diagnostics/bundle', () => {
  it('holds status, counters, redacted config, logs and versions, and no secret and no personal value', async () => {
    const hash = await argon2.hash(BROKER_PASSWORD, { type: argon2.argon2id });
    const { app, client } = await site({
      uplink: { url: 'mqtt://127.0.0.1:1', username: 'gw-test', password: UPLINK_PASSWORD, windowSeconds: 60, reconnectMinMs: 500, reconnectMaxMs: 1000 },
      localBroker: { host: '127.0.0.1', port: 0, anonymous: 'loopback', accounts: [{ username: 'canteen-app', passwordHash: hash, subscribe: ['community/#'] }] },
    });
    // A second factor, so that its secret exists on the box.
    const enrol = (await client.post('/api/account/totp/new')).body as { secret: string };
    expect((await client.post('/api/account/totp', { password: PASSWORD, secret: enrol.secret, code: totpCode(enrol.secret) })).status).toBe(200);
    // A config change, so that the versions list has an entry with a note.
    const cfg = (await client.get('/api/config')).body;
    expect((await client.post('/api/config', { text: cfg.text.replace('gatewayId: gw-test', 'gatewayId: gw-test\n  name: 西湖社区'), note: '站点名称' })).status).toBe(200);
    // The card number the kiosk holds now, read from the simulator over Modbus like the gateway does.
    const card = app.gateway.profileOf('kiosk-1')!.points.find((p) => p.id === 'resident_card_uid')!;
    const words = await app.gateway.tryRead('kiosk-1', { register: card.register, start: card.address, count: 2 });
    const cardNumber = words[0]! * 65536 + words[1]!;
    expect(cardNumber).toBeGreaterThanOrEqual(10_000_000);
    // The gateway has read (and pseudonymised) it too.
    const pseudonym = await waitFor(() => app.gateway.state.last.get('kiosk-1')?.get('resident_card_uid')?.value, 15_000, 'a kiosk reading');
    await waitFor(() => app.gateway.state.last.get('fridge-1')?.size, 15_000, 'a fridge reading');

    const res = await fetch(`${client.base}/api/diagnostics/bundle`, { headers: { cookie: client.cookie } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="diagnostics-gw-test-\d{8}T\d{6}\.json"$/);
    const text = await res.text();
    const b = JSON.parse(text);

    // What it holds.
    expect(b.kind).toBe('community-gateway-diagnostics');
    expect(b.versions.node).toBe(process.version);
    expect(b.versions.package).toMatch(/^\d+\.\d+\.\d+/);
    expect(b.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(b.disk.freeBytes).toBeGreaterThan(0);
    expect(b.disk.path).toBe(path.dirname(path.resolve(app.config.storage.path)));
    expect(b.status.devices.map((d: any) => d.id)).toEqual(expect.arrayContaining(['fridge-1', 'kiosk-1', 'freezer-9']));
    expect(Object.keys(b.status.devices.find((d: any) => d.id === 'fridge-1').points).length).toBeGreaterThan(0);
    expect(b.counters).toContain('cgw_readings_total');
    expect(b.config.text).toContain('(secret kept on the box)');
    expect(b.configVersions.some((v: any) => v.note === '站点名称' && v.running)).toBe(true);
    expect(b.logs.some((r: any) => r.msg === 'web server listening')).toBe(true);

    // No personal or identifier point of the kiosk, by name or by value.
    const kioskPoints = Object.keys(b.status.devices.find((d: any) => d.id === 'kiosk-1').points);
    const profile = app.gateway.profileOf('kiosk-1')!;
    for (const p of profile.points.filter((x) => x.privacy !== 'public')) expect(kioskPoints).not.toContain(p.id);
    expect(kioskPoints.length).toBeGreaterThan(0); // its public counters stay

    // No secret, searched in the raw text.
    const siteSecret = fs.readFileSync(path.join(path.dirname(path.resolve(app.config.storage.path)), 'site-secret'), 'utf8').trim();
    const token = client.cookie.replace(/^cgw_session=/, '');
    const adminFile = JSON.parse(fs.readFileSync(path.join(path.dirname(path.resolve(app.config.storage.path)), 'web-admin.json'), 'utf8'));
    const forbidden: Record<string, string> = {
      'admin password': PASSWORD,
      'uplink password': UPLINK_PASSWORD,
      'local broker password': BROKER_PASSWORD,
      'local broker password hash': hash,
      'site secret': siteSecret,
      'TOTP secret': enrol.secret,
      'session cookie': token,
      'CSRF token': client.csrf,
      'resident card number': String(cardNumber),
      'card pseudonym': String(pseudonym),
      'admin password hash': adminFile.passwordHash,
    };
    expect(adminFile.passwordHash).toMatch(/^\$argon2id\$/);
    expect(siteSecret).toMatch(/^[0-9a-f]{64}$/);
    expect(token.length).toBeGreaterThan(30);
    for (const [what, value] of Object.entries(forbidden)) expect(text.includes(value), `${what} in the bundle`).toBe(false);
    // The TOTP secret also in its other spellings (lower case, hex of its bytes).
    expect(text.toLowerCase().includes(enrol.secret.toLowerCase())).toBe(false);
    expect(text.includes(OTPAuth.Secret.fromBase32(enrol.secret).hex)).toBe(false);

    expect(actions(app)).toContain('diagnostics-bundle');
    expect((await new WebClient(client.base).get('/api/diagnostics/bundle')).status).toBe(401);
  });
});

describe('POST /api/uplink/reconnect', () => {
  it('ends the backoff: with the platform back, the uplink connects at once instead of in minutes', async () => {
    const port = await restartablePort();
    // Backoff of 5..10 minutes after the first failure: only "reconnect now" can connect soon.
    const { app, client } = await site({ uplink: { url: `mqtt://127.0.0.1:${port}`, windowSeconds: 60, reconnectMinMs: 600_000, reconnectMaxMs: 600_000, connectTimeoutMs: 2000 } });
    await waitFor(() => app.gateway.uplink!.state === 'waiting', 10_000, 'the uplink waiting after a refused connect');
    const broker = await Mosquitto.start({ port, persistence: false });
    cleanups.push(() => broker.stop());
    await sleep(1500);
    expect(app.gateway.uplink!.state).toBe('waiting'); // the backoff holds by itself
    // A command: without a nonce it is refused.
    expect((await client.post('/api/uplink/reconnect', {}, { 'x-request-nonce': '' })).status).toBe(400);
    const r = await client.post('/api/uplink/reconnect', {});
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true, before: 'waiting', state: 'connecting' });
    // Connected within a few seconds (the backoff was 300..600 s): no timing beyond that.
    await waitFor(() => app.gateway.uplink!.state === 'connected', 3000, 'the uplink connected after reconnect now');
    expect(actions(app)).toContain('uplink-reconnect');
    const again = await client.post('/api/uplink/reconnect', {});
    expect(again.body).toMatchObject({ before: 'connected', state: 'connected' });
    expect((await new WebClient(client.base).post('/api/uplink/reconnect', {})).status).toBe(401);
  });
});

describe('POST /api/system/restart', () => {
  it('in-process (no CLI around it) it is refused: nothing could start the daemon again', async () => {
    const { app, client } = await site();
    const r = await client.post('/api/system/restart', {});
    expect(r.status).toBe(503);
    expect(actions(app)).not.toContain('restart');
  });

  it('the daemon answers, is audited, stops cleanly and exits with 75 (systemd starts it again)', async () => {
    assertBuilt();
    const dir = tmpDir('cgw-restart-');
    const [web, broker] = [await freePort(), await freePort()];
    const file = path.join(dir, 'site.yaml');
    fs.writeFileSync(file, stringify(baseConfig({ web: { host: '127.0.0.1', port: web, https: false }, localBroker: { host: '127.0.0.1', port: broker, anonymous: 'loopback' }, storage: { path: path.join(dir, 'gateway.db') }, uplink: { url: 'mqtt://127.0.0.1:1', windowSeconds: 60 } })));
    const stateDir = path.join(dir, 'state');
    const proc = spawn(process.execPath, [CLI, 'run', '--config', file, '--state-dir', stateDir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info', LOG_FORMAT: 'json' } });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    cleanups.push(async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    });
    const hint = await waitFor(() => out.split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return {}; } }).find((l) => l.setupCode), 20_000, `the setup hint:\n${out}`);
    const client = new WebClient(`http://127.0.0.1:${web}`);
    expect((await client.post('/api/setup', { password: PASSWORD, setupCode: hint.setupCode })).status).toBe(200);
    const r = await client.post('/api/system/restart', { note: 'after the firmware swap' });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ ok: true, restarting: true });
    const end = await exited;
    expect(end).toEqual({ code: 75, signal: null });
    expect(out).toMatch(/"signal":"restart".*"msg":"stopping"/);
    expect(out).toContain('gateway stopped');
    const audit = fs.readFileSync(path.join(stateDir, 'audit.log'), 'utf8');
    expect(audit).toMatch(/"action":"restart".*after the firmware swap/);
  });
});
