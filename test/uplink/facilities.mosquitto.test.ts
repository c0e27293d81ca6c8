// The embedded default config (one facility of each of the seven types, Modbus devices on the
// simulator, GPIO inputs simulated) run against a real Mosquitto with the reference platform
// consumer as the witness: every item the consumer accepted (it validates against the contract
// that docs/uplink.schema.json is generated from) carries its facility's id and house code, and
// the inventory lists the facilities.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { loadProfiles } from '../../src/config/profiles.js';
import { parseSiteConfig } from '../../src/config/site-config.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { freePort, sleep, tmpDir, waitFor } from '../helpers/peers.js';
import { makeGateway } from '../helpers/gateway.js';
import { PlatformConsumer } from '../../src/platform/consumer.js';
import { DEFAULT_CONFIG } from '../../src/config/paths.js';
import { AggItem, AlarmItem, InventoryItem } from '../../src/uplink/contract.js';
import { silentLogger } from '../../src/log.js';
import type { Gateway } from '../../src/main.js';

let stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.reverse()) await s();
  stops = [];
});
afterAll(() => stopAll('SIGKILL'));

type Cfg = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** config/default.yaml as it ships, on ephemeral ports and a temp database, 5 s windows. */
async function defaultConfig(brokerPort: number): Promise<Cfg> {
  const c = parse(fs.readFileSync(DEFAULT_CONFIG, 'utf8')) as Cfg;
  const simPort = await freePort();
  c.localBroker = { ...c.localBroker, host: '127.0.0.1', port: 0 };
  c.web = { host: '127.0.0.1', port: 0, https: false };
  c.storage = { path: path.join(tmpDir('cgw-fac-'), 'gateway.db') };
  c.uplink = { ...c.uplink, url: `mqtt://127.0.0.1:${brokerPort}`, windowSeconds: 5, statusIntervalSeconds: 5, reconnectMinMs: 300 };
  c.buses[0].port = simPort;
  c.simulator = { ...c.simulator, port: simPort };
  return c;
}

