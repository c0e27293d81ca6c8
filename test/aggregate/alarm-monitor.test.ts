// Alarm rules from the site config and alarm inputs from the profiles; hold times on the
// monotonic clock; raised alarms persisted in a real SQLite file across restarts.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AlarmMonitor, type AlarmMonitorOptions } from '../../src/aggregate/alarm-monitor.js';
import { ProfileSchema, type Point, type Profile } from '../../src/config/profile-schema.js';
import { AlarmRuleSchema, type AlarmRule } from '../../src/config/site-schema.js';
import type { OutboxItem } from '../../src/store/outbox.js';
import { openDatabase, type Db } from '../../src/store/database.js';
import { SqliteAlarmState } from '../../src/store/alarm-state.js';
import { tmpDir } from '../helpers/peers.js';
import type { Facility, Quality, Reading } from '../../src/types.js';

const T0 = Date.UTC(2025, 4, 1, 8, 0, 0);
const MIN = 60_000;

const name = { zh: 'x', en: 'x' };
const fridgeProfile: Profile = ProfileSchema.parse({
  id: 'test-fridge',
  manufacturer: 'Test',
  model: 'F1',
  name,
  source: 'own',
  facilities: ['canteen'],
  transports: ['modbus-tcp'],
  points: [
    { id: 'temperature', name, register: 'input', address: 0, type: 'int16', scale: 0.1, unit: '°C', privacy: 'public' },
    { id: 'door', name, register: 'discrete', address: 0, type: 'bool', kind: 'state', privacy: 'public' },
  ],
});
const panelProfile: Profile = ProfileSchema.parse({
  id: 'test-panel',
  manufacturer: 'Test',
  model: 'P1',
  name,
  source: 'own',
  facilities: ['security'],
  transports: ['modbus-tcp'],
  points: [
    { id: 'smoke', name, register: 'discrete', address: 0, type: 'bool', kind: 'state', privacy: 'public', alarm: { when: true } },
    { id: 'supply_ok', name, register: 'discrete', address: 1, type: 'bool', kind: 'state', privacy: 'public', alarm: { when: false, severity: 'warning' } },
    { id: 'panic', name, register: 'holding', address: 2, type: 'bit', bit: 3, kind: 'state', privacy: 'public', alarm: { when: true } },
  ],
});

const DEVICES: { id: string; facility: Facility; profile: Profile }[] = [
  { id: 'fridge-1', facility: 'canteen', profile: fridgeProfile },
  { id: 'panel-1', facility: 'security', profile: panelProfile },
];

const rule = (r: Record<string, unknown>): AlarmRule => AlarmRuleSchema.parse(r);

const RULES: AlarmRule[] = [
  rule({ id: 'fridge-warm', device: 'fridge-1', point: 'temperature', above: 8, forSeconds: 600 }),
  rule({ id: 'fridge-frozen', device: 'fridge-1', point: 'temperature', below: -2, severity: 'critical' }),
  rule({ id: 'door-open', device: 'fridge-1', point: 'door', equals: true, forSeconds: 120 }),
];

let items: OutboxItem[] = [];
/** The monitor's monotonic clock. rd() moves it with the reading's stamp (a clock that does
 * not step) unless a test gives it its own value. */
let mono = 0;
beforeEach(() => {
  items = [];
  mono = 0;
});

function mk(rules = RULES, devices = DEVICES, opts: Omit<AlarmMonitorOptions, 'mono'> = {}): AlarmMonitor {
  return new AlarmMonitor(rules, devices, (it) => items.push(...it), { mono: () => mono, ...opts });
}

function rd(device: string, point: string, ts: number, value: number | boolean | null, quality: Quality = 'good', monoAt = ts - T0 + 3_600_000): Reading {
  mono = monoAt;
  const d = DEVICES.find((x) => x.id === device)!;
  const p = d.profile.points.find((x: Point) => x.id === point)!;
  return { device, facility: d.facility, point, ts, value, quality, unit: p.unit, privacy: p.privacy, kind: p.kind };
}

const emitted = () => items.map((i) => JSON.parse(i.body) as Record<string, unknown>);

