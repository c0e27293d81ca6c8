// The bus scan API the page will use (issue 16): the whole daemon in-process against pymodbus,
// admin login, CSRF, bodies validated at the edge, one scan per bus, progress then the result,
// cancel, and the audit log.
import { afterEach, describe, expect, it } from 'vitest';
import { PymodbusServer, waitFor } from '../helpers/peers.js';
import { baseConfig, makeApp, WebClient } from '../helpers/gateway.js';
import type { App } from '../../src/app.js';

const PASSWORD = 'Xihu-station-2026';
let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function site(): Promise<{ app: App; client: WebClient; server: PymodbusServer }> {
  const server = await PymodbusServer.start({
    units: {
      '1': { hr: { '0': 45, '1': 52, '2': 0x10000 - 180, '3': 30 } },
      '2': { ir: { '1': 215, '2': 480 } },
    },
  });
  cleanups.push(() => server.stop());
  const { app } = makeApp(
    baseConfig({
      buses: [
        { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: server.port, timeoutMs: 300 },
        { id: 'dead', type: 'modbus-tcp', host: '127.0.0.1', port: 1, timeoutMs: 300 },
      ],
      devices: [{ id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 500 }],
    }),
  );
  cleanups.push(() => app.stop());
  await app.start();
  const client = new WebClient(`http://127.0.0.1:${app.web.port}`);
  expect((await client.post('/api/setup', { password: PASSWORD, setupCode: app.auth.setupCode })).status).toBe(200);
  return { app, client, server };
}

const actions = (app: App) => app.audit.recent(100).map((e) => e.action);

