// POST /api/devices/import (src/web/device-import.ts): a CSV of devices, every row checked by
// the start-up checks on the config with all rows added; nothing applied unless all pass;
// errors per row (as numbered in the file) and column (by header name). The whole daemon
// in-process, admin login, CSRF and nonce, the audit log.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { baseConfig, makeApp, WebClient } from '../helpers/gateway.js';
import { planImport } from '../../src/web/device-import.js';
import type { App } from '../../src/app.js';

const PASSWORD = 'Xihu-station-2026';
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function site(): Promise<{ app: App; client: WebClient; file: string }> {
  // A bus nothing answers on: the devices go offline, which an import does not care about.
  const { app, file } = makeApp(
    baseConfig({
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 1, timeoutMs: 200 }],
      devices: [{ id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 5000 }],
    }),
  );
  cleanups.push(() => app.stop());
  await app.start();
  const client = new WebClient(`http://127.0.0.1:${app.web.port}`);
  expect((await client.post('/api/setup', { password: PASSWORD, setupCode: app.auth.setupCode })).status).toBe(200);
  return { app, client, file };
}

const HEADER = 'id,name,facility,profile,bus,unitId,pollMs';
/** 20 devices on units 11..30; `bad` replaces the line of device k (0-based). */
function csv20(bad: Record<number, string> = {}, eol = '\r\n'): string {
  const lines = [HEADER];
  for (let k = 0; k < 20; k++) lines.push(bad[k] ?? `th-${k + 1},"温湿度 ${k + 1} 号, 厨房",canteen,xy-md02,lan,${k + 11},5000`);
  return lines.join(eol) + eol;
}

/** The errors without their message codes (checked on their own where it matters). */
const plain = (errors: { msg?: unknown }[]) => errors.map(({ msg: _m, ...e }) => e);

const devicesIn = (file: string) => (parse(fs.readFileSync(file, 'utf8')) as { devices: { id: string }[] }).devices.map((d) => d.id);