describe('AlarmMonitor threshold rules', () => {
  it('above 8 for 600 s: raised only after the condition held 600 s', () => {
    const m = mk();
    m.onReading(rd('fridge-1', 'temperature', T0 - MIN, 4.2));
    // Readings every 60 s, above 8 from T0 on.
    for (let k = 0; k <= 9; k++) m.onReading(rd('fridge-1', 'temperature', T0 + k * MIN, 8.5 + k * 0.1));
    // At 540 s: not yet.
    expect(items).toEqual([]);
    expect(m.active()).toEqual([]);
    m.onReading(rd('fridge-1', 'temperature', T0 + 10 * MIN, 9.6));
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ kind: 'alarm', ts: T0 + 10 * MIN });
    expect(emitted()[0]).toEqual({
      ts: T0 + 10 * MIN,
      alarm: 'fridge-warm',
      state: 'raised',
      severity: 'warning',
      facility: 'canteen',
      device: 'fridge-1',
      point: 'temperature',
      value: 9.6,
      condition: '> 8 for 600 s',
    });
    expect(m.active()).toEqual([{ id: 'fridge-warm', device: 'fridge-1', point: 'temperature', severity: 'warning', since: T0 }]);
    expect(m.raisedCount).toBe(1);

    // Still holding: no repeat.
    m.onReading(rd('fridge-1', 'temperature', T0 + 11 * MIN, 10));
    expect(items).toHaveLength(1);

    // Exactly 8 is not above 8: cleared.
    m.onReading(rd('fridge-1', 'temperature', T0 + 12 * MIN, 8));
    expect(items).toHaveLength(2);
    expect(emitted()[1]).toEqual({
      ts: T0 + 12 * MIN,
      alarm: 'fridge-warm',
      state: 'cleared',
      severity: 'warning',
      facility: 'canteen',
      device: 'fridge-1',
      point: 'temperature',
      value: 8,
      condition: '> 8 for 600 s',
    });
    expect(m.active()).toEqual([]);
    m.onReading(rd('fridge-1', 'temperature', T0 + 13 * MIN, 7));
    expect(items).toHaveLength(2);

    // Warm again: the 600 s start over from the first warm reading.
    const t1 = T0 + 20 * MIN;
    for (let k = 0; k < 10; k++) m.onReading(rd('fridge-1', 'temperature', t1 + k * MIN, 12));
    expect(items).toHaveLength(2);
    m.onReading(rd('fridge-1', 'temperature', t1 + 10 * MIN, 12));
    expect(items).toHaveLength(3);
    expect(emitted()[2]).toMatchObject({ alarm: 'fridge-warm', state: 'raised', ts: t1 + 10 * MIN, value: 12 });
    expect(m.active()).toEqual([{ id: 'fridge-warm', device: 'fridge-1', point: 'temperature', severity: 'warning', since: t1 }]);
    expect(m.raisedCount).toBe(2);
  });

  it('an interruption before 600 s restarts the hold time', () => {
    const m = mk();
    for (let k = 0; k < 9; k++) m.onReading(rd('fridge-1', 'temperature', T0 + k * MIN, 9));
    m.onReading(rd('fridge-1', 'temperature', T0 + 9 * MIN, 7.9));
    for (let k = 10; k < 20; k++) m.onReading(rd('fridge-1', 'temperature', T0 + k * MIN, 9));
    // Warm again since T0 + 10 min: at T0 + 19 min that is only 540 s.
    expect(items).toEqual([]);
    m.onReading(rd('fridge-1', 'temperature', T0 + 20 * MIN, 9));
    expect(emitted().map((b) => [b.alarm, b.state, b.ts])).toEqual([['fridge-warm', 'raised', T0 + 20 * MIN]]);
  });

  it('below -2, no hold time: raised at once, cleared at once', () => {
    const m = mk();
    m.onReading(rd('fridge-1', 'temperature', T0, -2));
    expect(items).toEqual([]);
    m.onReading(rd('fridge-1', 'temperature', T0 + MIN, -2.1));
    expect(emitted()).toEqual([
      { ts: T0 + MIN, alarm: 'fridge-frozen', state: 'raised', severity: 'critical', facility: 'canteen', device: 'fridge-1', point: 'temperature', value: -2.1, condition: '< -2' },
    ]);
    expect(m.active()).toEqual([{ id: 'fridge-frozen', device: 'fridge-1', point: 'temperature', severity: 'critical', since: T0 + MIN }]);
    m.onReading(rd('fridge-1', 'temperature', T0 + 2 * MIN, -5));
    expect(items).toHaveLength(1);
    m.onReading(rd('fridge-1', 'temperature', T0 + 3 * MIN, 3));
    expect(emitted()[1]).toMatchObject({ alarm: 'fridge-frozen', state: 'cleared', value: 3, condition: '< -2' });
    expect(m.active()).toEqual([]);
  });

  it('equals true on a bool point, with a hold time', () => {
    const m = mk();
    m.onReading(rd('fridge-1', 'door', T0, true));
    m.onReading(rd('fridge-1', 'door', T0 + 119_999, true));
    expect(items).toEqual([]);
    m.onReading(rd('fridge-1', 'door', T0 + 120_000, true));
    expect(emitted()).toEqual([
      { ts: T0 + 120_000, alarm: 'door-open', state: 'raised', severity: 'warning', facility: 'canteen', device: 'fridge-1', point: 'door', value: true, condition: '= true for 120 s' },
    ]);
    m.onReading(rd('fridge-1', 'door', T0 + 130_000, false));
    expect(emitted()[1]).toMatchObject({ alarm: 'door-open', state: 'cleared', value: false });
    expect(m.active()).toEqual([]);
  });

  it('equals false', () => {
    const m = mk([rule({ id: 'door-shut', device: 'fridge-1', point: 'door', equals: false })]);
    m.onReading(rd('fridge-1', 'door', T0, true));
    expect(items).toEqual([]);
    m.onReading(rd('fridge-1', 'door', T0 + 1, false));
    expect(emitted()).toEqual([
      { ts: T0 + 1, alarm: 'door-shut', state: 'raised', severity: 'warning', facility: 'canteen', device: 'fridge-1', point: 'door', value: false, condition: '= false' },
    ]);
  });

  it('bad-quality readings are ignored: they neither raise, clear, nor restart the hold time', () => {
    const m = mk();
    for (let k = 0; k < 5; k++) m.onReading(rd('fridge-1', 'temperature', T0 + k * MIN, 9));
    // Out of range (a broken sensor reading 99) and timeouts in between.
    m.onReading(rd('fridge-1', 'temperature', T0 + 5 * MIN, 99, 'out_of_range'));
    m.onReading(rd('fridge-1', 'temperature', T0 + 6 * MIN, null, 'timeout'));
    m.onReading(rd('fridge-1', 'temperature', T0 + 7 * MIN, -40, 'exception'));
    m.onReading(rd('fridge-1', 'temperature', T0 + 8 * MIN, null, 'good'));
    expect(items).toEqual([]);
    m.onReading(rd('fridge-1', 'temperature', T0 + 10 * MIN, 9));
    expect(emitted().map((b) => [b.alarm, b.state])).toEqual([['fridge-warm', 'raised']]);
    // A bad low reading does not clear it.
    m.onReading(rd('fridge-1', 'temperature', T0 + 11 * MIN, 2, 'comm_error'));
    expect(items).toHaveLength(1);
    expect(m.active().map((a) => a.id)).toEqual(['fridge-warm']);
    // Nor does a bad frozen reading raise the other rule.
    m.onReading(rd('fridge-1', 'temperature', T0 + 12 * MIN, -30, 'out_of_range'));
    expect(items).toHaveLength(1);
  });

  it('readings of other devices or points do not touch a rule', () => {
    const m = mk();
    m.onReading(rd('fridge-1', 'temperature', T0, 9));
    m.onReading({ ...rd('fridge-1', 'temperature', T0 + 10 * MIN, 9), device: 'fridge-2' });
    m.onReading({ ...rd('fridge-1', 'temperature', T0 + 10 * MIN, 9), point: 'humidity' });
    expect(items).toEqual([]);
  });
});

