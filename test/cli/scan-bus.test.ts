// `community-gateway scan` as a technician runs it: against pymodbus over Modbus TCP, with a
// site profile beside the config, and over a socat RS-485 line held by another process.
import fs from 'node:fs';
import path from 'node:path';
import { SerialPort } from 'serialport';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { PymodbusServer, tmpDir } from '../helpers/peers.js';
import { SocatLine } from '../helpers/socat.js';
import { assertBuilt, cli } from '../helpers/cli.js';
import { baseConfig } from '../helpers/gateway.js';

beforeAll(assertBuilt);
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** site.yaml, and drivers/ beside it holding the site profile acme-cr10 (test fixture). */
function siteFolder(cfg: Record<string, unknown>): string {
  const dir = tmpDir('cgw-scan-');
  fs.mkdirSync(path.join(dir, 'drivers'));
  fs.copyFileSync(path.resolve('test/fixtures/site-drivers/acme-cr10.yaml'), path.join(dir, 'drivers', 'acme-cr10.yaml'));
  const file = path.join(dir, 'site.yaml');
  fs.writeFileSync(file, stringify(cfg));
  return file;
}

const units = {
  // An R4DCB08: it fits the shipped profile, and the site's cold-room controller too (holding 0..2), ranked below.
  '1': { hr: { '0': 45, '1': 52, '2': 0x10000 - 180, '3': 30 } },
  // The site's cold-room controller: -18.0 °C, set point -18.0 °C, door open.
  '7': { hr: { '0': 0x10000 - 180, '1': 0x10000 - 180, '2': 1 } },
  '9': { failing: true },
};

describe('cli scan', () => {
  it('lists the units that answer on a Modbus TCP bus with the shipped and site profiles that fit, as a table and as JSON', async () => {
    const s = await PymodbusServer.start({ units });
    cleanups.push(() => s.stop());
    const file = siteFolder(baseConfig({ buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: s.port }], devices: [{ id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1 }] }));
    const r = cli(['scan', '--config', file, '--bus', 'lan', '--units', '1-10', '--timeout', '300']);
    expect(r.status).toBe(0);
    const out = r.stdout.split('\n');
    expect(out[0]).toMatch(new RegExp(`^bus lan \\(127\\.0\\.0\\.1:${s.port}\\): units 1-10, 10 of 10 probed in \\d+\\.\\d s, \\d+ requests, probe timeout 300 ms$`));
    expect(out.slice(1, 5).map((l) => l.split(/\s{2,}/))).toEqual([
      ['unit', 'answers', 'device', 'identification', 'profiles that fit (best first)'],
      ['1', 'yes', 'fridge-1', '-', 'r4dcb08, acme-cr10 (site)'],
      ['7', 'yes', '-', '-', 'acme-cr10 (site)'],
      ['9', 'yes', '-', '-', 'none'],
    ]);
    expect(r.stdout).toContain('\nunit 9: answers (modbus exception 4 SERVER DEVICE FAILURE), no profile fits:\n  ');
    expect(r.stdout).toContain('\n  acme-cr10: modbus exception 4 SERVER DEVICE FAILURE reading holding 0..2 (room_temperature, setpoint, door_open)\n');
    // Progress on stderr, a line each quarter and at the end.
    expect(r.stderr.trim().split('\n').at(-1)).toBe('scanning bus lan: 10/10 units, 3 answer');

    const j = cli(['scan', '--config', file, '--bus', 'lan', '--units', '7', '--json']);
    expect(j.status).toBe(0);
    const o = JSON.parse(j.stdout);
    expect(o).toMatchObject({ bus: 'lan', units: '7', timeoutMs: 100, result: { probed: 1, total: 1 } });
    expect(o.result.units[0].profiles[0]).toEqual({ id: 'acme-cr10', source: 'site', fits: true, points: 3, rangeChecked: 2 });
    expect(o.result.units[0].profiles.filter((p: { source: string }) => p.source === 'shipped').length).toBeGreaterThan(0);
    // Read-only.
    expect(s.requests.every((q) => [1, 2, 3, 4, 43].includes(q.fc))).toBe(true);
  });

  it('names the argument or lists the buses when something is wrong', async () => {
    const file = siteFolder(baseConfig({ buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 1 }, { id: 'rs485', type: 'modbus-rtu', path: '/dev/null-cgw' }] }));
    const bus = cli(['scan', '--config', file, '--bus', 'bus-9']);
    expect(bus.status).toBe(1);
    expect(bus.stderr).toBe(`scan: no bus "bus-9" in ${file} (buses: lan, rs485)\n`);
    const range = cli(['scan', '--config', file, '--bus', 'lan', '--units', '1-300']);
    expect(range.status).toBe(2);
    expect(range.stderr).toBe('scan: --units: unit id 300 is outside 1..247\n');
    expect(cli(['scan', '--config', file, '--bus', 'lan', '--timeout', '5']).stderr).toBe('scan: --timeout must be a whole number of ms, 20..5000\n');
    expect(cli(['scan', '--config', file]).status).toBe(2);
    const down = cli(['scan', '--config', file, '--bus', 'lan']);
    expect(down.status).toBe(1);
    expect(down.stderr).toMatch(/^scan: cannot reach bus lan \(127\.0\.0\.1:1\): /);
  });

  it('scans over RS-485, and says so when the running gateway holds the port', async () => {
    const line = await SocatLine.start();
    cleanups.push(() => line.stop());
    const s = await PymodbusServer.start({ serial: line.b, units: { '2': { ir: { '1': 215, '2': 480 } } } });
    cleanups.push(() => s.stop());
    const file = siteFolder(baseConfig({ buses: [{ id: 'rs485', type: 'modbus-rtu', path: line.a, baudRate: 9600 }] }));
    const r = cli(['scan', '--config', file, '--bus', 'rs485', '--units', '1-3', '--timeout', '300']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\n2 +yes +- +- +xy-md02\n/);
    // Another process (here: this test) holds the port, as the service would.
    const holder = new SerialPort({ path: line.a, baudRate: 9600, autoOpen: false });
    await new Promise<void>((res, rej) => holder.open((e) => (e ? rej(e) : res())));
    cleanups.push(() => new Promise<void>((res) => holder.close(() => res())));
    const locked = cli(['scan', '--config', file, '--bus', 'rs485', '--units', '1-3']);
    expect(locked.status).toBe(1);
    expect(locked.stderr).toMatch(/^scan: cannot reach bus rs485 .*lock.*the running gateway holds this port: scan from the web page or its API/i);
  });
});
