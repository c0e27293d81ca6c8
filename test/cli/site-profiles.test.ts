// Site profiles as a technician meets them: a profile in drivers/ beside the config file is
// seen by check-profile, check-config, privacy-report, read, outbox and the daemon itself, which
// polls a device of it (on the simulator), publishes its readings, and tells the platform
// (a real Mosquitto with the reference consumer) and /api/privacy that the profile is the site's.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort, MosquittoSub, PymodbusServer, tmpDir, waitFor, waitForPort } from '../helpers/peers.js';
import { CLI, ROOT, assertBuilt, cli } from '../helpers/cli.js';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { WebClient } from '../helpers/gateway.js';
import { PlatformConsumer } from '../../src/platform/consumer.js';
import { silentLogger } from '../../src/log.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';

beforeAll(assertBuilt);
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});
afterAll(() => stopAll('SIGKILL'));

const FIXTURE = path.resolve('test/fixtures/site-drivers/acme-cr10.yaml');

/** A site folder as on the box: site.yaml and drivers/ holding `profiles` (name -> text). */
function site(cfg: Record<string, unknown>, profiles: Record<string, string> = { 'acme-cr10.yaml': fs.readFileSync(FIXTURE, 'utf8') }): { file: string; drivers: string; dir: string } {
  const dir = tmpDir('cgw-siteprof-');
  const drivers = path.join(dir, 'drivers');
  fs.mkdirSync(drivers);
  for (const [n, text] of Object.entries(profiles)) fs.writeFileSync(path.join(drivers, n), text);
  const file = path.join(dir, 'site.yaml');
  fs.writeFileSync(file, stringify(cfg));
  return { file, drivers, dir };
}

function config(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    site: { communityCode: '330106001001', gatewayId: 'gw-siteprof' },
    localBroker: { host: '127.0.0.1', port: 1883 },
    web: { host: '127.0.0.1', port: 8080, https: false },
    storage: { path: path.join(tmpDir('cgw-siteprof-db-'), 'gateway.db') },
    uplink: { url: 'mqtt://127.0.0.1:1884', windowSeconds: 60 },
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 5020, timeoutMs: 500 }],
    devices: [
      { id: 'cold-1', facility: 'canteen', profile: 'acme-cr10', bus: 'lan', unitId: 1 },
      { id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 2 },
    ],
    simulator: { enabled: false },
    ...over,
  };
}

