// The security review's findings on the web side (issue 12), each against the whole daemon
// in-process over real HTTP: a simulated site with a health kiosk, real files for the config,
// its versions and the audit log, and the real local broker for what subscribers receive.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { restartablePort, tmpDir, waitFor } from '../helpers/peers.js';
import { baseConfig, makeApp, makeGateway, WebClient } from '../helpers/gateway.js';
import { silentLogger } from '../../src/log.js';
import { hashPassword } from '../../src/broker/access.js';
import { REDACTED } from '../../src/config/secrets.js';
import { Mosquitto } from '../helpers/mosquitto.js';
import type { App } from '../../src/app.js';

const PASSWORD = 'Xihu-station-2026';
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function site(over: Record<string, unknown> = {}) {
  const simPort = await restartablePort();
  const { app, file } = makeApp(
    baseConfig({
      uplink: { url: 'mqtt://127.0.0.1:1', windowSeconds: 60, reconnectMinMs: 500, reconnectMaxMs: 1000 },
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
      devices: [
        { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 300 },
        { id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 3, pollMs: 300 },
      ],
      simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 3 },
      ...over,
    }),
  );
  cleanups.push(() => app.stop());
  await app.start();
  const client = new WebClient(`http://127.0.0.1:${app.web.port}`);
  await loggedIn(app, client);
  return { app, file, client };
}

async function loggedIn(app: App, c: WebClient): Promise<void> {
  const r = app.auth.setupRequired ? await c.post('/api/setup', { password: PASSWORD, setupCode: app.auth.setupCode }) : await c.post('/api/login', { password: PASSWORD });
  expect(r.status).toBe(200);
}

function audit(app: App) {
  return app.audit.recent(200);
}

describe('finding 1: try-read never returns personal or identifier registers', () => {
  it('refuses (403, audited, with the reason) a range over the kiosk card number and vitals; public ranges still read', async () => {
    const { app, client } = await site();
    // The review's request: card number, blood pressure, pulse, weight, glucose.
    const r = await client.post('/api/devices/kiosk-1/read', { register: 'input', start: 0, count: 8 });
    expect(r.status).toBe(403);
    expect(r.body.error).toMatch(/resident_card_uid \(identifier\)/);
    expect(r.body.error).toMatch(/systolic_bp \(personal\)/);
    expect(r.body.words).toBeUndefined();
    const refused = audit(app).find((e) => e.action === 'device-read-refused');
    expect(refused?.detail).toMatchObject({ device: 'kiosk-1', register: 'input', start: 0, count: 8, reason: r.body.error });
    expect(audit(app).some((e) => e.action === 'device-read')).toBe(false);
    // One register of a 32-bit identifier is still the identifier.
    const card = app.gateway.profileOf('kiosk-1')!.points.find((p) => p.id === 'resident_card_uid')!;
    expect((await client.post('/api/devices/kiosk-1/read', { register: card.register, start: card.address + 1, count: 1 })).status).toBe(403);
    // An unmapped register on a device that holds personal data in that table.
    const gap = await client.post('/api/devices/kiosk-1/read', { register: 'input', start: 900, count: 1 });
    expect(gap.status).toBe(403);
    expect(gap.body.error).toMatch(/not a public point/);
    // A public point of the kiosk, and any range of the fridge, still read.
    const count = app.gateway.profileOf('kiosk-1')!.points.find((p) => p.id === 'measurement_count')!;
    const ok = await client.post('/api/devices/kiosk-1/read', { register: count.register, start: count.address, count: 1 });
    expect(ok.status).toBe(200);
    expect(ok.body.words).toHaveLength(1);
    const fridge = await client.post('/api/devices/fridge-1/read', { register: 'holding', start: 0, count: 2 });
    expect(fridge.status).toBe(200);
  });
});

