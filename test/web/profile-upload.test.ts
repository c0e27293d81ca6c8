// POST /api/profiles (src/web/profile-upload.ts): a site profile uploaded from the page,
// checked as the daemon loads it, stored as <config dir>/drivers/<id>.yaml (0640, by rename),
// a shipped id refused naming both files, a bad field named, replace only when asked,
// audited; admin login, CSRF and nonce.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { baseConfig, makeApp, WebClient } from '../helpers/gateway.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { loadProfileSet } from '../../src/config/profiles.js';
import type { App } from '../../src/app.js';

const PASSWORD = 'Xihu-station-2026';
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function site(): Promise<{ app: App; client: WebClient; dir: string; file: string }> {
  const { app, file } = makeApp(baseConfig());
  cleanups.push(() => app.stop());
  await app.start();
  const client = new WebClient(`http://127.0.0.1:${app.web.port}`);
  expect((await client.post('/api/setup', { password: PASSWORD, setupCode: app.auth.setupCode })).status).toBe(200);
  return { app, client, dir: path.join(path.dirname(file), 'drivers'), file };
}

const shipped = fs.readFileSync(path.join(DRIVERS_DIR, 'xy-md02.yaml'), 'utf8');
const siteCopy = (id = 'xy-md02-site') => shipped.replace(/^id: xy-md02$/m, `id: ${id}`);

describe('web API: site profile upload', () => {
  it('stores a valid profile as drivers/<id>.yaml beside the config (0640), loadable at the next start; audited', async () => {
    const { app, client, dir, file } = await site();
    const r = await client.post('/api/profiles', { yaml: siteCopy() });
    expect(r.status).toBe(200);
    const stored = path.join(dir, 'xy-md02-site.yaml');
    expect(r.body).toEqual({ ok: true, id: 'xy-md02-site', file: stored, replaced: false, restartRequired: true });
    expect(fs.readFileSync(stored, 'utf8')).toBe(siteCopy());
    expect(fs.statSync(stored).mode & 0o777).toBe(0o640);
    expect(fs.readdirSync(dir)).toEqual(['xy-md02-site.yaml']); // no staging folder left
    // Not running yet: the daemon loads profiles at start.
    expect(app.profiles.has('xy-md02-site')).toBe(false);
    const list = await client.get('/api/profiles');
    expect(list.body.notLoaded).toEqual(['xy-md02-site']);
    expect(list.body.profiles.map((p: { id: string }) => p.id)).toContain('xy-md02');
    expect(loadProfileSet({ configFile: file }).origins.get('xy-md02-site')).toEqual({ source: 'site', file: stored });
    expect(app.audit.recent(10).find((e) => e.action === 'profile-upload')).toMatchObject({ user: 'admin', detail: { id: 'xy-md02-site', file: stored, replaced: false } });
  });

  it('refuses a shipped id, naming the shipped file and the file it would have been; nothing stored', async () => {
    const { app, client, dir } = await site();
    const r = await client.post('/api/profiles', { yaml: shipped });
    expect(r.status).toBe(422);
    expect(r.body.reason).toBe('clash');
    expect(r.body.errors).toHaveLength(1);
    expect(r.body.errors[0]).toContain(path.join(dir, 'xy-md02.yaml'));
    expect(r.body.errors[0]).toContain(`is the id of the shipped profile ${path.join(DRIVERS_DIR, 'xy-md02.yaml')}`);
    // Refused before anything is written: not even the folder is made.
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.readFileSync(path.join(DRIVERS_DIR, 'xy-md02.yaml'), 'utf8')).toBe(shipped);
    const gpio = await client.post('/api/profiles', { yaml: siteCopy('gpio-contact') });
    expect(gpio.body.errors[0]).toMatch(/built-in profile of GPIO inputs/);
    expect(app.audit.recent(10).filter((e) => e.action === 'profile-upload-refused')).toHaveLength(2);
  });

  it('names the bad field (with its line) and the YAML error; nothing stored', async () => {
    const { client, dir } = await site();
    const bad = siteCopy().replace(/type: int16/, 'type: int17');
    const r = await client.post('/api/profiles', { yaml: bad });
    expect(r.status).toBe(422);
    expect(r.body.reason).toBe('invalid');
    expect(r.body.errors.join('\n')).toMatch(/^points\[0\]\.type: .*\(line \d+\)/m);
    const broken = await client.post('/api/profiles', { yaml: 'id: x\n  points: [' });
    expect(broken.status).toBe(422);
    expect(broken.body.errors.length).toBeGreaterThan(0);
    const dup = siteCopy().replace(/id: humidity/, 'id: temperature');
    expect((await client.post('/api/profiles', { yaml: dup })).body.errors).toContain('points[1].id: "temperature" is used twice');
    expect(fs.existsSync(dir) ? fs.readdirSync(dir) : []).toEqual([]);
  });

  it('replaces an existing site profile only with replace: true', async () => {
    const { app, client, dir } = await site();
    expect((await client.post('/api/profiles', { yaml: siteCopy() })).status).toBe(200);
    const changed = siteCopy().replace(/^model: .*$/m, 'model: XY-MD02 (site copy)');
    const again = await client.post('/api/profiles', { yaml: changed });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ ok: false, reason: 'exists' });
    expect(fs.readFileSync(path.join(dir, 'xy-md02-site.yaml'), 'utf8')).toBe(siteCopy());
    const r = await client.post('/api/profiles', { yaml: changed, replace: true });
    expect(r.body).toMatchObject({ ok: true, replaced: true });
    expect(fs.readFileSync(path.join(dir, 'xy-md02-site.yaml'), 'utf8')).toBe(changed);
    // A link in the folder is never written through.
    fs.symlinkSync(path.join(DRIVERS_DIR, 'r4dcb08.yaml'), path.join(dir, 'linked.yaml'));
    const link = await client.post('/api/profiles', { yaml: siteCopy('linked'), replace: true });
    expect(link.body).toMatchObject({ ok: false, reason: 'exists' });
    expect(fs.lstatSync(path.join(dir, 'linked.yaml')).isSymbolicLink()).toBe(true);
    expect(app.audit.recent(10).find((e) => e.action === 'profile-upload')?.detail).toMatchObject({ replaced: true });
  });

  it('admin only: no login 401, wrong CSRF 403, no nonce 400; validated at the edge', async () => {
    const { client, dir } = await site();
    const anonymous = new WebClient(client.base);
    expect((await anonymous.post('/api/profiles', { yaml: siteCopy() })).status).toBe(401);
    expect((await anonymous.get('/api/profiles')).status).toBe(401);
    expect((await client.post('/api/profiles', { yaml: siteCopy() }, { 'x-csrf-token': 'wrong' })).status).toBe(403);
    expect((await client.post('/api/profiles', { yaml: siteCopy() }, { 'x-request-nonce': '' })).status).toBe(400);
    expect((await client.post('/api/profiles', { yaml: '' })).body.error).toBe('yaml: is required');
    expect((await client.post('/api/profiles', { yaml: siteCopy(), path: '/etc/x' })).body.error).toMatch(/unrecognized key/i);
    expect(fs.existsSync(dir)).toBe(false);
  });
});
