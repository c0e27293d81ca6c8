// GPIO inputs inside the whole gateway: edges injected through the in-memory backend (the one
// thing that cannot exist here), everything after it real: the local broker seen by
// mosquitto_sub, alarms in the SQLite outbox, the pulse count across a restart on the same file.
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { MosquittoSub, freePort, waitFor } from '../../helpers/peers.js';
import { baseConfig, makeGateway } from '../../helpers/gateway.js';
import { FakeBackend } from '../../helpers/fake-gpio.js';
import type { Gateway } from '../../../src/main.js';

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const gpio = [
  { id: 'door-1', facility: 'security', kind: 'contact', line: 17, debounceMs: 0 },
  { id: 'sos-1', facility: 'security', kind: 'alarm', line: 27, debounceMs: 0, severity: 'critical' },
  { id: 'meals', facility: 'canteen', kind: 'counter', line: 22, debounceMs: 0 },
];

async function start(cfg: Record<string, unknown>, backend: FakeBackend): Promise<Gateway> {
  const g = makeGateway(cfg, [], undefined, { gpioBackend: backend });
  cleanups.push(() => g.stop());
  await g.start();
  return g;
}

const lineOf = (b: FakeBackend, n: number) => b.lines.find((l) => l.number === 512 + n)!;

describe('GPIO inputs in the gateway', () => {
  it('publishes contact, alarm and counter inputs, sends the alarm at once, and keeps the count across a restart', async () => {
    const cfg = baseConfig({ gpio });
    const backend = new FakeBackend();
    let g = await start(cfg, backend);
    const sub = new MosquittoSub(g.broker.port, 'community/gw-test/#', ['-v']);
    cleanups.push(() => sub.stop());
    await sub.started();

    lineOf(backend, 17).set(1);
    lineOf(backend, 27).set(1);
    for (let i = 0; i < 3; i++) {
      lineOf(backend, 22).set(1);
      lineOf(backend, 22).set(0);
    }
    const door = 'community/gw-test/security/door-1/active';
    const meals = 'community/gw-test/canteen/meals/count';
    await waitFor(() => sub.on(door).some((l) => JSON.parse(l.payload).value === true), 5000, 'door open on the local broker');
    await waitFor(() => sub.on(meals).some((l) => JSON.parse(l.payload).value === 3), 5000, 'three meals counted');
    expect(sub.on('community/gw-test/security/door-1/availability').at(-1)?.payload).toBe('online');
    expect(g.snapshot()).toMatchObject({ gpio: [{ id: 'door-1', mode: 'interrupt', number: 529 }, { id: 'sos-1', mode: 'interrupt' }, { id: 'meals', mode: 'interrupt', count: 3 }] });

    // The alarm input is an alarm item in the outbox at once, not at the end of a window.
    const db = () => new Database(g.config.storage.path, { readonly: true });
    await waitFor(() => {
      const d = db();
      try {
        return (d.prepare("SELECT body FROM outbox WHERE kind = 'alarm'").all() as { body: string }[]).map((r) => JSON.parse(r.body));
      } finally {
        d.close();
      }
    }, 5000, 'alarm row').then((rows) => expect(rows[0]).toMatchObject({ device: 'sos-1', point: 'active', state: 'raised', severity: 'critical' }));

    // Restart on the same database: the counter goes on from 3.
    await g.stop();
    const backend2 = new FakeBackend();
    g = await start(cfg, backend2);
    expect(g.gpio.find((x) => x.cfg.id === 'meals')!.input.stats.count).toBe(3);
    lineOf(backend2, 22).set(1);
    await waitFor(() => g.gpio.find((x) => x.cfg.id === 'meals')!.input.stats.count === 4, 5000, 'fourth meal');
  });

  it('an alarm input raised before a restart is not raised again after it, and is cleared once', async () => {
    const cfg = baseConfig({ gpio: [gpio[1]] });
    const alarmRows = () => {
      const d = new Database((cfg.storage as { path: string }).path, { readonly: true });
      try {
        return (d.prepare("SELECT body FROM outbox WHERE kind = 'alarm' ORDER BY seq").all() as { body: string }[]).map((r) => (JSON.parse(r.body) as { state: string }).state);
      } finally {
        d.close();
      }
    };
    const backend = new FakeBackend();
    let g = await start(cfg, backend);
    lineOf(backend, 27).set(1);
    await waitFor(() => alarmRows().length === 1, 5000, 'the raise');
    // Restart with the button still pressed: the pin reads 1 from the start.
    await g.stop();
    const backend2 = new FakeBackend();
    backend2.initial = 1;
    g = await start(cfg, backend2);
    await waitFor(() => (g.gpio[0]!.input.stats.level === 1 ? true : null), 5000, 'the input read after the restart');
    expect(g.alarms!.active().map((a) => a.device)).toEqual(['sos-1']);
    expect(alarmRows()).toEqual(['raised']);
    lineOf(backend2, 27).set(0);
    await waitFor(() => alarmRows().length === 2, 5000, 'the clear');
    expect(alarmRows()).toEqual(['raised', 'cleared']);
  });

  it('says clearly when sysfs GPIO is absent and keeps every other part running', async () => {
    const backend = new FakeBackend();
    backend.reason = '/sys/class/gpio is absent: this kernel has no sysfs GPIO (Raspberry Pi 5 on current Raspberry Pi OS); GPIO inputs are disabled';
    const port = await freePort();
    const g = await start(
      baseConfig({
        gpio,
        simulator: { enabled: true, port, seed: 1 },
        buses: [{ id: 'sim', type: 'modbus-tcp', host: '127.0.0.1', port }],
        devices: [{ id: 'fridge-1', facility: 'canteen', profile: 'xy-md02', bus: 'sim', unitId: 1, pollMs: 200 }],
      }),
      backend,
    );
    const snap = g.snapshot() as { gpio: { id: string; mode: string; lastError: string }[] };
    expect(snap.gpio.map((x) => x.mode)).toEqual(['unavailable', 'unavailable', 'unavailable']);
    expect(snap.gpio[0]!.lastError).toContain('/sys/class/gpio is absent');
    const seen: string[] = [];
    g.events.on('reading', (r) => seen.push(r.device));
    await waitFor(() => seen.includes('fridge-1'), 5000, 'the Modbus device still polled');
    expect(g.uplink!.state).not.toBe('stopped');
  });
});