describe('AlarmMonitor profile alarm inputs', () => {
  it('raise at once and clear, with the profile severity and facility', () => {
    const m = mk();
    m.onReading(rd('panel-1', 'smoke', T0, false));
    expect(items).toEqual([]);
    m.onReading(rd('panel-1', 'smoke', T0 + 1000, true));
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ kind: 'alarm', ts: T0 + 1000 });
    expect(emitted()[0]).toEqual({
      ts: T0 + 1000,
      alarm: 'smoke',
      state: 'raised',
      severity: 'critical',
      facility: 'security',
      device: 'panel-1',
      point: 'smoke',
      value: true,
      condition: '= true',
    });
    expect(m.active()).toEqual([{ id: 'smoke', device: 'panel-1', point: 'smoke', severity: 'critical', since: T0 + 1000 }]);
    m.onReading(rd('panel-1', 'smoke', T0 + 2000, true));
    expect(items).toHaveLength(1);
    m.onReading(rd('panel-1', 'smoke', T0 + 3000, false));
    expect(emitted()[1]).toEqual({
      ts: T0 + 3000,
      alarm: 'smoke',
      state: 'cleared',
      severity: 'critical',
      facility: 'security',
      device: 'panel-1',
      point: 'smoke',
      value: false,
      condition: '= true',
    });
    expect(m.active()).toEqual([]);
  });

  it('alarm when false (a supply-OK contact) and bit points', () => {
    const m = mk();
    m.onReading(rd('panel-1', 'supply_ok', T0, true));
    m.onReading(rd('panel-1', 'supply_ok', T0 + 1, false));
    m.onReading(rd('panel-1', 'panic', T0 + 2, true));
    expect(emitted().map((b) => [b.alarm, b.state, b.severity, b.condition])).toEqual([
      ['supply_ok', 'raised', 'warning', '= false'],
      ['panic', 'raised', 'critical', '= true'],
    ]);
    expect(m.active().map((a) => a.id).sort()).toEqual(['panic', 'supply_ok']);
    expect(m.raisedCount).toBe(2);
  });

  it('a site rule on the same point replaces the profile alarm input', () => {
    const m = mk([rule({ id: 'smoke-confirmed', device: 'panel-1', point: 'smoke', equals: true, forSeconds: 30, severity: 'critical' })]);
    m.onReading(rd('panel-1', 'smoke', T0, true));
    expect(items).toEqual([]);
    m.onReading(rd('panel-1', 'smoke', T0 + 30_000, true));
    expect(emitted().map((b) => [b.alarm, b.state, b.condition])).toEqual([['smoke-confirmed', 'raised', '= true for 30 s']]);
    // The other alarm inputs of that profile are still there.
    m.onReading(rd('panel-1', 'panic', T0 + 31_000, true));
    expect(emitted().map((b) => b.alarm)).toEqual(['smoke-confirmed', 'panic']);
  });

  it('active() lists every raised alarm across devices', () => {
    const m = mk();
    m.onReading(rd('fridge-1', 'temperature', T0, -3));
    m.onReading(rd('panel-1', 'smoke', T0 + 5, true));
    m.onReading(rd('fridge-1', 'door', T0 + 10, true));
    const act = m.active().sort((a, b) => a.id.localeCompare(b.id));
    expect(act).toEqual([
      { id: 'fridge-frozen', device: 'fridge-1', point: 'temperature', severity: 'critical', since: T0 },
      { id: 'smoke', device: 'panel-1', point: 'smoke', severity: 'critical', since: T0 + 5 },
    ]);
    expect(items.every((i) => i.kind === 'alarm')).toBe(true);
  });
});