describe('finding 2: a config cannot declassify data', () => {
  it('refuses an override that loosens a class, naming the point, and keeps the running config', async () => {
    const { app, client, file } = await site();
    const before = fs.readFileSync(file, 'utf8');
    const doc = parse(before) as { devices: { id: string; privacy?: Record<string, string> }[] };
    doc.devices.find((d) => d.id === 'kiosk-1')!.privacy = { resident_card_uid: 'public', systolic_bp: 'public' };
    const r = await client.post('/api/config', { text: stringify(doc) });
    expect(r.status).toBe(422);
    const paths = r.body.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['devices[1].privacy.resident_card_uid', 'devices[1].privacy.systolic_bp']));
    expect(r.body.errors[0].message).toMatch(/only tighten/);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(app.gateway.profileOf('kiosk-1')!.points.find((p) => p.id === 'resident_card_uid')!.privacy).toBe('identifier');

    // Nothing of the card reaches an anonymous loopback subscriber meanwhile.
    const seen: string[] = [];
    const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${app.gateway.broker.port}`, { reconnectPeriod: 0 });
    cleanups.push(() => sub.endAsync());
    sub.on('message', (t) => seen.push(t));
    await sub.subscribeAsync('community/#');
    await waitFor(() => seen.some((t) => t.includes('/kiosk-1/')), 5000);
    expect(seen.some((t) => t.endsWith('/resident_card_uid') || t.endsWith('/systolic_bp'))).toBe(false);

    // Tightening is fine.
    doc.devices.find((d) => d.id === 'kiosk-1')!.privacy = { measurement_count: 'personal' };
    const t = await client.post('/api/config', { text: stringify(doc) });
    expect(t.status).toBe(200);
    expect(app.gateway.profileOf('kiosk-1')!.points.find((p) => p.id === 'measurement_count')!.privacy).toBe('personal');
  });

  it('readings kept under a site tightening are deleted when the site takes it back', async () => {
    const { app, client, file } = await site();
    const doc = parse(fs.readFileSync(file, 'utf8')) as { devices: { id: string; privacy?: Record<string, string> }[] };
    doc.devices.find((d) => d.id === 'fridge-1')!.privacy = { fridge_1_temperature: 'personal' };
    expect((await client.post('/api/config', { text: stringify(doc) })).status).toBe(200);
    const stored = () => app.gateway.raw!.series('fridge-1', 'fridge_1_temperature', 0, Date.now() + 1000);
    await waitFor(() => stored().length >= 3, 5000);
    const keptUntil = stored().at(-1)!.ts;
    // Stored as personal: the chart refuses it.
    expect((await client.get('/api/devices/fridge-1/history?point=fridge_1_temperature&hours=1')).status).toBe(403);
    delete doc.devices.find((d) => d.id === 'fridge-1')!.privacy;
    const back = await client.post('/api/config', { text: stringify(doc) });
    expect(back.status).toBe(200);
    // Loosened back to the profile's public: what was collected as personal is gone, new
    // readings are kept and charted again.
    expect(app.gateway.raw!.series('fridge-1', 'fridge_1_temperature', 0, keptUntil)).toEqual([]);
    await waitFor(() => stored().length > 0, 5000);
    expect((await client.get('/api/devices/fridge-1/history?point=fridge_1_temperature&hours=1')).status).toBe(200);
  });
});

describe('finding 11: odd requests answer 400, never 500', () => {
  it('a YAML alias bomb and a malformed percent-escape', async () => {
    const { client } = await site();
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...'bcdefghi'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`)].join('\n');
    const v = await client.post('/api/config/validate', { text: bomb });
    expect(v.status).toBe(200);
    expect(v.body.ok).toBe(false);
    expect(JSON.stringify(v.body.errors)).toMatch(/alias/i);
    const a = await client.post('/api/config', { text: bomb });
    expect(a.status).toBe(422);
    const bad = await client.get('/api/devices/%E0%A4%A/history?point=x');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/percent/);
  });
});

describe('finding 11: one login cannot hold every live-event slot', () => {
  it('a fifth stream of one session is refused (429) while another session still gets one', async () => {
    const { app, client } = await site();
    const aborts: AbortController[] = [];
    cleanups.push(() => aborts.forEach((a) => a.abort()));
    const open = async (c: WebClient) => {
      const a = new AbortController();
      aborts.push(a);
      const r = await fetch(`${c.base}/api/events`, { headers: { cookie: c.cookie }, signal: a.signal });
      if (r.status !== 200) await r.text();
      return r.status;
    };
    for (let i = 0; i < 4; i++) expect(await open(client)).toBe(200);
    expect(await open(client)).toBe(429);
    const other = new WebClient(client.base);
    await loggedIn(app, other);
    expect(await open(other)).toBe(200);
    // Closing one of the first session's streams gives its slot back.
    aborts[0]!.abort();
    await waitFor(async () => (await open(client)) === 200, 3000);
  });
});

