// GET /api/devices/:id/history against the whole daemon in-process with its raw store on disk
// (SQLite, gateway-raw.db beside gateway.db): ranges up to 7 days, several points in one
// request, every point checked for privacy, the retention in force reported.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/peers.js';
import { baseConfig, makeApp, WebClient } from '../helpers/gateway.js';
import type { App } from '../../src/app.js';
import type { Reading } from '../../src/types.js';

const PASSWORD = 'Xihu-station-2026';
const H = 3_600_000;
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** No simulator: the bus answers nothing, so the only good readings are the ones a test writes. */
async function site(dbFile: string, storage: Record<string, unknown> = {}) {
  const { app } = makeApp(
    baseConfig({
      storage: { path: dbFile, ...storage },
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 1, timeoutMs: 300 }],
      devices: [
        { id: 'gas-1', facility: 'canteen', profile: 'evikon-e2648-ch4', bus: 'lan', unitId: 1, pollMs: 60_000 },
        { id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 2, pollMs: 60_000 },
        { id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 3, pollMs: 60_000 },
      ],
    }),
  );
  let stopped = false;
  const stop = async () => {
    if (!stopped) await app.stop();
    stopped = true;
  };
  cleanups.push(stop);
  await app.start();
  const client = new WebClient(`http://127.0.0.1:${app.web.port}`);
  const r = app.auth.setupRequired ? await client.post('/api/setup', { password: PASSWORD, setupCode: app.auth.setupCode }) : await client.post('/api/login', { password: PASSWORD });
  expect(r.status).toBe(200);
  return { app, client, stop };
}

function reading(device: string, point: string, ts: number, value: number, unit = ''): Reading {
  return { device, facility: 'canteen', point, ts, value, quality: 'good', unit, privacy: 'public', kind: 'gauge' };
}

/** Readings written to the raw store's file (flushed: one commit), as a minute of running would. */
function write(app: App, rs: Reading[]): void {
  for (const r of rs) app.gateway.raw!.add(r);
  app.gateway.raw!.flush();
}

const history = (c: WebClient, q: string) => c.get(`/api/devices/gas-1/history?${q}`);