describe('every facility type on the simulator, to the platform', () => {
  it('the default config runs all seven types; facility items, alarms and the inventory carry facilityId and houseCode', async () => {
    const broker = await Mosquitto.start();
    const platform = new PlatformConsumer({ url: `mqtt://127.0.0.1:${broker.port}`, db: path.join(tmpDir('cgw-platform-'), 'platform.db') }, silentLogger());
    await platform.start();
    stops.push(() => platform.stop());
    await sleep(200);
    const cfg = await defaultConfig(broker.port);
    const g: Gateway = makeGateway(cfg);
    stops.push(() => g.stop());
    await g.start();

    const houseOf = new Map<string, string | undefined>((cfg.facilities as Cfg[]).map((f) => [f.id, f.houseCode]));
    const typeOf = new Map<string, string>((cfg.facilities as Cfg[]).map((f) => [f.id, f.type]));
    expect(new Set(typeOf.values()).size).toBe(7);

    const facilityItems = async () => (await platform.items('gw-demo-01', 'agg')).map((i) => i.body).filter((b) => b.type === 'facility');
    await waitFor(async () => new Set((await facilityItems()).map((b) => b.facilityId)).size === 7, 25000, 'a facility item of each of the seven facilities');
    expect(platform.stats.rejected).toBe(0);

    // One availability item per facility, with its type, id and house code.
    const fac = await facilityItems();
    for (const [id, type] of typeOf) {
      const items = fac.filter((b) => b.facilityId === id);
      expect(items.length, id).toBeGreaterThan(0);
      for (const b of items) {
        expect(AggItem.safeParse(b).success).toBe(true);
        expect(b.facility).toBe(type);
        expect(b.houseCode).toBe(houseOf.get(id));
      }
    }
    expect(fac.find((b) => b.facilityId === 'security')).not.toHaveProperty('houseCode');
    // The simulated GPIO inputs count as devices of their facilities, online.
    const care = fac.filter((b) => b.facilityId === 'elderly-care').at(-1)!;
    expect(care.devices).toBe(2);
    expect(care.availability).toBeGreaterThan(0);

    // Point items of the new profiles: the childcare room's CO2 and the UV lamp's run hours.
    const points = (await platform.items('gw-demo-01', 'agg')).map((i) => i.body).filter((b) => b.type === 'point');
    const co2 = points.filter((b) => b.device === 'nursery-air' && b.point === 'co2');
    expect(co2.length).toBeGreaterThan(0);
    // Point items carry the facility id only where it is not the type id (here it is: no field),
    // and never the house code: the facility items and the inventory carry it (bytes per reading).
    for (const b of co2) {
      expect(b.facility).toBe('childcare');
      expect(b).not.toHaveProperty('facilityId');
      expect(b).not.toHaveProperty('houseCode');
    }
    expect(co2.some((b) => (b.count as number) > 0 && (b.mean as number) >= 300 && (b.mean as number) <= 2000)).toBe(true);
    const hours = points.filter((b) => b.device === 'uv-lamp-1' && b.point === 'run_hours');
    expect(hours.some((b) => (b.count as number) > 0)).toBe(true);
    const calls = points.filter((b) => b.device === 'care-call-1');
    expect(calls.some((b) => (b.count as number) > 0), 'the simulated call button reports').toBe(true);
    for (const b of calls) expect(b.facility).toBe('elderly-care');

    // The inventory: every facility with its type's code and names, every device placed.
    const inv = (await platform.items('gw-demo-01', 'inventory')).at(-1)!.body;
    expect(InventoryItem.safeParse({ ...inv }).success).toBe(true);
    const facilities = inv.facilities as Cfg[];
    expect(facilities.map((f) => f.id)).toEqual([...typeOf.keys()]);
    expect(facilities.find((f) => f.id === 'childcare')).toMatchObject({ type: 'childcare', code: '03', typeName: { zh: '托育服务设施', en: 'Childcare facility' }, name: '托育园', houseCode: '330106001001-0003', listed: true, devices: 2 });
    expect(facilities.find((f) => f.id === 'party-service')?.devices).toBe(2);
    const devices = inv.devices as Cfg[];
    expect(devices).toHaveLength(cfg.devices.length + cfg.gpio.length);
    expect(devices.find((d) => d.id === 'care-call-1')).toMatchObject({ facility: 'elderly-care', facilityId: 'elderly-care', houseCode: houseOf.get('elderly-care'), profile: 'gpio-alarm' });
    expect(devices.find((d) => d.id === 'io-1')).toMatchObject({ facility: 'security', facilityId: 'security' });
    expect(devices.find((d) => d.id === 'io-1')).not.toHaveProperty('houseCode');
    // Alarms (the kitchen's gas rule, the simulated call button) are valid wherever one came.
    for (const a of (await platform.items('gw-demo-01', 'alarm')).map((i) => i.body)) {
      expect(AlarmItem.safeParse(a).success).toBe(true);
      expect(typeOf.has(a.facilityId as string), `alarm ${String(a.alarm)} names a configured facility`).toBe(true);
    }

    // A config change applied in place (the page's reload): a new inventory goes at once, with
    // the childcare room's new house code and a facility added.
    const next = structuredClone(cfg);
    next.facilities.find((f: Cfg) => f.id === 'childcare').houseCode = '330106001001-0099';
    next.facilities.push({ id: 'library', type: 'party-service', name: '社区书屋' });
    const parsed = parseSiteConfig(stringify(next), loadProfiles(DRIVERS_DIR));
    if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
    const before = (await platform.items('gw-demo-01', 'inventory')).length;
    await g.reloadIo(parsed.config);
    const inv2 = await waitFor(async () => {
      const all = await platform.items('gw-demo-01', 'inventory');
      return all.length > before ? all.at(-1)!.body : null;
    }, 10000, 'the inventory after the reload');
    const f2 = inv2.facilities as Cfg[];
    expect(f2.find((f) => f.id === 'childcare')!.houseCode).toBe('330106001001-0099');
    expect(f2.find((f) => f.id === 'library')).toMatchObject({ type: 'party-service', code: '01', listed: true, devices: 0 });
    expect((inv2.devices as Cfg[]).find((d) => d.id === 'nursery-air')!.houseCode).toBe('330106001001-0099');
    expect((await platform.facilities()).find((f) => f.facilityId === 'childcare')!.houseCode).toBe('330106001001-0099');
  }, 60000);
});