describe('AlarmMonitor hold time on the monotonic clock', () => {
  const door = [rule({ id: 'door-open', device: 'fridge-1', point: 'door', equals: true, forSeconds: 120 })];

  it('a forward step of the wall clock does not raise a 120 s alarm early', () => {
    const m = mk(door);
    // Open from T0, a reading every 10 s; at 60 s NTP moves the wall clock an hour ahead.
    for (let s = 0; s < 60; s += 10) m.onReading(rd('fridge-1', 'door', T0 + s * 1000, true));
    const H = 3_600_000;
    for (let s = 60; s < 120; s += 10) m.onReading(rd('fridge-1', 'door', T0 + H + s * 1000, true, 'good', 3_600_000 + s * 1000));
    expect(items).toEqual([]);
    m.onReading(rd('fridge-1', 'door', T0 + H + 120_000, true, 'good', 3_600_000 + 120_000));
    // Raised after 120 s of monotonic time, stamped with the (stepped) wall time; since = when it began.
    expect(emitted().map((b) => [b.state, b.ts])).toEqual([['raised', T0 + H + 120_000]]);
    expect(m.active()[0]!.since).toBe(T0);
  });

  it('a backward step of the wall clock does not delay it', () => {
    const m = mk(door);
    for (let s = 0; s < 60; s += 10) m.onReading(rd('fridge-1', 'door', T0 + s * 1000, true));
    const H = 3_600_000;
    for (let s = 60; s < 120; s += 10) m.onReading(rd('fridge-1', 'door', T0 - H + s * 1000, true, 'good', 3_600_000 + s * 1000));
    expect(items).toEqual([]);
    m.onReading(rd('fridge-1', 'door', T0 - H + 120_000, true, 'good', 3_600_000 + 120_000));
    expect(emitted().map((b) => [b.state, b.ts])).toEqual([['raised', T0 - H + 120_000]]);
  });
});

