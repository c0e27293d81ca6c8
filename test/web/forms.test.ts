// The entry forms' API (docs/WEB.md, "Devices, buses and alarm rules"): the profile and serial
// port pickers, "read now" of an unsaved device through a running bus (pymodbus and the
// simulator as the devices), and one entry of devices, buses or alarms added, changed and
// removed through the same checks and apply as the YAML tab; a serial path missing on the box
// refused at its field.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { App } from '../../src/app.js';
import { loadProfileSet } from '../../src/config/profiles.js';
import { parseSiteConfig } from '../../src/config/site-config.js';
import { silentLogger } from '../../src/log.js';
import { baseConfig, WebClient } from '../helpers/gateway.js';
import { PymodbusServer, restartablePort, tmpDir, waitFor } from '../helpers/peers.js';

const PASSWORD = 'Xihu-station-2026';
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** A simulated site plus a pymodbus "field" bus; the config file has a site profile beside it. */
async function site() {
  const simPort = await restartablePort();
  const field = await PymodbusServer.start({ ignoreMissingUnits: true, units: { '7': { ir: { '1': 45, '2': 712 } } } });
  cleanups.push(() => field.stop());
  const dir = tmpDir('cgw-forms-');
  fs.mkdirSync(path.join(dir, 'drivers'));
  fs.copyFileSync('test/fixtures/site-drivers/acme-cr10.yaml', path.join(dir, 'drivers', 'acme-cr10.yaml'));
  const file = path.join(dir, 'site.yaml');
  const text = `# forms test site\n${stringify(
    baseConfig({
      buses: [
        { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 },
        { id: 'field', type: 'modbus-tcp', host: '127.0.0.1', port: field.port, timeoutMs: 300 },
      ],
      devices: [
        { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 500 },
        { id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 3, pollMs: 500 },
      ],
      alarms: [{ id: 'fridge-warm', device: 'fridge-1', point: 'fridge_1_temperature', above: 8 }],
      simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 3 },
    }),
  )}`;
  fs.writeFileSync(file, text);
  const profiles = loadProfileSet({ configFile: file });
  const r = parseSiteConfig(text, profiles);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  const app = new App(r.config, text, { configFile: file, editableFile: file, profiles, log: silentLogger(), stateDir: path.dirname(r.config.storage.path) });
  cleanups.push(() => app.stop());
  await app.start();
  const client = new WebClient(`http://127.0.0.1:${app.web.port}`);
  expect((await client.post('/api/setup', { password: PASSWORD, setupCode: app.auth.setupCode })).status).toBe(200);
  await waitFor(() => [...app.gateway.buses.values()].every((b) => b.status === 'up'), 10_000, 'buses up');
  return { app, file, client, field };
}

const actions = (app: App) => app.audit.recent(200).map((e) => e.action);

describe('entry forms: pickers', () => {
  it('lists every loaded profile with maker, model, points and where it came from', async () => {
    const { client } = await site();
    expect((await new WebClient(client.base).get('/api/profiles')).status).toBe(401);
    const r = await client.get('/api/profiles');
    expect(r.status).toBe(200);
    const byId = new Map(r.body.profiles.map((p: { id: string }) => [p.id, p]));
    expect(byId.get('xy-md02')).toMatchObject({ source: 'shipped', transports: ['modbus-rtu'], model: expect.stringContaining('XY-MD02') });
    expect((byId.get('xy-md02') as { points: unknown[] }).points).toEqual([
      { id: 'temperature', name: { zh: '温度', en: 'Temperature' }, unit: '°C', privacy: 'public', type: 'int16' },
      { id: 'humidity', name: { zh: '湿度', en: 'Relative humidity' }, unit: '%RH', privacy: 'public', type: 'uint16' },
    ]);
    expect(byId.get('acme-cr10')).toMatchObject({ source: 'site' });
  });

  it('lists the serial ports the box has, never a made-up one', async () => {
    const { client } = await site();
    const r = await client.get('/api/serial-ports');
    expect(r.status).toBe(200);
    for (const p of r.body.ports) expect(fs.existsSync(p.path)).toBe(true);
    expect(r.body.ports.map((p: { path: string }) => p.path)).not.toContain('/dev/ttyUSB9');
  });
});