describe('check-profile FILE', () => {
  it('exits 0 with one summary line: where it would come from, id, points, registers', () => {
    const r = cli(['check-profile', FIXTURE]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${FIXTURE}: OK: site profile acme-cr10: 3 point(s), 3 register(s)\n`);
    const shipped = path.join(DRIVERS_DIR, 'advantech-adam-6050.yaml');
    const s = cli(['check-profile', shipped]);
    expect(s.status).toBe(0);
    // 12 digital inputs, 6 relay outputs and a counter register pair: bits counted apart.
    expect(s.stdout).toMatch(new RegExp(`^${shipped.replace(/[.\\/-]/g, '\\$&')}: OK: shipped profile advantech-adam-6050: \\d+ point\\(s\\), \\d+ register\\(s\\), \\d+ coil/discrete bit\\(s\\)\\n$`));
  });

  it('exits 1 listing every error with the file, field and line', () => {
    const text = fs.readFileSync(FIXTURE, 'utf8').replace('    bit: 0\n', '').replace('unit: °C\n    privacy: public', 'unit: °C\n    privacy: secret');
    const { drivers } = site({}, { 'acme-cr10.yaml': text });
    const file = path.join(drivers, 'acme-cr10.yaml');
    const r = cli(['check-profile', file]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(`${file}:`);
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(/^ {2}points\[0\]\.privacy: must be one of "public", "personal", "identifier" \(line \d+\)$/),
      expect.stringMatching(/^ {2}points\[2\]\.bit: type "bit" needs bit: 0\.\.15 \(line \d+\)$/),
    ]);
  });

  it('exits 1 on a copy of a shipped profile, naming both files', () => {
    const { drivers } = site({}, { 'xy-md02.yaml': fs.readFileSync(path.join(DRIVERS_DIR, 'xy-md02.yaml'), 'utf8') });
    const file = path.join(drivers, 'xy-md02.yaml');
    const r = cli(['check-profile', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`${file}:\n  id: "xy-md02" is the id of the shipped profile ${path.join(DRIVERS_DIR, 'xy-md02.yaml')}: a site profile cannot replace a shipped one; give it an id (and file name) of its own\n`);
  });

  it('without a file exits 2 with its usage; it has --help and is in the command list', () => {
    const r = cli(['check-profile']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('check-profile needs a FILE');
    expect(r.stderr).toContain('Usage: community-gateway check-profile FILE');
    const h = cli(['check-profile', '--help']);
    expect(h.status).toBe(0);
    expect(h.stdout.startsWith('Usage: community-gateway check-profile FILE')).toBe(true);
    expect(cli(['--help']).stdout).toContain('community-gateway check-profile FILE');
  });
});

describe('every command sees the site profiles beside --config', () => {
  it('check-config passes with the site profile and fails without it or on a clash', () => {
    const s = site(config());
    const r = cli(['check-config', s.file]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${s.file}: OK: gateway gw-siteprof (community 330106001001), 1 bus(es), 2 device(s)\n`);

    fs.renameSync(path.join(s.drivers, 'acme-cr10.yaml'), path.join(s.dir, 'acme-cr10.yaml'));
    const gone = cli(['check-config', s.file]);
    expect(gone.status).toBe(1);
    expect(gone.stderr).toContain('devices[0].profile: no profile "acme-cr10"');

    fs.copyFileSync(path.join(DRIVERS_DIR, 'xy-md02.yaml'), path.join(s.drivers, 'xy-md02.yaml'));
    const clash = cli(['check-config', s.file]);
    expect(clash.status).toBe(1);
    expect(clash.stderr).toContain(`${path.join(s.drivers, 'xy-md02.yaml')}:\n  id: "xy-md02" is the id of the shipped profile ${path.join(DRIVERS_DIR, 'xy-md02.yaml')}`);
  });

  it('privacy-report says which profiles are the site\'s, with their files', () => {
    const s = site(config());
    const r = cli(['privacy-report', '--config', s.file, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { profiles: unknown[]; points: { device: string; point: string; profile: string; profileSource: string }[] };
    expect(rep.profiles).toEqual([
      { id: 'acme-cr10', source: 'site', file: path.join(s.drivers, 'acme-cr10.yaml') },
      { id: 'xy-md02', source: 'shipped', file: path.join(DRIVERS_DIR, 'xy-md02.yaml') },
    ]);
    expect(rep.points.filter((p) => p.device === 'cold-1').map((p) => [p.point, p.profile, p.profileSource])).toEqual([
      ['room_temperature', 'acme-cr10', 'site'],
      ['setpoint', 'acme-cr10', 'site'],
      ['door_open', 'acme-cr10', 'site'],
    ]);
    expect(rep.points.filter((p) => p.device === 'th-1').every((p) => p.profileSource === 'shipped')).toBe(true);
    const text = cli(['privacy-report', '--config', s.file]).stdout;
    expect(text).toContain(`Profiles in use:\n    acme-cr10: site (${path.join(s.drivers, 'acme-cr10.yaml')})\n    xy-md02: shipped (${path.join(DRIVERS_DIR, 'xy-md02.yaml')})\n`);
    expect(text).toContain('cold-1.room_temperature [canteen] class public; site profile acme-cr10\n');
    expect(text).toContain('th-1.temperature [canteen] class public\n');
  });

  it('read decodes a point of a site profile from pymodbus', async () => {
    // -18.5 °C and a set point of -18.0 as two's complement words; the door closed.
    const s0 = await PymodbusServer.start({ units: { '1': { hr: { '0': 65536 - 185, '1': 65536 - 180, '2': 0 } } } });
    cleanups.push(() => s0.stop());
    const s = site(config({ buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: s0.port, timeoutMs: 500 }] }));
    const r = cli(['read', '--config', s.file, '--device', 'cold-1', '--point', 'room_temperature']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^cold-1\.room_temperature = -18\.5 °C \(good\) raw 0xff47 \[holding 0\+1, unit 1 on bus lan, \d+ ms\]\n$/);
  });
});