describe('AlarmMonitor across a restart (raised alarms in the counters table)', () => {
  const dirs: string[] = [];
  const dbs: Db[] = [];
  afterEach(() => {
    for (const d of dbs.splice(0)) d.close();
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  /** A gateway database on disk; `reopen()` is a restart: the process and its memory are gone. */
  function storage() {
    const dir = tmpDir('cgw-alarm-');
    dirs.push(dir);
    const file = path.join(dir, 'gateway.db');
    return {
      file,
      open(): SqliteAlarmState {
        for (const d of dbs.splice(0)) d.close();
        const db = openDatabase(file);
        dbs.push(db);
        return new SqliteAlarmState(db);
      },
    };
  }
  const door = [rule({ id: 'door-open', device: 'fridge-1', point: 'door', equals: true, forSeconds: 120 })];

  it('a raised alarm is not raised again after a step back of 2 min and a restart, and is cleared once', () => {
    const st = storage();
    let m = mk(door, DEVICES, { store: st.open() });
    m.onReading(rd('fridge-1', 'door', T0, true));
    m.onReading(rd('fridge-1', 'door', T0 + 120_000, true));
    expect(emitted().map((b) => b.state)).toEqual(['raised']);

    // The clock steps back 2 min, then the daemon restarts (watchdog kill, power cut, config
    // apply): a new monitor on the same file, a monotonic clock started afresh.
    m = mk(door, DEVICES, { store: st.open() });
    expect(m.active()).toEqual([{ id: 'door-open', device: 'fridge-1', point: 'door', severity: 'warning', since: T0 }]);
    for (let s = 0; s <= 300; s += 10) m.onReading(rd('fridge-1', 'door', T0 + s * 1000, true, 'good', 1000 + s * 1000));
    expect(emitted().map((b) => b.state)).toEqual(['raised']);
    expect(m.raisedCount).toBe(0);

    m.onReading(rd('fridge-1', 'door', T0 + 310_000, false));
    m.onReading(rd('fridge-1', 'door', T0 + 320_000, false));
    expect(emitted().map((b) => [b.state, b.ts])).toEqual([['raised', T0 + 120_000], ['cleared', T0 + 310_000]]);

    // Cleared is persisted too: after another restart nothing is restored, nothing re-sent.
    m = mk(door, DEVICES, { store: st.open() });
    expect(m.active()).toEqual([]);
    m.onReading(rd('fridge-1', 'door', T0 + 330_000, false));
    expect(items).toHaveLength(2);
  });

  it('right after a restart, a first reading that does not hold clears it (sent once)', () => {
    const st = storage();
    let m = mk(door, DEVICES, { store: st.open() });
    m.onReading(rd('fridge-1', 'door', T0, true));
    m.onReading(rd('fridge-1', 'door', T0 + 120_000, true));
    m = mk(door, DEVICES, { store: st.open() });
    m.onReading(rd('fridge-1', 'door', T0 + 200_000, false));
    m.onReading(rd('fridge-1', 'door', T0 + 210_000, false));
    expect(emitted().map((b) => [b.alarm, b.state, b.ts])).toEqual([
      ['door-open', 'raised', T0 + 120_000],
      ['door-open', 'cleared', T0 + 200_000],
    ]);
  });

  it('a raised alarm whose rule is gone after the restart is cleared at start, once', () => {
    const st = storage();
    let m = mk(door, DEVICES, { store: st.open() });
    m.onReading(rd('fridge-1', 'door', T0, true));
    m.onReading(rd('fridge-1', 'door', T0 + 120_000, true));
    m = mk(RULES.filter((r) => r.id !== 'door-open'), DEVICES, { store: st.open(), now: () => T0 + 500_000 });
    expect(emitted()[1]).toEqual({
      ts: T0 + 500_000,
      alarm: 'door-open',
      state: 'cleared',
      severity: 'warning',
      facility: 'canteen',
      device: 'fridge-1',
      point: 'door',
      value: null,
      condition: 'rule removed from the configuration',
    });
    m = mk(RULES.filter((r) => r.id !== 'door-open'), DEVICES, { store: st.open() });
    expect(items).toHaveLength(2);
  });

  it('a rule removed by reconfigure is cleared and stays cleared after a restart', () => {
    const st = storage();
    let m = mk(door, DEVICES, { store: st.open() });
    m.onReading(rd('panel-1', 'smoke', T0, true));
    m.onReading(rd('fridge-1', 'door', T0, true));
    m.onReading(rd('fridge-1', 'door', T0 + 120_000, true));
    m.reconfigure([], DEVICES);
    expect(emitted().map((b) => [b.alarm, b.state])).toEqual([['smoke', 'raised'], ['door-open', 'raised'], ['door-open', 'cleared']]);
    m = mk([], DEVICES, { store: st.open() });
    expect(m.active().map((a) => a.id)).toEqual(['smoke']);
    expect(items).toHaveLength(3);
  });

  it('a raise is in the outbox before it is persisted; a clear is persisted before it is sent', () => {
    const order: string[] = [];
    const saved: string[][] = [];
    const store = {
      load: () => [],
      save: (raised: { id: string }[]) => {
        order.push(`save ${raised.map((a) => a.id).join(',') || '-'}`);
        saved.push(raised.map((a) => a.id));
      },
    };
    const m = new AlarmMonitor(door, DEVICES, (it) => order.push(`append ${(JSON.parse(it[0]!.body) as { state: string }).state}`), { store, mono: () => mono });
    m.onReading(rd('fridge-1', 'door', T0, true));
    m.onReading(rd('fridge-1', 'door', T0 + 120_000, true));
    m.onReading(rd('fridge-1', 'door', T0 + 130_000, false));
    expect(order).toEqual(['append raised', 'save door-open', 'save -', 'append cleared']);
  });

});

describe('AlarmMonitor: facility id and house code', () => {
  it('alarm items carry the device\'s facility id and house code, also the clear of a removed rule', () => {
    const placed = [{ ...DEVICES[0]!, facilityId: 'canteen-north', houseCode: 'H-7' }, { ...DEVICES[1]!, facilityId: 'security' }];
    const m = mk(RULES, placed);
    m.onReading(rd('fridge-1', 'temperature', T0, -3));
    m.onReading(rd('panel-1', 'smoke', T0 + 1000, true));
    expect(emitted().map((e) => [e.alarm, e.facility, e.facilityId, e.houseCode])).toEqual([
      ['fridge-frozen', 'canteen', 'canteen-north', 'H-7'],
      ['smoke', 'security', 'security', undefined],
    ]);
    // The rule goes, the device stays: the clear names where the device is now.
    m.reconfigure(RULES.filter((r) => r.id !== 'fridge-frozen'), [{ ...placed[0]!, houseCode: 'H-8' }, placed[1]!]);
    expect(emitted()[2]).toMatchObject({ alarm: 'fridge-frozen', state: 'cleared', facilityId: 'canteen-north', houseCode: 'H-8' });
  });
});