describe('finding 4: the admin account, audit log and site secret stay in one fixed state folder', () => {
  it('refuses to move storage.path from the page; a move in the file keeps setup closed, the audit trail and the secret', async () => {
    const stateDir = tmpDir('cgw-state-');
    const dbDir = tmpDir('cgw-db-');
    const cfg = baseConfig({ storage: { path: path.join(dbDir, 'gateway.db') } });
    const first = makeApp(cfg, silentLogger(), { stateDir });
    await first.app.start();
    const c1 = new WebClient(`http://127.0.0.1:${first.app.web.port}`);
    await loggedIn(first.app, c1);
    const doc = parse(fs.readFileSync(first.file, 'utf8')) as { storage: { path: string } };
    doc.storage.path = path.join(tmpDir('cgw-elsewhere-'), 'gateway.db');
    const r = await c1.post('/api/config', { text: stringify(doc) });
    expect(r.status).toBe(422);
    expect(r.body.errors[0]).toMatchObject({ path: 'storage.path', message: expect.stringMatching(/cannot be changed while the gateway runs/) });
    const secret = fs.readFileSync(path.join(stateDir, 'site-secret'));
    await first.app.stop();
    expect(fs.existsSync(path.join(dbDir, 'web-admin.json'))).toBe(false);

    // The technician moves the database in the file, with the daemon stopped.
    const second = makeApp({ ...cfg, storage: { path: doc.storage.path } }, silentLogger(), { stateDir });
    cleanups.push(() => second.app.stop());
    await second.app.start();
    expect(second.app.auth.setupRequired).toBe(false);
    const c2 = new WebClient(`http://127.0.0.1:${second.app.web.port}`);
    expect((await c2.post('/api/setup', { password: 'Another-password-2026', setupCode: 'ABCDEFGHJK' })).status).toBe(409);
    await loggedIn(second.app, c2);
    expect(second.app.audit.recent(100).map((e) => e.action)).toEqual(expect.arrayContaining(['setup', 'config-rejected', 'login']));
    expect(fs.readFileSync(path.join(stateDir, 'site-secret')).equals(secret)).toBe(true);
  });

  it('an install that kept them beside the database has them moved into the state folder once', async () => {
    const dbDir = tmpDir('cgw-db-');
    const old = makeApp(baseConfig({ storage: { path: path.join(dbDir, 'gateway.db') } }), silentLogger(), { stateDir: dbDir });
    await old.app.start();
    await loggedIn(old.app, new WebClient(`http://127.0.0.1:${old.app.web.port}`));
    await old.app.stop();
    const stateDir = tmpDir('cgw-state-');
    const moved = makeApp(baseConfig({ storage: { path: path.join(dbDir, 'gateway.db') } }), silentLogger(), { stateDir });
    cleanups.push(() => moved.app.stop());
    await moved.app.start();
    expect(moved.app.auth.setupRequired).toBe(false);
    for (const f of ['web-admin.json', 'site-secret', 'audit.log']) {
      expect(fs.existsSync(path.join(stateDir, f)), f).toBe(true);
      expect(fs.existsSync(path.join(dbDir, f)), f).toBe(false);
    }
  });
});

describe('finding 10: the database and its folder are private whatever the umask', () => {
  it('creates the folder 0700 and gateway.db, -wal, -shm 0600 under umask 022; tightens an old 0755/0644 install', async () => {
    const before = process.umask(0o022);
    try {
      const dir = path.join(tmpDir('cgw-umask-'), 'state');
      const g = makeGateway(baseConfig({ storage: { path: path.join(dir, 'gateway.db') } }));
      await g.start();
      const mode = (f: string) => (fs.statSync(f).mode & 0o777).toString(8);
      // While it runs (the WAL and its index exist then; a clean close removes them).
      expect(mode(dir)).toBe('700');
      for (const n of ['gateway.db', 'gateway.db-wal', 'gateway.db-shm', 'site-secret']) expect(mode(path.join(dir, n)), n).toBe('600');
      await g.stop();
      // An install made before the fix (the site secret was 0600 already).
      fs.chmodSync(dir, 0o755);
      fs.chmodSync(path.join(dir, 'gateway.db'), 0o644);
      const again = makeGateway(baseConfig({ storage: { path: path.join(dir, 'gateway.db') } }));
      await again.start();
      expect(mode(dir)).toBe('700');
      for (const n of ['gateway.db', 'gateway.db-wal', 'gateway.db-shm', 'site-secret']) expect(mode(path.join(dir, n)), n).toBe('600');
      await again.stop();
    } finally {
      process.umask(before);
    }
  });
});

