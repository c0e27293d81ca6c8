// `community-gateway read` and `outbox` as a technician runs them, against pymodbus over TCP
// and over a socat RS-485 line, and against a real outbox file.
import fs from 'node:fs';
import path from 'node:path';
import { SerialPort } from 'serialport';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { PymodbusServer, tmpDir } from '../helpers/peers.js';
import { SocatLine } from '../helpers/socat.js';
import { assertBuilt, cli } from '../helpers/cli.js';
import { baseConfig, makeGateway } from '../helpers/gateway.js';

beforeAll(assertBuilt);
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

function configFile(cfg: Record<string, unknown>): string {
  const f = path.join(tmpDir('cgw-read-'), 'site.yaml');
  fs.writeFileSync(f, stringify(cfg));
  return f;
}

describe('cli read', () => {
  it('reads one point decoded and scaled, or a raw range, from a Modbus TCP device', async () => {
    const s = await PymodbusServer.start({ units: { '2': { ir: { '1': 215, '2': 480 } } } });
    cleanups.push(() => s.stop());
    const file = configFile(baseConfig({ buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: s.port }], devices: [{ id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 2 }] }));
    const r = cli(['read', '--config', file, '--device', 'th-1', '--point', 'temperature']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^th-1\.temperature = 21\.5 °C \(good\) raw 0x00d7 \[input 1\+1, unit 2 on bus lan, \d+ ms\]\n$/);
    const raw = cli(['read', '--config', file, '--device', 'th-1', '--register', 'input', '--address', '1', '--count', '2', '--json']);
    expect(JSON.parse(raw.stdout)).toMatchObject({ device: 'th-1', register: 'input', address: 1, count: 2, words: [215, 480] });
    const bad = cli(['read', '--config', file, '--device', 'th-1', '--point', 'pressure']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe('read: profile xy-md02 has no point "pressure" (temperature, humidity)\n');
    expect(cli(['read', '--config', file]).status).toBe(2);
  });

  it('reads over RS-485, and says so when the running gateway holds the port', async () => {
    const line = await SocatLine.start();
    cleanups.push(() => line.stop());
    const s = await PymodbusServer.start({ serial: line.b, units: { '1': { ir: { '1': 199, '2': 500 } } } });
    cleanups.push(() => s.stop());
    const file = configFile(baseConfig({ buses: [{ id: 'rs485', type: 'modbus-rtu', path: line.a, baudRate: 9600 }], devices: [{ id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'rs485', unitId: 1 }] }));
    const r = cli(['read', '--config', file, '--device', 'th-1', '--point', 'humidity']);
    expect(r.stdout).toMatch(/^th-1\.humidity = 50 %RH \(good\)/);
    // Another process (here: this test) holds the port, as the service would.
    const holder = new SerialPort({ path: line.a, baudRate: 9600, autoOpen: false });
    await new Promise<void>((res, rej) => holder.open((e) => (e ? rej(e) : res())));
    cleanups.push(() => new Promise<void>((res) => holder.close(() => res())));
    const locked = cli(['read', '--config', file, '--device', 'th-1', '--point', 'humidity']);
    expect(locked.status).toBe(1);
    expect(locked.stderr).toMatch(/cannot reach bus rs485 .*lock.*the running gateway holds this port/i);
  });
});

describe('cli outbox', () => {
  it('reports what waits, the last seq and the shed counts, beside a running writer', async () => {
    const g = makeGateway(baseConfig({}));
    cleanups.push(() => g.stop());
    await g.start();
    g.outbox!.append([{ kind: 'alarm', ts: Date.now(), body: '{"x":1}' }]);
    const file = configFile({ ...baseConfig({}), storage: { path: g.config.storage.path } });
    const r = cli(['outbox', '--config', file, '--json']);
    expect(r.status).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep).toMatchObject({ rows: 2, lastSeq: 2, byKind: { inventory: { rows: 1 }, alarm: { rows: 1 } }, shed: { rows: 0 }, dropped: 0 });
    const text = cli(['outbox', '--config', file]).stdout;
    expect(text).toMatch(/waiting: 2 items, \d+ bytes \((alarm 1, inventory 1|inventory 1, alarm 1)\); oldest /);
    expect(cli(['outbox', '--config', '/nonexistent.yaml']).status).toBe(1);
  });
});
