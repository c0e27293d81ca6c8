// Config versions through the web API against the whole daemon in-process (real files, a
// simulated site): the version noted with a change holds that change and is marked running,
// the diff before an apply and before a rollback (redacted: no secret ever in it), a rollback
// that restores the version named and says so in its note and in the audit log, and a store
// left by an older gateway converted at start.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { restartablePort } from '../helpers/peers.js';
import { baseConfig, capturingLogger, makeApp, WebClient } from '../helpers/gateway.js';
import { REDACTED } from '../../src/config/secrets.js';
import type { App } from '../../src/app.js';

const PASSWORD = 'Xihu-station-2026';
const SECRET = 'platform-Secret-77';
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function site(opts: { before?: (file: string) => void; log?: ReturnType<typeof capturingLogger>['log'] } = {}) {
  const simPort = await restartablePort();
  const { app, file } = makeApp(
    baseConfig({
      uplink: { url: 'mqtt://127.0.0.1:1', windowSeconds: 60, reconnectMinMs: 500, reconnectMaxMs: 1000, username: 'gw', password: SECRET },
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
      devices: [{ id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 500 }],
      alarms: [{ id: 'fridge-warm', device: 'fridge-1', point: 'fridge_1_temperature', above: 8, forSeconds: 600 }],
      simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 3 },
    }),
    opts.log,
  );
  opts.before?.(file);
  cleanups.push(() => app.stop());
  await app.start();
  const client = new WebClient(`http://127.0.0.1:${app.web.port}`);
  const r = await client.post('/api/setup', { password: PASSWORD, setupCode: app.auth.setupCode });
  expect(r.status).toBe(200);
  return { app, file, client };
}

const threshold = (text: string) => parse(text).alarms[0].above as number;
const withThreshold = (text: string, above: number) => text.replace(/above: \d+/, `above: ${above}`);