describe('the daemon with a site profile', () => {
  let proc: ChildProcess | null = null;
  afterEach(() => {
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    proc = null;
  });

  it('polls a device of it on the simulator, publishes its readings, and names its source to the platform and /api/privacy', async () => {
    const broker = await Mosquitto.start();
    const platform = new PlatformConsumer({ url: `mqtt://127.0.0.1:${broker.port}`, db: path.join(tmpDir('cgw-platform-'), 'platform.db') }, silentLogger());
    await platform.start();
    cleanups.push(() => platform.stop());
    const [local, web, sim] = [await freePort(), await freePort(), await freePort()];
    const s = site(
      config({
        localBroker: { host: '127.0.0.1', port: local, anonymous: 'loopback' },
        web: { host: '127.0.0.1', port: web, https: false },
        uplink: { url: `mqtt://127.0.0.1:${broker.port}`, windowSeconds: 60 },
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim, timeoutMs: 500 }],
        devices: [
          { id: 'cold-1', facility: 'canteen', profile: 'acme-cr10', bus: 'lan', unitId: 1, pollMs: 200 },
          { id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 2, pollMs: 200 },
        ],
        simulator: { enabled: true, host: '127.0.0.1', port: sim, seed: 5 },
      }),
    );
    const stateDir = tmpDir('cgw-siteprof-state-');
    const p = spawn(process.execPath, [CLI, 'run', '--config', s.file, '--state-dir', stateDir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
    proc = p;
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
    // "gateway started" comes after every listener; an open port may be the port pre-check's probe.
    await waitFor(() => out.includes('"gateway started"'), 15_000, 'gateway started').catch((e: Error) => {
      throw new Error(`${e.message}\n${out}`);
    });
    await waitForPort(web, 15_000);
    const starting = out.split('\n').find((l) => l.includes('"starting"'));
    expect(JSON.parse(starting!)).toMatchObject({ siteProfileDir: s.drivers, siteProfiles: ['acme-cr10'] });

    // Readings of the site profile's points on the local broker.
    const sub = new MosquittoSub(local, 'community/#');
    cleanups.push(() => sub.stop());
    await sub.started();
    const reading = await waitFor(() => sub.on('community/gw-siteprof/canteen/cold-1/room_temperature')[0], 10_000, 'a cold-room reading');
    const value = (JSON.parse(reading.payload) as { value: number }).value;
    expect(value).toBeGreaterThanOrEqual(-20);
    expect(value).toBeLessThanOrEqual(-16);
    const door = await waitFor(() => sub.on('community/gw-siteprof/canteen/cold-1/door_open')[0], 10_000, 'a door reading');
    expect(JSON.parse(door.payload)).toMatchObject({ quality: 'good' });

    // The inventory at the platform: the site's profile is marked as such, against the schema.
    const inv = await waitFor(async () => (await platform.items('gw-siteprof', 'inventory'))[0], 15_000, 'the inventory at the platform');
    expect(platform.stats.rejected).toBe(0);
    const devices = inv.body.devices as { id: string; profile: string; profileSource: string }[];
    expect(devices.map((d) => [d.id, d.profile, d.profileSource])).toEqual([
      ['cold-1', 'acme-cr10', 'site'],
      ['th-1', 'xy-md02', 'shipped'],
    ]);

    // /api/privacy, after first-run setup with the code from the log.
    const code = await waitFor(() => /"setupCode":"([^"]+)"/.exec(out)?.[1], 5_000, 'the setup code in the log');
    const client = new WebClient(`http://127.0.0.1:${web}`);
    expect((await client.post('/api/setup', { password: 'Xihu-station-2026', setupCode: code })).status).toBe(200);
    const pr = await client.get('/api/privacy');
    expect(pr.status).toBe(200);
    expect(pr.body.profiles).toEqual([
      { id: 'acme-cr10', source: 'site', file: path.join(s.drivers, 'acme-cr10.yaml') },
      { id: 'xy-md02', source: 'shipped', file: path.join(DRIVERS_DIR, 'xy-md02.yaml') },
    ]);
    expect(pr.body.points.find((x: { device: string }) => x.device === 'cold-1').profileSource).toBe('site');

    p.kill('SIGTERM');
    expect(await exited).toBe(0);
    // outbox validates the same config: with only the shipped profiles it would refuse it.
    const ob = cli(['outbox', '--config', s.file, '--json']);
    expect(ob.stderr).toBe('');
    expect(ob.status).toBe(0);
    expect(JSON.parse(ob.stdout).lastSeq).toBeGreaterThanOrEqual(1);
  });
});