describe('finding 11: secrets stay out of the page and out of config versions', () => {
  it('GET /api/config redacts the uplink password and broker hashes; an edit keeps them; versions never hold them', async () => {
    const hash = await hashPassword('Staff-account-2026');
    const { app, client, file } = await site({
      uplink: { url: 'mqtt://127.0.0.1:1', windowSeconds: 60, reconnectMinMs: 500, reconnectMaxMs: 1000, username: 'gw', password: 'platform-Secret-77' },
      localBroker: { host: '127.0.0.1', port: 0, anonymous: 'loopback', accounts: [{ username: 'staff', passwordHash: hash, subscribe: ['community/#'] }] },
    });
    const cfg = await client.get('/api/config');
    expect(cfg.status).toBe(200);
    expect(cfg.body.text).not.toContain('platform-Secret-77');
    expect(cfg.body.text).not.toContain(hash);
    expect(cfg.body.text).toContain(REDACTED);
    // The technician edits the text as shown (placeholders and all).
    const edited = (cfg.body.text as string).replace('pollMs: 300', 'pollMs: 400');
    expect(edited).not.toBe(cfg.body.text);
    expect((await client.post('/api/config/validate', { text: edited })).body).toEqual({ ok: true, errors: [] });
    const r = await client.post('/api/config', { text: edited, note: 'slower' });
    expect(r.status).toBe(200);
    expect(app.config.uplink.password).toBe('platform-Secret-77');
    expect(app.config.localBroker.accounts[0]!.passwordHash).toBe(hash);
    expect(fs.readFileSync(file, 'utf8')).toContain('platform-Secret-77');
    const versionsDir = `${file}.versions`;
    for (const f of fs.readdirSync(versionsDir)) {
      const t = fs.readFileSync(path.join(versionsDir, f), 'utf8');
      expect(t, f).not.toContain('platform-Secret-77');
      expect(t, f).not.toContain(hash);
    }
    const v = app.configs.versions().find((x) => !x.running)!; // the config before the edit
    expect((await client.get(`/api/config/versions/${v.id}`)).body.text).not.toContain('platform-Secret-77');
    // A rollback keeps today's secrets.
    const back = await client.post('/api/config/rollback', { version: v.id });
    expect(back.status).toBe(200);
    expect(app.config.uplink.password).toBe('platform-Secret-77');
    expect(app.config.devices[0]!.pollMs).toBe(300);
    // A placeholder for a secret the running config does not have is named.
    const stray = edited.replace('username: staff', 'username: nobody');
    const e = await client.post('/api/config/validate', { text: stray });
    expect(e.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'localBroker.accounts[0].passwordHash' })]));
  });

  it('a rejected config never quotes a secret into the audit log', async () => {
    const { app, client } = await site();
    const cfg = await client.get('/api/config');
    const text = (cfg.body.text as string).replace(/uplink:\n/, 'uplink:\n  username: gw\n  password: 987654321\n');
    expect(text).toContain('987654321');
    const r = await client.post('/api/config', { text });
    expect(r.status).toBe(422);
    expect(r.body.errors.map((e: { path: string }) => e.path)).toContain('uplink.password');
    const rejected = app.audit.recent(20).find((e) => e.action === 'config-rejected');
    expect(rejected).toBeDefined();
    expect(JSON.stringify(rejected)).not.toContain('987654321');
    expect(JSON.stringify(rejected)).toContain('uplink.password');
  });

  it('a version kept in clear by an older gateway is scrubbed at start', async () => {
    const { app, file } = await site({ uplink: { url: 'mqtt://127.0.0.1:1', windowSeconds: 60, username: 'gw', password: 'platform-Secret-77' } });
    await app.stop();
    fs.mkdirSync(`${file}.versions`, { recursive: true });
    fs.writeFileSync(path.join(`${file}.versions`, '1.yaml'), fs.readFileSync(file, 'utf8'));
    await app.start();
    expect(fs.readFileSync(path.join(`${file}.versions`, '1.yaml'), 'utf8')).not.toContain('platform-Secret-77');
    expect(app.configs.version(1)).toContain(REDACTED);
  });
});