describe('entry forms: read now', () => {
  it('reads an unsaved device once through the running bus, decoded and scaled, and audits it', async () => {
    const { app, client, field } = await site();
    const r = await client.post('/api/devices/read-now', { bus: 'field', unitId: 7, profile: 'xy-md02' });
    expect(r.status).toBe(200);
    expect(r.body.points).toEqual([
      expect.objectContaining({ id: 'temperature', value: 4.5, unit: '°C' }),
      expect.objectContaining({ id: 'humidity', value: 71.2, unit: '%RH' }),
    ]);
    // It really went to the device (one request, no retry), and is audited with what was asked.
    expect(field.requests.filter((q) => q.unit === 7 && q.fc === 4)).toHaveLength(1);
    expect(app.audit.recent(10).find((e) => e.action === 'device-read-now')?.detail).toEqual({ bus: 'field', unitId: 7, profile: 'xy-md02' });
    // Nothing was saved: the config still has two devices.
    expect(app.config.devices).toHaveLength(2);
  });

  it('withholds personal and identifier values, says which block a device refused, refuses a bus not running', async () => {
    const { client } = await site();
    const kiosk = await client.post('/api/devices/read-now', { bus: 'lan', unitId: 3, profile: 'fc-health-kiosk-v1' });
    expect(kiosk.status).toBe(200);
    const pts = kiosk.body.points as { id: string; privacy: string; value?: unknown; withheld?: boolean }[];
    expect(pts.filter((p) => p.privacy !== 'public').length).toBeGreaterThan(0);
    for (const p of pts.filter((x) => x.privacy !== 'public')) expect(p).not.toHaveProperty('value');
    for (const p of pts.filter((x) => x.privacy !== 'public')) expect(p.withheld).toBe(true);
    // Another profile tried on the kiosk's unit: registers the kiosk holds as identifier or
    // personal stay withheld although xy-md02 calls input 1 and 2 public temperature and humidity.
    const tried = await client.post('/api/devices/read-now', { bus: 'lan', unitId: 3, profile: 'xy-md02' });
    expect(tried.body.points).toEqual([expect.objectContaining({ id: 'temperature', withheld: true }), expect.objectContaining({ id: 'humidity', withheld: true })]);
    expect(JSON.stringify(tried.body)).not.toContain('"value"');
    // Unit 7 of pymodbus has no holding registers for this profile's map: an exception per block.
    const wrong = await client.post('/api/devices/read-now', { bus: 'field', unitId: 7, profile: 'r4dcb08' });
    expect(wrong.status).toBe(200);
    expect(wrong.body.points[0].error).toMatch(/exception|ILLEGAL/i);
    expect((await client.post('/api/devices/read-now', { bus: 'rs485-9', unitId: 1, profile: 'xy-md02' })).status).toBe(409);
    const bad = await client.post('/api/devices/read-now', { bus: 'field', unitId: 300, profile: 'xy-md02' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('unitId');
  });
});

describe('entry forms: add, edit, remove through apply', () => {
  it('adds a device (reload), edits it, removes it; comments kept; each a version', async () => {
    const { app, client, file } = await site();
    const add = { section: 'devices', value: { id: 'cold-room', name: '冷库', facility: 'canteen', profile: 'xy-md02', bus: 'field', unitId: '7', pollMs: '500' } };
    expect((await client.post('/api/config/validate', { edit: add })).body).toEqual({ ok: true, errors: [] });
    const r = await client.post('/api/config', { edit: add, note: '新增冷库' });
    expect(r.body).toMatchObject({ ok: true, applied: 'reload' });
    expect(app.config.devices[2]).toMatchObject({ id: 'cold-room', unitId: 7, pollMs: 500, name: '冷库' });
    expect(fs.readFileSync(file, 'utf8')).toContain('# forms test site');
    await waitFor(() => app.gateway.pollers.find((p) => p.device.id === 'cold-room')?.stats.online, 10_000, 'cold-room online');
    const cfg = await client.get('/api/config');
    expect(cfg.body.entries.devices[2]).toEqual({ id: 'cold-room', name: '冷库', facility: 'canteen', profile: 'xy-md02', bus: 'field', unitId: 7, pollMs: 500 });
    // Edit: the name cleared (removed from the file), pollMs changed.
    expect((await client.post('/api/config', { edit: { section: 'devices', index: 2, value: { name: '', pollMs: 2000 } } })).body.ok).toBe(true);
    expect(app.config.devices[2]).toMatchObject({ id: 'cold-room', pollMs: 2000 });
    expect(app.config.devices[2]!.name).toBeUndefined();
    // Remove.
    expect((await client.post('/api/config', { edit: { section: 'devices', index: 2, value: null } })).body.ok).toBe(true);
    expect(app.config.devices.map((d) => d.id)).toEqual(['fridge-1', 'kiosk-1']);
    // An index the config does not have (a stale page) is refused, nothing applied.
    expect((await client.post('/api/config', { edit: { section: 'devices', index: 9, value: null } })).status).toBe(409);
    expect(actions(app).filter((a) => a === 'config-apply')).toHaveLength(3);
  });

  it('names the field of a bad entry value, and applies nothing', async () => {
    const { app, client } = await site();
    const before = app.configText;
    const r = await client.post('/api/config', { edit: { section: 'devices', value: { id: 'x-1', facility: 'canteen', profile: 'xy-md02', bus: 'field', unitId: '300' } } });
    expect(r.status).toBe(422);
    expect(r.body.errors).toContainEqual(expect.objectContaining({ path: 'devices[2].unitId', message: 'must be 1..247' }));
    const dup = await client.post('/api/config/validate', { edit: { section: 'devices', value: { id: 'x-1', facility: 'canteen', profile: 'xy-md02', bus: 'nope', unitId: 1 } } });
    expect(dup.body.errors).toContainEqual(expect.objectContaining({ path: 'devices[2].bus' }));
    expect(app.configText).toBe(before);
    // An unknown field is refused at the edge.
    expect((await client.post('/api/config/validate', { edit: { section: 'devices', value: { id: 'x', privacy: {} } } })).status).toBe(400);
  });

  it('adds and edits a bus: TCP, then switched to RTU on a port the box has; a missing port refused at buses[i].path', async () => {
    const { app, client } = await site();
    const tcp = { section: 'buses', value: { id: 'plc', type: 'modbus-tcp', host: '127.0.0.1', port: '1502', timeoutMs: '800' } };
    expect((await client.post('/api/config', { edit: tcp })).body).toMatchObject({ ok: true, applied: 'reload' });
    expect(app.config.buses[2]).toMatchObject({ id: 'plc', type: 'modbus-tcp', port: 1502, timeoutMs: 800 });
    const missing = await client.post('/api/config', { edit: { section: 'buses', index: 2, value: { type: 'modbus-rtu', path: '/dev/ttyUSB9', baudRate: 9600, parity: 'even', dataBits: 8, stopBits: 1 } } });
    expect(missing.status).toBe(422);
    expect(missing.body.errors).toEqual([expect.objectContaining({ path: 'buses[2].path', message: expect.stringContaining('/dev/ttyUSB9') })]);
    expect(app.config.buses[2]!.type).toBe('modbus-tcp');
    expect(actions(app)).toContain('config-rejected');
    // A port that exists (a pty stands in for an adapter): host and port go, the line settings come.
    const pty = fs.existsSync('/dev/ptmx') ? '/dev/ptmx' : '/dev/null';
    const rtu = await client.post('/api/config/validate', { edit: { section: 'buses', index: 2, value: { type: 'modbus-rtu', path: pty, baudRate: '19200', parity: 'even', dataBits: '8', stopBits: '1' } } });
    expect(rtu.body).toEqual({ ok: true, errors: [] });
  });

  it('adds, edits and removes an alarm rule; a personal point is refused', async () => {
    const { app, client } = await site();
    const add = { section: 'alarms', value: { id: 'fridge-cold', device: 'fridge-1', point: 'fridge_1_temperature', condition: 'below', threshold: '-2.5', severity: 'critical' } };
    expect((await client.post('/api/config', { edit: add })).body.ok).toBe(true);
    expect(app.config.alarms[1]).toMatchObject({ id: 'fridge-cold', below: -2.5, severity: 'critical' });
    // Threshold of the existing rule changed: above 8 -> above 6, nothing else touched.
    expect((await client.post('/api/config', { edit: { section: 'alarms', index: 0, value: { condition: 'above', threshold: 6 } } })).body.ok).toBe(true);
    expect(app.config.alarms[0]).toMatchObject({ id: 'fridge-warm', point: 'fridge_1_temperature', above: 6 });
    // Condition changed: the old key goes (exactly one of above/below/equals).
    expect((await client.post('/api/config', { edit: { section: 'alarms', index: 1, value: { condition: 'above', threshold: 12 } } })).body.ok).toBe(true);
    expect(app.config.alarms[1]).toMatchObject({ above: 12 });
    expect(app.config.alarms[1]!.below).toBeUndefined();
    const personal = await client.post('/api/config/validate', { edit: { section: 'alarms', value: { id: 'bp', device: 'kiosk-1', point: 'systolic_bp', condition: 'above', threshold: 180 } } });
    expect(personal.body.errors).toContainEqual(expect.objectContaining({ path: 'alarms[2].point', message: expect.stringContaining('personal') }));
    expect((await client.post('/api/config', { edit: { section: 'alarms', index: 1, value: null } })).body.ok).toBe(true);
    expect(app.config.alarms.map((a) => a.id)).toEqual(['fridge-warm']);
  });
});