describe('web API: device import from CSV', () => {
  it('refuses a file of 20 devices with one bad row, naming its row and column; nothing applied; audited', async () => {
    const { app, client, file } = await site();
    const before = fs.readFileSync(file, 'utf8');
    // Device 14 (file row 15: the header is row 1) on unit 300.
    const r = await client.post('/api/devices/import', { csv: csv20({ 13: 'th-14,温湿度 14 号,canteen,xy-md02,lan,300,5000' }) });
    expect(r.status).toBe(422);
    expect(r.body).toEqual({ ok: false, errors: [{ row: 15, column: 'unitId', message: 'must be 1..247', msg: { code: 'config.range', params: { lo: '1', hi: '247' } } }] });
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(app.config.devices.map((d) => d.id)).toEqual(['fridge-1']);
    expect(app.audit.recent(10).find((e) => e.action === 'device-import-refused')).toMatchObject({ user: 'admin', detail: { source: 'csv', rows: 20, errors: 1 } });
    expect(app.audit.recent(10).map((e) => e.action)).not.toContain('config-apply');
  });

  it('lists every bad row and column at once: an unknown profile, a facility, a unit taken, an id used twice, a number that is not one', async () => {
    const { client } = await site();
    const r = await client.post('/api/devices/import', {
      csv: csv20({
        2: 'th-3,,canteen,no-such-model,lan,13,5000',
        4: 'th-5,,kitchen,xy-md02,lan,15,5000',
        6: 'th-7,,canteen,xy-md02,lan,1,5000',
        8: 'fridge-1,,canteen,xy-md02,lan,19,5000',
        10: 'th-11,,canteen,xy-md02,lan,21,fast',
      }),
    });
    expect(r.status).toBe(422);
    const at = (r.body.errors as { row: number; column: string; message: string }[]).map((e) => [e.row, e.column]);
    expect(at).toEqual([
      [4, 'profile'],
      [6, 'facility'],
      [8, 'unitId'],
      [10, 'id'],
      [12, 'pollMs'],
    ]);
    const msg = (row: number) => r.body.errors.find((e: { row: number }) => e.row === row).message as string;
    expect(msg(4)).toMatch(/no-such-model/);
    expect(msg(8)).toMatch(/unit 1 on bus "lan" is already devices\[0\]/);
    expect(msg(10)).toMatch(/"fridge-1" is already used by devices\[0\]/);
    expect(msg(12)).toBe('"fast" is not a whole number');
  });

  it('applies a file whose every row passes: BOM, LF line ends, quoted Chinese names with commas; a version with a note; audited', async () => {
    const { app, client, file } = await site();
    const r = await client.post('/api/devices/import', { csv: '\ufeff' + csv20({ 0: 'th-1,"冷库 ""北"" 门",canteen,xy-md02,lan,11,' }, '\n') });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true, applied: 'reload', devices: Array.from({ length: 20 }, (_, k) => `th-${k + 1}`) });
    expect(devicesIn(file)).toEqual(['fridge-1', ...Array.from({ length: 20 }, (_, k) => `th-${k + 1}`)]);
    expect(app.config.devices).toHaveLength(21);
    expect(app.gateway.pollers).toHaveLength(21);
    const th1 = app.config.devices.find((d) => d.id === 'th-1')!;
    expect(th1).toMatchObject({ name: '冷库 "北" 门', unitId: 11, pollMs: 1000 }); // empty pollMs: the default
    expect(app.config.devices.find((d) => d.id === 'th-2')).toMatchObject({ name: '温湿度 2 号, 厨房', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 12, pollMs: 5000 });
    expect(app.configs.versions().find((v) => v.id === r.body.version)).toMatchObject({ note: 'CSV import: 20 devices', user: 'admin' });
    const actions = app.audit.recent(10).map((e) => e.action);
    expect(actions).toContain('device-import');
    expect(actions).toContain('config-apply');
    // The same file again: every id is taken now.
    const again = await client.post('/api/devices/import', { csv: csv20() });
    expect(again.status).toBe(422);
    expect(again.body.errors).toHaveLength(40); // each row: its id and its unit
  });

  it('a dry run checks and answers the diff without applying; a list of devices (a scanned unit) takes the same path', async () => {
    const { app, client, file } = await site();
    const before = fs.readFileSync(file, 'utf8');
    const dev = { id: 'th-9', name: '厨房温湿度', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 9, pollMs: 2000 };
    const dry = await client.post('/api/devices/import', { devices: [dev], dryRun: true });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ ok: true, dryRun: true, devices: ['th-9'], identical: false, added: 7 });
    expect(dry.body.unified).toContain('+  - id: th-9');
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    const bad = await client.post('/api/devices/import', { devices: [{ ...dev, unitId: 0 }], dryRun: true });
    expect(bad.body.ok).toBe(false);
    expect(plain(bad.body.errors)).toEqual([{ row: 1, column: 'unitId', message: 'must be 1..247' }]);
    const r = await client.post('/api/devices/import', { devices: [dev], note: '扫描发现 9 号' });
    expect(r.body).toMatchObject({ ok: true, devices: ['th-9'], applied: 'reload' });
    expect(app.config.devices.find((d) => d.id === 'th-9')).toMatchObject(dev);
    expect(app.configs.versions().find((v) => v.id === r.body.version)?.note).toBe('扫描发现 9 号');
  });

  it('the shape of the file: header required, unknown or missing columns, field counts, a bad quote, size and row limits', async () => {
    const { client } = await site();
    const errs = async (csv: string) => {
      const r = await client.post('/api/devices/import', { csv });
      expect(r.status).toBe(422);
      return plain(r.body.errors);
    };
    expect(await errs('th-1,,canteen,xy-md02,lan,11,5000\r\n')).toEqual([{ row: 1, column: null, message: 'the first row must be the header: id,name,facility,profile,bus,unitId,pollMs' }]);
    expect(await errs('id,facility,profile,bus,unit\r\n')).toEqual([
      { row: 1, column: 'unit', message: 'unknown column "unit": the columns are id, name, facility, profile, bus, unitId, pollMs' },
      { row: 1, column: 'unitId', message: 'the header lacks the column "unitId"' },
    ]);
    expect(await errs(`${HEADER}\r\n`)).toEqual([{ row: null, column: null, message: 'the file has a header but no device rows' }]);
    expect(await errs(`${HEADER}\r\nth-1,canteen\r\n`)).toEqual([{ row: 2, column: null, message: '2 fields, the header has 7' }]);
    expect(await errs(`${HEADER}\r\nth-1,a"b,canteen,xy-md02,lan,11,5000\r\n`)).toEqual([{ row: 2, column: null, message: expect.stringMatching(/^a quote inside an unquoted field on line 2/) }]);
    // Excel's plain "CSV" on a Chinese Windows is GBK: the browser's UTF-8 reading leaves U+FFFD.
    const gbk = new TextDecoder('utf-8').decode(Buffer.from([...Buffer.from(`${HEADER}\r\nth-1,`), 0xb3, 0xf8, 0xb7, 0xbf, ...Buffer.from(',canteen,xy-md02,lan,11,\r\n')]));
    expect(await errs(gbk)).toEqual([{ row: null, column: null, message: 'the file is not UTF-8 (GBK?): save it as "CSV UTF-8" and import again' }]);
    const many = [HEADER, ...Array.from({ length: 1001 }, (_, k) => `d-${k},,canteen,xy-md02,lan,1,`)].join('\n');
    expect(await errs(many)).toEqual([{ row: null, column: null, message: '1001 device rows: at most 1000 in one file' }]);
    expect(await errs(`${HEADER}\n${'x'.repeat(257 * 1024)}`)).toEqual([{ row: null, column: null, message: 'the file is larger than 256 KiB: split it' }]);
  });

  it('validated at the edge; login, CSRF and a nonce required; nothing applied without them', async () => {
    const { app, client } = await site();
    expect((await client.post('/api/devices/import', {})).body.error).toBe('body: give exactly one of csv or devices');
    expect((await client.post('/api/devices/import', { csv: 'x', apply: true })).body.error).toMatch(/unrecognized key/i);
    const anonymous = new WebClient(client.base);
    expect((await anonymous.post('/api/devices/import', { csv: csv20() })).status).toBe(401);
    expect((await client.post('/api/devices/import', { csv: csv20() }, { 'x-csrf-token': 'wrong' })).status).toBe(403);
    expect((await client.post('/api/devices/import', { csv: csv20() }, { 'x-request-nonce': '' })).status).toBe(400);
    expect(app.config.devices).toHaveLength(1);
  });
});

describe('planImport', () => {
  it('adds to an empty flow list (devices: []) and to a config without devices, in block style, comments kept', () => {
    const rows = [{ row: 2, cells: { id: 'th-1', name: '厨房', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: '3' } }];
    const ok = () => ({ ok: true as const });
    for (const text of ['# the site\nsite: { gatewayId: gw }\ndevices: []\n', '# the site\nsite: { gatewayId: gw }\n']) {
      const p = planImport(rows, text, ok);
      expect(p.ok).toBe(true);
      if (!p.ok) return;
      expect(p.text).toMatch(/^# the site\n/);
      expect(p.text).toContain('devices:\n  - id: th-1\n    name: 厨房\n    facility: canteen\n    profile: xy-md02\n    bus: lan\n    unitId: 3\n');
      expect(parse(p.text).devices).toEqual([{ id: 'th-1', name: '厨房', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 3 }]);
    }
  });
});