describe('config versions through the web API (issue 16)', () => {
  it('the note typed with a change is on the version holding it; the diff before apply and rollback; rollback restores the version named', async () => {
    const { app, client, file } = await site();
    const shown = (await client.get('/api/config')).body;
    expect(shown.versions).toEqual([]);
    expect(shown.running).toBeNull();

    // Before the apply: the diff of the running config against the edited text, secrets redacted.
    const edited = withThreshold(shown.text, 6);
    const d = await client.post('/api/config/diff', { text: edited });
    expect(d.status).toBe(200);
    expect(d.body).toMatchObject({ identical: false, secretsChanged: false, added: 1, removed: 1, tooLarge: false, from: { running: null } });
    expect(d.body.unified).toMatch(/^@@ .* @@\n/);
    expect(d.body.unified).toContain('\n-    above: 8\n+    above: 6\n');
    expect(JSON.stringify(d.body)).not.toContain(SECRET);
    // Context around a change next to a secret is shown redacted, not dropped.
    const near = (await client.post('/api/config/diff', { text: shown.text.replace('username: gw', 'username: gw-2') })).body;
    expect(near.unified).toContain('+  username: gw-2');
    expect(near.unified).toContain(REDACTED);
    expect(JSON.stringify(near)).not.toContain(SECRET);
    // The form path gives the same kind of diff; an unchanged text is identical.
    const f = await client.post('/api/config/diff', { form: { 'devices[0].pollMs': 2000 } });
    expect(f.body.unified).toContain('+    pollMs: 2000');
    expect((await client.post('/api/config/diff', { text: shown.text })).body).toMatchObject({ identical: true, unified: '' });
    // A diff is a read: not audited, no nonce needed, but validated at the edge.
    expect((await client.post('/api/config/diff', { text: 'a', form: {} })).status).toBe(400);

    const applied = await client.post('/api/config', { text: edited, note: '冷藏柜报警阈值改为 6°C' });
    expect(applied.body).toEqual({ ok: true, applied: expect.any(String), version: 2 });
    await client.post('/api/config', { text: withThreshold(edited, 10), note: '夏季放宽到 10°C' });
    expect(app.config.alarms[0]!.above).toBe(10);

    const cfg = (await client.get('/api/config')).body;
    expect(cfg.running).toBe(3);
    expect(cfg.versions.map((v: { id: number; note: string; user: string; running: boolean }) => [v.id, v.note, v.user, v.running])).toEqual([
      [3, '夏季放宽到 10°C', 'admin', true],
      [2, '冷藏柜报警阈值改为 6°C', 'admin', false],
      [1, 'the config as found', 'system', false],
    ]);
    for (const v of cfg.versions) expect(typeof v.ts).toBe('number');
    const six = cfg.versions.find((v: { note: string }) => v.note === '冷藏柜报警阈值改为 6°C');
    const v6 = await client.get(`/api/config/versions/${six.id}`);
    expect(threshold(v6.body.text)).toBe(6);
    expect(v6.body.running).toBe(false);
    expect(v6.body.text).not.toContain(SECRET);

    // Before the rollback: running (10) against version 2 (6).
    const rd = await client.get('/api/config/versions/2/diff');
    expect(rd.status).toBe(200);
    expect(rd.body).toMatchObject({ from: { running: 3 }, to: { version: 2 }, added: 1, removed: 1 });
    expect(rd.body.unified).toContain('\n-    above: 10\n+    above: 6\n');
    expect(JSON.stringify(rd.body)).not.toContain(SECRET);
    expect((await client.get('/api/config/versions/3/diff')).body).toMatchObject({ identical: true });
    expect((await client.get('/api/config/versions/99/diff')).status).toBe(404);

    // The rollback applies version 2's text, keeps today's secret, and is a new version naming 2.
    const back = await client.post('/api/config/rollback', { version: 2, note: '夏天过了' });
    expect(back.body).toMatchObject({ ok: true, version: 4, rollbackOf: 2 });
    expect(app.config.alarms[0]!.above).toBe(6);
    expect(threshold(fs.readFileSync(file, 'utf8'))).toBe(6);
    expect(app.config.uplink.password).toBe(SECRET);
    const after = (await client.get('/api/config')).body;
    expect(after.running).toBe(4);
    expect(after.versions[0]).toMatchObject({ id: 4, note: 'rollback to version 2: 夏天过了', kind: 'rollback', rollbackOf: 2, running: true });
    const audit = app.audit.recent(20).find((e) => e.action === 'config-rollback');
    expect(audit?.detail).toMatchObject({ rollbackOf: 2, from: 3, note: 'rollback to version 2: 夏天过了' });
    // Rolling back to what runs already is refused; an unknown version is named.
    expect((await client.post('/api/config/rollback', { version: 4 })).status).toBe(409);
    expect((await client.post('/api/config/rollback', { version: 77 })).body.error).toBe('no kept version 77');
    // A rollback without a user note: the note names the version only.
    expect((await client.post('/api/config/rollback', { version: 1 })).body).toMatchObject({ ok: true, version: 5, rollbackOf: 1 });
    expect(app.configs.versions()[0]).toMatchObject({ note: 'rollback to version 1', running: true });
    expect(app.config.alarms[0]!.above).toBe(8);
  });

  it('a secret changed alone is reported without its value; an edit that keeps the placeholders is not a secret change', async () => {
    const { client } = await site();
    const shown = (await client.get('/api/config')).body.text as string;
    expect(shown).toContain(REDACTED);
    const typed = shown.replace(JSON.stringify(REDACTED), '"a-new-Password-99"');
    expect(typed).not.toBe(shown);
    const d = (await client.post('/api/config/diff', { text: typed })).body;
    expect(d).toMatchObject({ identical: false, secretsChanged: true, unified: '' });
    expect(JSON.stringify(d)).not.toContain('a-new-Password-99');
    expect(JSON.stringify(d)).not.toContain(SECRET);
    const kept = (await client.post('/api/config/diff', { text: shown })).body;
    expect(kept).toMatchObject({ identical: true, secretsChanged: false });
    // Text YAML cannot parse: no diff (it would be withheld whole).
    expect((await client.post('/api/config/diff', { text: 'site: [' })).body).toMatchObject({ unparsable: true, unified: null });
  });

  it('a store written by the older gateway (the text before each change under its note) is converted at start', async () => {
    const cap = capturingLogger();
    const { app, client } = await site({
      log: cap.log,
      before: (file) => {
        // As the old code left it after two changes 5 -> 6 -> 8 (the file the daemon runs):
        // 1.yaml holds 5 under the note of the change to 6.
        const now = fs.readFileSync(file, 'utf8');
        const dir = `${file}.versions`;
        fs.mkdirSync(dir, { mode: 0o700 });
        fs.writeFileSync(path.join(dir, '1.yaml'), withThreshold(now, 5).replace(SECRET, REDACTED));
        fs.writeFileSync(path.join(dir, '2.yaml'), withThreshold(now, 6).replace(SECRET, REDACTED));
        fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify([
          { id: 2, ts: 1_746_000_002_000, user: 'admin', note: '恢复 8°C' },
          { id: 1, ts: 1_746_000_001_000, user: 'admin', note: '冷藏柜报警阈值改为 6°C' },
        ]));
      },
    });
    expect(cap.lines().some((l) => l.msg === 'config versions converted: each now holds the config its change produced' && l.versions === 3)).toBe(true);
    const cfg = (await client.get('/api/config')).body;
    expect(cfg.versions.map((v: { id: number; note: string; running: boolean }) => [v.id, v.note, v.running])).toEqual([
      [2, '恢复 8°C', true],
      [1, '冷藏柜报警阈值改为 6°C', false],
      [0, 'the config as found (before version 1)', false],
    ]);
    expect(threshold((await client.get('/api/config/versions/1')).body.text)).toBe(6);
    // Version 0 (as found) can be rolled back to, like any other.
    const back = await client.post('/api/config/rollback', { version: 0 });
    expect(back.body).toMatchObject({ ok: true, version: 3, rollbackOf: 0 });
    expect(app.config.alarms[0]!.above).toBe(5);
    expect(app.config.uplink.password).toBe(SECRET);
  });

  it('a rollback is a command: without a nonce it is refused and nothing changes', async () => {
    const { app, client } = await site();
    await client.post('/api/config', { text: withThreshold((await client.get('/api/config')).body.text, 6), note: 'x' });
    const res = await fetch(`${client.base}/api/config/rollback`, { method: 'POST', headers: { cookie: client.cookie, 'x-csrf-token': client.csrf, 'content-type': 'application/json' }, body: JSON.stringify({ version: 1 }) });
    expect(res.status).toBe(400);
    expect(app.config.alarms[0]!.above).toBe(6);
    expect(app.configs.versions()).toHaveLength(2);
    expect(stringify(app.config.alarms)).toContain('above: 6');
  });
});