describe('web API: bus scan', () => {
  it('starts a scan (202), refuses a second one (409), reports progress, then the units found and their profiles; audited', async () => {
    const { app, client } = await site();
    await waitFor(() => app.gateway.pollers[0]!.stats.online, 5000, 'fridge-1 online');
    const start = await client.post('/api/buses/lan/scan', { units: '1-6', timeoutMs: 200 });
    expect(start.status).toBe(202);
    expect(start.body).toMatchObject({ started: true, scan: { bus: 'lan', state: 'running', units: '1-6', timeoutMs: 200, progress: { done: 0, total: 6, found: 0 } } });
    const again = await client.post('/api/buses/lan/scan', {});
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ error: 'a scan of bus lan is already running: wait for it or cancel it', msg: { code: 'scan.busy', params: { bus: 'lan' } }, reason: 'busy' });
    const running = await client.get('/api/buses/lan/scan');
    expect(running.status).toBe(200);
    expect(running.body.state).toBe('running');
    expect(running.body.result).toBeUndefined();
    const done = await waitFor(async () => {
      const r = await client.get('/api/buses/lan/scan');
      return r.body.state !== 'running' && r.body;
    }, 15_000, 'scan done');
    expect(done).toMatchObject({ state: 'done', progress: { done: 6, total: 6, found: 2 }, result: { probed: 6, total: 6 } });
    expect(done.finishedAt).toBeGreaterThanOrEqual(done.startedAt);
    expect(done.result.units.map((u: { unitId: number; device?: string; profiles: { id: string; fits: boolean }[] }) => [u.unitId, u.device ?? null, u.profiles.filter((p) => p.fits).map((p) => p.id)])).toEqual([
      [1, 'fridge-1', ['r4dcb08']],
      [2, null, ['xy-md02']],
    ]);
    const entry = app.audit.recent(20).find((e) => e.action === 'bus-scan');
    expect(entry).toMatchObject({ user: 'admin', detail: { bus: 'lan', units: '1-6', timeoutMs: 200 } });
    // The device kept polling through it.
    expect(app.gateway.pollers[0]!.stats.online).toBe(true);
  });

  it('cancels a running scan; nothing to cancel is 409; unknown buses are 404', async () => {
    const { app, client } = await site();
    expect((await client.get('/api/buses/lan/scan')).body).toEqual({ error: 'no scan of bus lan since the gateway started', msg: { code: 'web.no-scan', params: { bus: 'lan' } } });
    expect((await client.post('/api/buses/lan/scan', { timeoutMs: 200 })).status).toBe(202); // all 247 ids: long
    await waitFor(async () => (await client.get('/api/buses/lan/scan')).body.progress.done >= 3, 10_000, 'three units probed');
    const del = await client.call('DELETE', '/api/buses/lan/scan');
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ cancelled: true, scan: { state: 'cancelled', units: '1-247', result: { stopped: 'cancelled', total: 247 } } });
    expect(del.body.scan.result.probed).toBeLessThan(247);
    expect(del.body.scan.result.units.map((u: { unitId: number }) => u.unitId)).toEqual([1, 2]);
    expect((await client.call('DELETE', '/api/buses/lan/scan')).status).toBe(409);
    expect(actions(app)).toContain('bus-scan-cancel');
    // A new scan may start once the last one ended.
    expect((await client.post('/api/buses/lan/scan', { units: '2' })).status).toBe(202);
    for (const [method, want] of [['POST', 404], ['GET', 404], ['DELETE', 404]] as const) {
      const r = await client.call(method, '/api/buses/nope/scan', method === 'POST' ? {} : undefined);
      expect(r.status).toBe(want);
      expect(r.body.error).toMatch(/^no bus nope/);
    }
    expect((await client.post('/api/buses/nope/scan', {})).body.error).toBe('no bus nope (buses: lan, dead)');
    const down = await client.post('/api/buses/dead/scan', {});
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ reason: 'bus-down' });
    expect(down.body.error).toMatch(/^bus dead is down: /);
  });

  it('a config reload (the buses rebuilt) cancels a running scan', async () => {
    const { app, client } = await site();
    expect((await client.post('/api/buses/lan/scan', { timeoutMs: 200 })).status).toBe(202);
    await waitFor(async () => (await client.get('/api/buses/lan/scan')).body.progress.done >= 1, 10_000, 'a unit probed');
    await app.gateway.reloadIo(app.gateway.config);
    const st = (await client.get('/api/buses/lan/scan')).body;
    expect(st).toMatchObject({ state: 'cancelled', result: { stopped: 'cancelled' } });
    expect((await client.post('/api/buses/lan/scan', { units: '1' })).status).toBe(202);
  });

  it('validates the body at the edge, naming the field; admin only; CSRF on changes', async () => {
    const { app, client } = await site();
    const bad = async (body: unknown) => {
      const r = await client.post('/api/buses/lan/scan', body);
      expect(r.status).toBe(400);
      return r.body.error as string;
    };
    expect(await bad({ units: '0-10' })).toBe('units: unit id 0 is outside 1..247');
    expect(await bad({ units: '1-248' })).toBe('units: unit id 248 is outside 1..247');
    expect(await bad({ units: '10-1' })).toBe('units: range 10-1 runs backwards');
    expect(await bad({ units: 'all' })).toBe('units: "all" is not a unit id or a range like 10-20');
    expect(await bad({ units: 5 })).toMatch(/^units: /);
    expect(await bad({ timeoutMs: 10 })).toMatch(/^timeoutMs: /);
    expect(await bad({ timeoutMs: 99999 })).toMatch(/^timeoutMs: /);
    expect(await bad({ units: '1', write: true })).toMatch(/unrecognized key/i);
    expect(app.gateway.scanState('lan')).toBeNull();

    const anonymous = new WebClient(client.base);
    for (const method of ['POST', 'GET', 'DELETE']) {
      const r = await anonymous.call(method, '/api/buses/lan/scan', method === 'POST' ? { units: '1' } : undefined);
      expect(r.status).toBe(401);
    }
    const noCsrf = await client.call('POST', '/api/buses/lan/scan', { units: '1' }, { 'x-csrf-token': 'wrong' });
    expect(noCsrf.status).toBe(403);
    expect((await client.call('DELETE', '/api/buses/lan/scan', undefined, { 'x-csrf-token': 'wrong' })).status).toBe(403);
    expect(app.gateway.scanState('lan')).toBeNull();
    expect(actions(app)).not.toContain('bus-scan');
  });
});