describe('GET /api/devices/:id/history', () => {
  it('accepts 1..168 hours and refuses 169, 0, fractions and words, naming the field', async () => {
    const { client } = await site(path.join(tmpDir('cgw-hist-'), 'gateway.db'));
    for (const h of [1, 6, 24, 168]) {
      const r = await history(client, `point=gas_concentration&hours=${h}`);
      expect(r.status, `hours=${h}`).toBe(200);
      expect(r.body.hours).toBe(h);
      expect(r.body.to - r.body.from).toBe(h * H);
      // 1000 buckets over the range: 7 days in 10-minute means.
      expect(r.body.bucketMs).toBe(Math.ceil((h * H) / 1000));
    }
    for (const bad of ['169', '0', '1.5', 'week', '-6', '1e2']) {
      const r = await history(client, `point=gas_concentration&hours=${bad}`);
      expect(r.status, `hours=${bad}`).toBe(400);
      expect(r.body.error).toBe('hours: must be a whole number 1..168');
    }
    // An unknown parameter is refused, not ignored (strict, like every body).
    expect((await history(client, 'point=gas_concentration&range=7d')).status).toBe(400);
  });

  it('answers several points in one request, one series each with its unit and whether its values are whole numbers', async () => {
    const { app, client } = await site(path.join(tmpDir('cgw-hist-'), 'gateway.db'));
    const now = Date.now();
    write(app, [
      reading('gas-1', 'gas_concentration', now - 30 * 60_000, 2.5, '%LEL'),
      reading('gas-1', 'gas_concentration', now - 20 * 60_000, 3.5, '%LEL'),
      reading('gas-1', 'gas_sensor_raw', now - 20 * 60_000, 812, 'ADC'),
    ]);
    const r = await history(client, 'point=gas_concentration&point=gas_sensor_raw&hours=1');
    expect(r.status).toBe(200);
    expect(r.body.series.map((s: { point: string }) => s.point)).toEqual(['gas_concentration', 'gas_sensor_raw']);
    const [conc, raw] = r.body.series;
    expect(conc).toMatchObject({ unit: '%LEL', kind: 'gauge', integer: false }); // uint16 * 0.1
    expect(raw).toMatchObject({ unit: 'ADC', kind: 'gauge', integer: true }); // uint16, scale 1
    expect(conc.points.map((p: number[]) => p[1])).toEqual([2.5, 3.5]);
    expect(raw.points.map((p: number[]) => p[1])).toEqual([812]);
    // The same point twice is one series.
    expect((await history(client, 'point=gas_sensor_raw&point=gas_sensor_raw')).body.series).toHaveLength(1);
    // A counter (uint32) is whole numbers too; at most 4 points in one chart.
    expect((await client.get('/api/devices/io-1/history?point=meal_counter')).body.series[0]).toMatchObject({ point: 'meal_counter', kind: 'counter', integer: true });
    const five = await history(client, ['gas_concentration', 'gas_sensor_raw', 'sensor_absent', 'gas_concentration', 'gas_sensor_raw'].map((p) => `point=${p}`).join('&'));
    expect(five.status).toBe(400);
    expect(five.body.error).toBe('point: at most 4 points in one chart');
  });

  it('without a point answers the profile main point (the gas concentration, not the raw ADC)', async () => {
    const { client } = await site(path.join(tmpDir('cgw-hist-'), 'gateway.db'));
    const r = await history(client, 'hours=6');
    expect(r.status).toBe(200);
    expect(r.body.mainPoint).toBe('gas_concentration');
    expect(r.body.series.map((s: { point: string }) => s.point)).toEqual(['gas_concentration']);
    // A profile without mainPoint: its first public chartable point (the kiosk's measurement
    // count; its other numeric points are personal).
    expect((await client.get('/api/devices/kiosk-1/history')).body.mainPoint).toBe('measurement_count');
  });

  it('refuses the whole request when any point is not public (403) or does not exist (404)', async () => {
    const { client } = await site(path.join(tmpDir('cgw-hist-'), 'gateway.db'));
    const k = (q: string) => client.get(`/api/devices/kiosk-1/history?${q}`);
    expect((await k('point=systolic_bp&hours=6')).status).toBe(403);
    const mixed = await k('point=measurement_count&point=systolic_bp');
    expect(mixed.status).toBe(403);
    expect(mixed.body.error).toBe('point systolic_bp is personal data: it is not shown');
    expect((await k('point=resident_card_uid')).status).toBe(403);
    expect((await k('point=measurement_count')).status).toBe(200);
    const unknown = await k('point=measurement_count&point=nothing');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toBe('no point "nothing" on device kiosk-1');
    expect((await client.get('/api/devices/nobody/history?point=x')).status).toBe(404);
  });

  it('states the retention in force: 24 h by default, and 7 days of readings kept on disk when configured', async () => {
    const dir = tmpDir('cgw-hist-');
    const { client: c24 } = await site(path.join(dir, 'a', 'gateway.db'));
    expect((await history(c24, 'point=gas_concentration&hours=168')).body.retentionHours).toBe(24);

    const file = path.join(dir, 'b', 'gateway.db');
    const first = await site(file, { rawRetentionHours: 168 });
    const now = Date.now();
    write(first.app, [reading('gas-1', 'gas_concentration', now - 100 * H, 1.5, '%LEL'), reading('gas-1', 'gas_concentration', now - 2 * H, 4, '%LEL')]);
    await first.stop();
    expect(fs.statSync(path.join(dir, 'b', 'gateway-raw.db')).size).toBeGreaterThan(0);
    // A new daemon on the same files: what it answers comes from the raw store's file.
    const { client } = await site(file, { rawRetentionHours: 168 });
    const week = (await history(client, 'point=gas_concentration&hours=168')).body;
    expect(week.retentionHours).toBe(168);
    expect(week.series[0].points.map((p: number[]) => p[1])).toEqual([1.5, 4]);
    // Each value sits in its 10-minute bucket: stamped at the bucket's middle.
    expect(Math.abs(week.series[0].points[0][0] - (now - 100 * H))).toBeLessThanOrEqual(week.bucketMs / 2);
    const day = (await history(client, 'point=gas_concentration&hours=24')).body;
    expect(day.series[0].points.map((p: number[]) => p[1])).toEqual([4]);
  });
});