describe('replay protection for commands (等保: data integrity of commands)', () => {
  it('a write or a config apply re-sent with the same nonce is refused and audited; each runs once', async () => {
    const { app, client } = await site({
      devices: [{ id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 2, pollMs: 300 }],
    });
    const nonce = 'replay-test-nonce-0001';
    const body = { point: 'alarm_siren', value: true, confirm: true };
    expect((await client.post('/api/devices/io-1/write', body, { 'x-request-nonce': nonce })).status).toBe(200);
    const again = await client.post('/api/devices/io-1/write', body, { 'x-request-nonce': nonce });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatch(/replayed/);
    const actions = app.audit.recent(100).map((e) => e.action);
    expect(actions.filter((a) => a === 'device-write')).toHaveLength(1);
    expect(actions).toContain('replay-refused');
    // Without a nonce a command is refused; a read-only call needs none.
    const bare = await fetch(`${client.base}/api/devices/io-1/write`, { method: 'POST', headers: { cookie: client.cookie, 'x-csrf-token': client.csrf, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(bare.status).toBe(400);
    expect((await bare.json()).error).toMatch(/^X-Request-Nonce: required/);
    // A config apply, replayed.
    const cfg = await client.get('/api/config');
    const text = (cfg.body.text as string).replace('pollMs: 300', 'pollMs: 350');
    expect((await client.post('/api/config', { text }, { 'x-request-nonce': 'replay-test-nonce-0002' })).status).toBe(200);
    const versions = app.configs.versions().length;
    expect((await client.post('/api/config', { text }, { 'x-request-nonce': 'replay-test-nonce-0002' })).status).toBe(409);
    expect(app.configs.versions()).toHaveLength(versions);
  });
});

describe('the audit chain head leaves the box in the status message', () => {
  it('the platform receives health.audit whose head is the sha256 of that audit line', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const { app } = await site({ uplink: { url: `mqtt://127.0.0.1:${broker.port}`, windowSeconds: 60, reconnectMinMs: 500, reconnectMaxMs: 1000, statusIntervalSeconds: 5 } });
    await waitFor(() => app.gateway.uplink!.state === 'connected', 10000, 'uplink connected');
    const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { reconnectPeriod: 0 });
    cleanups.push(() => sub.endAsync());
    let status: { health?: { audit?: { seq: number; head: string } } } | null = null;
    sub.on('message', (_t, p) => (status = JSON.parse(p.toString())));
    await sub.subscribeAsync('fc/v1/+/+/status', { qos: 1 });
    // The periodic status after the login carries the setup and login lines.
    await waitFor(() => (status?.health?.audit?.seq ?? 0) >= 1, 12000, 'a status after the login');
    const audit = status!.health!.audit!;
    const lines = fs.readFileSync(path.join(path.dirname(app.config.storage.path), 'audit.log'), 'utf8').split('\n').filter(Boolean);
    const line = lines.find((l) => (JSON.parse(l) as { seq: number }).seq === audit.seq)!;
    expect(crypto.createHash('sha256').update(line).digest('hex')).toBe(audit.head);
  });
});

describe('a page setting that cannot start never takes the page down', () => {
  it('a web.tls file that does not exist is refused by name; a taken port falls back to the previous listener', async () => {
    const { app, client } = await site();
    const cfg = await client.get('/api/config');
    const text = cfg.body.text as string;
    const missing = text.replace('https: false', 'https: true\n  tls: { certFile: /nonexistent/web.crt, keyFile: /nonexistent/web.key }');
    expect(missing).not.toBe(text);
    const r = await client.post('/api/config', { text: missing });
    expect(r.status).toBe(422);
    expect(r.body.errors.map((e: { path: string }) => e.path)).toEqual(expect.arrayContaining(['web.tls.certFile', 'web.tls.keyFile']));
    // A port someone else holds.
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
    const taken = (squatter.address() as net.AddressInfo).port;
    const moved = text.replace(/port: 0\n(\s+https: false)/, `port: ${taken}\n$1`);
    expect(moved).not.toBe(text);
    const before = app.web.port;
    expect((await client.post('/api/config', { text: moved })).status).toBe(200);
    // The rebind runs 200 ms after the answer, fails on the taken port, and comes back on the
    // previous setting (port 0 here: a new ephemeral port).
    await waitFor(async () => {
      const port = app.web.port;
      if (port === taken || port === 0 || port === before) return false;
      return (await fetch(`http://127.0.0.1:${port}/healthz`).then((x) => x.status, () => 0)) === 200;
    }, 5000, 'the page back on a port of its own');
  });
});
