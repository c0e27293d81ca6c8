// PersonalAggregator driven directly with the real health-kiosk profile from drivers/: events
// are added (or derived from Readings and scans), items(ws) is read, and every released body is
// parsed, checked against the uplink contract and against the privacy rules: k distinct
// residents per figure, band-cell suppression with complementary suppression, no min/max/last
// or single values, and Laplace noise when epsilon is set.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PrivacyLedger } from '../../src/privacy/ledger.js';
import { seeded } from '../helpers/seeded-source.js';
import type { Point, Profile } from '../../src/config/profile-schema.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { PersonalAggregator, type HealthEvent, type PersonalOptions } from '../../src/privacy/personal-aggregator.js';
import type { OutboxItem } from '../../src/store/outbox.js';
import type { Facility, Quality, Reading } from '../../src/types.js';
import { PersonalAggregate } from '../../src/uplink/contract.js';

const PROFILES = loadProfiles(DRIVERS_DIR);
const profile: Profile = PROFILES.get('fc-health-kiosk-v1')!;
const DEVICE: { id: string; facility: Facility; profile: Profile } = { id: 'kiosk-1', facility: 'health', profile };
const WMS = 60_000;
const W = 60;
/** A window boundary: 2025-05-01T08:00:00Z. */
const T0 = Date.UTC(2025, 4, 1, 8, 0, 0);
const T1 = T0 + WMS;
const T2 = T1 + WMS;
/** The personal measures of the kiosk's events block, in its order. */
const MEASURES = ['systolic_bp', 'diastolic_bp', 'pulse_rate', 'body_weight', 'blood_glucose'];
const BANDED = ['systolic_bp', 'diastolic_bp', 'pulse_rate', 'blood_glucose'];
const ALLOWED_KEYS = ['type', 'windowStart', 'windowSeconds', 'facility', 'device', 'point', 'unit', 'k', 'measurements', 'residents', 'mean', 'bands', 'suppressed', 'epsilon', 'delta', 'threshold'];
/** The released item as the platform sees it, minus the seq the outbox splices in. */
const Contract = PersonalAggregate.omit({ seq: true });

interface Body {
  type: string;
  windowStart: number;
  windowSeconds: number;
  facility: string;
  device: string;
  point: string;
  unit: string;
  k: number;
  measurements: number | null;
  residents: number | null;
  mean: number | null;
  bands?: Record<string, number | null> | null;
  suppressed: number;
  epsilon?: number;
}

function agg(opts: PersonalOptions, devices: { id: string; facility: Facility; profile: Profile }[] = [DEVICE]): PersonalAggregator {
  return new PersonalAggregator(devices, opts, WMS);
}

/** A resident's pseudonym as the pipeline would produce it (16 hex digits). */
const R = (i: number): string => `r${String(i).padStart(15, '0')}`;

function ev(subject: string | null, values: Record<string, number>, ts = T0 + 1000): HealthEvent {
  return { device: 'kiosk-1', facility: 'health', ts, subject, values: new Map(Object.entries(values)) };
}

/** Adds one systolic event per [subject, value]. */
function addSys(a: PersonalAggregator, list: [string | null, number][], ts = T0 + 1000): void {
  for (const [s, v] of list) a.add(ev(s, { systolic_bp: v }, ts));
}

function assertNoForbiddenKeys(o: unknown, where: string): void {
  if (o === null || typeof o !== 'object') return;
  for (const [k, v] of Object.entries(o)) {
    expect(['min', 'max', 'last'], `${where}: key ${k}`).not.toContain(k);
    assertNoForbiddenKeys(v, where);
  }
}

/** Parses the items of window `ws`: exactly one per measure, each valid and well-formed. */
function read(items: OutboxItem[], ws: number, k: number): Map<string, Body> {
  expect(items.length).toBe(MEASURES.length);
  const out = new Map<string, Body>();
  for (const item of items) {
    expect(item.kind).toBe('agg');
    expect(item.ts).toBe(ws + WMS);
    const b = JSON.parse(item.body) as Body;
    expect(() => Contract.parse(b), item.body).not.toThrow();
    assertNoForbiddenKeys(b, item.body);
    for (const key of Object.keys(b)) expect(ALLOWED_KEYS, item.body).toContain(key);
    expect(b.type).toBe('personal');
    expect(b.windowStart).toBe(ws);
    expect(b.windowSeconds).toBe(W);
    expect(b.facility).toBe('health');
    expect(b.device).toBe('kiosk-1');
    expect(b.k).toBe(k);
    out.set(b.point, b);
  }
  expect([...out.keys()]).toEqual(MEASURES);
  return out;
}

/** The body of a measure with nothing about it released. */
function suppressedBody(point: string, suppressed: number) {
  return {
    measurements: null,
    residents: null,
    mean: null,
    ...(BANDED.includes(point) ? { bands: null } : {}),
    suppressed,
  };
}

const SYS_BANDS = ['normal', 'normal_high', 'grade_1', 'grade_2', 'grade_3'];
function sysBands(over: Record<string, number | null>): Record<string, number | null> {
  return Object.fromEntries(SYS_BANDS.map((b) => [b, b in over ? over[b]! : 0]));
}

describe('profile from drivers/', () => {
  it('the kiosk profile has the five personal measures and the bands the tests rely on', () => {
    expect(profile.events).toEqual({ trigger: 'measurement_count', subject: 'resident_card_uid', values: MEASURES });
    const sys = profile.points.find((p) => p.id === 'systolic_bp')!;
    expect(sys.bands!.map((b) => [b.id, b.from])).toEqual([['normal', 0], ['normal_high', 120], ['grade_1', 140], ['grade_2', 160], ['grade_3', 180]]);
  });
});

describe('k-anonymity of a measure (k = 5)', () => {
  it('4 distinct residents, even with 10 measurements: everything suppressed, suppressed = 10', () => {
    const a = agg({ k: 5 });
    // r1, r2 three times, r3, r4 twice: 10 measurements of 4 residents.
    addSys(a, [[R(1), 131], [R(1), 132], [R(1), 133], [R(2), 134], [R(2), 135], [R(2), 136], [R(3), 121], [R(3), 122], [R(4), 141], [R(4), 142]]);
    expect(a.events).toBe(10);
    const b = read(a.items(T0, W), T0, 5);
    expect(b.get('systolic_bp')).toMatchObject(suppressedBody('systolic_bp', 10));
    expect(b.get('systolic_bp')!.unit).toBe('mmHg');
    for (const m of MEASURES.slice(1)) expect(b.get(m)).toMatchObject(suppressedBody(m, 0));
    expect(a.suppressedTotal).toBe(10);
  });

  it('4 residents plus 6 anonymous measurements are still fewer than k: suppressed = 10', () => {
    const a = agg({ k: 5 });
    addSys(a, [[R(1), 125], [R(2), 125], [R(3), 125], [R(4), 125], [null, 125], [null, 125], [null, 125], [null, 125], [null, 125], [null, 125]]);
    const b = read(a.items(T0, W), T0, 5);
    expect(b.get('systolic_bp')).toMatchObject(suppressedBody('systolic_bp', 10));
  });

  it('5 residents: measurements, residents, exact mean and bands are released', () => {
    const a = agg({ k: 5 });
    addSys(a, [[R(1), 121], [R(2), 125], [R(3), 130], [R(4), 134], [R(5), 138]]);
    const b = read(a.items(T0, W), T0, 5);
    expect(b.get('systolic_bp')).toMatchObject({
      measurements: 5,
      residents: 5,
      mean: 129.6, // (121 + 125 + 130 + 134 + 138) / 5
      bands: sysBands({ normal_high: 5 }),
      suppressed: 0,
    });
    expect(b.get('systolic_bp')!.epsilon).toBeUndefined();
    expect(a.suppressedTotal).toBe(0);
  });

  it('5 residents with repeated measurements: residents counts each pseudonym once', () => {
    const a = agg({ k: 5 });
    addSys(a, [[R(1), 122], [R(1), 124], [R(2), 126], [R(3), 128], [R(4), 130], [R(5), 132], [R(5), 134]]);
    const b = read(a.items(T0, W), T0, 5);
    expect(b.get('systolic_bp')).toMatchObject({ measurements: 7, residents: 5, mean: 128, bands: sysBands({ normal_high: 7 }), suppressed: 0 });
  });

  it('residents are counted per measure: a measure missing for some residents is judged on its own', () => {
    const a = agg({ k: 5 });
    for (let i = 1; i <= 5; i++) a.add(ev(R(i), i <= 4 ? { systolic_bp: 130, body_weight: 60 + i } : { systolic_bp: 130 }));
    const b = read(a.items(T0, W), T0, 5);
    expect(b.get('systolic_bp')).toMatchObject({ measurements: 5, residents: 5, mean: 130 });
    expect(b.get('body_weight')).toMatchObject(suppressedBody('body_weight', 4));
    expect(b.get('body_weight')).not.toHaveProperty('bands');
  });
});

describe('anonymous sessions (subject null)', () => {
  it('count as measurements (and in the mean) but never as residents', () => {
    const a = agg({ k: 5 });
    addSys(a, [[R(1), 125], [R(2), 125], [R(3), 125], [R(4), 125], [R(5), 125], [null, 130], [null, 130], [null, 130]]);
    const b = read(a.items(T0, W), T0, 5);
    expect(b.get('systolic_bp')).toMatchObject({
      measurements: 8,
      residents: 5,
      mean: 126.9, // (5 * 125 + 3 * 130) / 8 = 126.875, 4 significant digits
      bands: sysBands({ normal_high: 8 }),
      suppressed: 0,
    });
  });

  it('only anonymous sessions: no residents, so nothing is released', () => {
    const a = agg({ k: 2 });
    addSys(a, Array.from({ length: 10 }, () => [null, 125] as [null, number]));
    const b = read(a.items(T0, W), T0, 2);
    expect(b.get('systolic_bp')).toMatchObject(suppressedBody('systolic_bp', 10));
  });

  it('a band cell holding only anonymous measurements rests on 0 residents and is suppressed', () => {
    const a = agg({ k: 5 });
    addSys(a, [[R(1), 125], [R(2), 125], [R(3), 125], [R(4), 125], [R(5), 125], [R(6), 145], [R(7), 145], [R(8), 145], [R(9), 145], [R(10), 145], [null, 185], [null, 186]]);
    const sys = read(a.items(T0, W), T0, 5).get('systolic_bp')!;
    expect(sys.measurements).toBe(12);
    expect(sys.residents).toBe(10);
    // grade_3 (2 anonymous) is small; normal_high and grade_1 tie on 5 residents and 5
    // measurements, the complement is one of them.
    expect(sys.bands!.grade_3).toBeNull();
    expect(sys.bands!.normal).toBe(0);
    expect(sys.bands!.grade_2).toBe(0);
    const nulls = Object.entries(sys.bands!).filter(([, v]) => v === null).map(([id]) => id);
    expect(nulls.length).toBe(2);
    expect(sys.suppressed).toBe(7);
  });
});

describe('bands follow the profile (`from` is the inclusive lower bound)', () => {
  const cases: [string, number, string][] = [
    ['systolic_bp', 90, 'normal'],
    ['systolic_bp', 119, 'normal'],
    ['systolic_bp', 120, 'normal_high'],
    ['systolic_bp', 139, 'normal_high'],
    ['systolic_bp', 140, 'grade_1'],
    ['systolic_bp', 159, 'grade_1'],
    ['systolic_bp', 160, 'grade_2'],
    ['systolic_bp', 179, 'grade_2'],
    ['systolic_bp', 180, 'grade_3'],
    ['systolic_bp', 185, 'grade_3'],
    ['diastolic_bp', 79, 'normal'],
    ['diastolic_bp', 80, 'normal_high'],
    ['diastolic_bp', 90, 'grade_1'],
    ['diastolic_bp', 100, 'grade_2'],
    ['diastolic_bp', 109, 'grade_2'],
    ['diastolic_bp', 110, 'grade_3'],
    ['pulse_rate', 59, 'slow'],
    ['pulse_rate', 60, 'normal'],
    ['pulse_rate', 100, 'normal'],
    ['pulse_rate', 101, 'fast'],
    ['blood_glucose', 3.8, 'low'],
    ['blood_glucose', 3.9, 'normal'],
    ['blood_glucose', 6, 'normal'],
    ['blood_glucose', 6.1, 'impaired'],
    ['blood_glucose', 6.9, 'impaired'],
    ['blood_glucose', 7, 'high'],
  ];
  it.each(cases)('%s %d -> %s', (point, value, band) => {
    const a = agg({ k: 2 });
    a.add(ev(R(1), { [point]: value }));
    a.add(ev(R(2), { [point]: value }));
    const b = read(a.items(T0, W), T0, 2).get(point)!;
    const ids = profile.points.find((p) => p.id === point)!.bands!.map((x) => x.id);
    expect(b.bands).toEqual(Object.fromEntries(ids.map((id) => [id, id === band ? 2 : 0])));
    expect(b).toMatchObject({ measurements: 2, residents: 2, mean: value, suppressed: 0 });
  });

  it('body_weight has no bands: no bands key at all', () => {
    const a = agg({ k: 2 });
    a.add(ev(R(1), { body_weight: 61.2 }));
    a.add(ev(R(2), { body_weight: 70.4 }));
    const b = read(a.items(T0, W), T0, 2).get('body_weight')!;
    expect(b).toMatchObject({ measurements: 2, residents: 2, mean: 65.8, suppressed: 0, unit: 'kg' });
    expect(b).not.toHaveProperty('bands');
  });
});

describe('band-cell suppression (k = 5)', () => {
  it('one small cell: it and the smallest other non-empty cell are null; not recoverable from the total', () => {
    const a = agg({ k: 5 });
    addSys(a, [
      // normal: 2 residents, 2 measurements (the small cell)
      [R(1), 110], [R(2), 115],
      // normal_high: 5 residents, 5 measurements
      [R(3), 125], [R(4), 125], [R(5), 125], [R(6), 125], [R(7), 125],
      // grade_1: 5 residents, 7 measurements (r8 and r9 measured twice)
      [R(8), 145], [R(9), 145], [R(10), 145], [R(11), 145], [R(12), 145], [R(8), 150], [R(9), 150],
    ]);
    const sys = read(a.items(T0, W), T0, 5).get('systolic_bp')!;
    expect(sys.measurements).toBe(14);
    expect(sys.residents).toBe(12);
    expect(sys.mean).toBe(133.9); // 1875 / 14 = 133.93
    // normal_high ties grade_1 on residents and has fewer measurements: it is the complement.
    expect(sys.bands).toEqual({ normal: null, normal_high: null, grade_1: 7, grade_2: 0, grade_3: 0 });
    expect(sys.suppressed).toBe(2 + 5);
    // Recovery attempt: the total minus the visible cells gives only the sum of both cells.
    const visible = Object.values(sys.bands!).reduce<number>((s, v) => s + (v ?? 0), 0);
    const rest = sys.measurements! - visible;
    expect(rest).toBe(7);
    expect(rest).not.toBe(2);
    expect(rest).not.toBe(5);
    expect(a.suppressedTotal).toBe(7);
  });

  it('the complement is the non-empty cell with the fewest residents', () => {
    const a = agg({ k: 5 });
    addSys(a, [
      [R(1), 110], [R(2), 115], // normal: 2 (small)
      [R(3), 125], [R(4), 125], [R(5), 125], [R(6), 125], [R(7), 125], [R(8), 125], // normal_high: 6
      [R(9), 145], [R(10), 145], [R(11), 145], [R(12), 145], [R(13), 145], // grade_1: 5
    ]);
    const sys = read(a.items(T0, W), T0, 5).get('systolic_bp')!;
    expect(sys).toMatchObject({ measurements: 13, residents: 13, suppressed: 7 });
    expect(sys.bands).toEqual({ normal: null, normal_high: 6, grade_1: null, grade_2: 0, grade_3: 0 });
    expect(sys.measurements! - 6).toBe(7);
  });

  it('one small cell and a single other non-empty cell: both null, only zeros visible', () => {
    const a = agg({ k: 5 });
    addSys(a, [[R(1), 185], [R(2), 190], [R(3), 125], [R(4), 125], [R(5), 125], [R(6), 125], [R(7), 125], [R(8), 125]]);
    const sys = read(a.items(T0, W), T0, 5).get('systolic_bp')!;
    expect(sys.bands).toEqual({ normal: 0, normal_high: null, grade_1: 0, grade_2: 0, grade_3: null });
    expect(sys).toMatchObject({ measurements: 8, residents: 8, suppressed: 8 });
  });

  it('two naturally small cells: both null, no extra cell suppressed, empty cells released as 0', () => {
    const a = agg({ k: 5 });
    addSys(a, [
      [R(1), 110], [R(2), 112], // normal: 2 (small)
      [R(3), 125], [R(4), 125], [R(5), 125], [R(6), 125], [R(7), 125], // normal_high: 5
      [R(8), 145], [R(9), 145], [R(10), 145], [R(11), 145], [R(12), 145], // grade_1: 5
      [R(13), 185], [R(14), 186], [R(15), 187], // grade_3: 3 (small)
    ]);
    const sys = read(a.items(T0, W), T0, 5).get('systolic_bp')!;
    expect(sys.bands).toEqual({ normal: null, normal_high: 5, grade_1: 5, grade_2: 0, grade_3: null });
    expect(sys).toMatchObject({ measurements: 15, residents: 15, suppressed: 5 });
    expect(sys.measurements! - 10).toBe(2 + 3);
  });

  it('a cell with k residents is released even if it is the smallest one', () => {
    const a = agg({ k: 5 });
    addSys(a, [
      ...Array.from({ length: 5 }, (_, i) => [R(i), 125] as [string, number]),
      ...Array.from({ length: 9 }, (_, i) => [R(100 + i), 145] as [string, number]),
    ]);
    const sys = read(a.items(T0, W), T0, 5).get('systolic_bp')!;
    expect(sys.bands).toEqual(sysBands({ normal_high: 5, grade_1: 9 }));
    expect(sys.suppressed).toBe(0);
  });
});

describe('nothing but aggregates leaves', () => {
  // Six residents with distinct raw values per measure. The values are chosen so that no raw
  // value equals a released number: the counts (6, 2), k (2), windowSeconds (60), the means
  // and the window start. So finding a raw value as a JSON number token means it leaked.
  const RAW: Record<string, number[]> = {
    systolic_bp: [137, 143, 151, 162, 188, 197], // mean 163
    diastolic_bp: [83, 87, 91, 97, 104, 113], // mean 95.83
    pulse_rate: [72, 77, 81, 94, 103, 109], // mean 89.33
    body_weight: [52.3, 61.7, 68.4, 74.9, 83.1, 96.6], // mean 72.83
    blood_glucose: [4.4, 5.2, 5.7, 6.3, 7.4, 8.6], // mean 6.267
  };
  const MEANS: Record<string, number> = { systolic_bp: 163, diastolic_bp: 95.83, pulse_rate: 89.33, body_weight: 72.83, blood_glucose: 6.267 };

  function numbers(o: unknown, skip: string, out: number[] = []): number[] {
    if (typeof o === 'number') out.push(o);
    else if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) if (k !== skip) numbers(v, skip, out);
    return out;
  }

  for (const k of [2, 5, 7]) {
    it(`k = ${k}: no min/max/last keys, no raw value in the JSON, mean is the only non-count`, () => {
      const a = agg({ k });
      for (let i = 0; i < 6; i++) a.add(ev(R(i), Object.fromEntries(MEASURES.map((m) => [m, RAW[m]![i]!]))));
      const items = a.items(T0, W);
      const bodies = read(items, T0, k);
      for (const item of items) {
        const b = JSON.parse(item.body) as Body;
        for (const v of RAW[b.point]!) {
          const token = new RegExp(`(?<![\\d.])${String(v).replace('.', '\\.')}(?![\\d.])`);
          expect(item.body, `raw ${b.point} ${v}`).not.toMatch(token);
        }
        for (const n of numbers(b, 'mean')) expect(RAW[b.point], `${b.point}: ${n}`).not.toContain(n);
        if (k <= 6) expect(b.mean).toBe(MEANS[b.point]);
        else expect(b.mean).toBeNull();
      }
      if (k === 2) {
        // 137 normal_high, 143/151 grade_1, 162 grade_2, 188/197 grade_3: two 1-resident cells.
        expect(bodies.get('systolic_bp')!.bands).toEqual({ normal: 0, normal_high: null, grade_1: 2, grade_2: null, grade_3: 2 });
      }
    });
  }
});

describe('items per window', () => {
  it('one item per personal measure (5), also when no events happened', () => {
    const a = agg({ k: 5 });
    const b = read(a.items(T0, W), T0, 5);
    for (const m of MEASURES) expect(b.get(m)).toMatchObject(suppressedBody(m, 0));
    expect(b.get('body_weight')).not.toHaveProperty('bands');
    expect(a.events).toBe(0);
    // And again for the next window.
    read(a.items(T1, W), T1, 5);
  });

  it('units come from the profile', () => {
    const b = read(agg({ k: 5 }).items(T0, W), T0, 5);
    expect(MEASURES.map((m) => b.get(m)!.unit)).toEqual(['mmHg', 'mmHg', 'bpm', 'kg', 'mmol/L']);
  });

  it('devices without an events block contribute no items', () => {
    const others = [...PROFILES.values()].filter((p) => !p.events);
    expect(others.length).toBeGreaterThan(0);
    const a = agg({ k: 5 }, [DEVICE, ...others.map((p, i) => ({ id: `dev-${i}`, facility: 'canteen' as const, profile: p }))]);
    expect(a.items(T0, W).length).toBe(5);
  });

  it('two kiosks: five items each, events kept apart', () => {
    const a = agg({ k: 2 }, [DEVICE, { id: 'kiosk-2', facility: 'health', profile }]);
    a.add(ev(R(1), { systolic_bp: 125 }));
    a.add(ev(R(2), { systolic_bp: 127 }));
    a.add({ ...ev(R(3), { systolic_bp: 151 }), device: 'kiosk-2' });
    const items = a.items(T0, W).map((i) => JSON.parse(i.body) as Body);
    expect(items.length).toBe(10);
    const s1 = items.find((b) => b.device === 'kiosk-1' && b.point === 'systolic_bp')!;
    const s2 = items.find((b) => b.device === 'kiosk-2' && b.point === 'systolic_bp')!;
    expect(s1).toMatchObject({ measurements: 2, residents: 2, mean: 126 });
    expect(s2).toMatchObject({ measurements: null, suppressed: 1 });
  });
});

describe('windows', () => {
  it('events go to wall-clock windows by ts; items(ws) consumes only that window', () => {
    const a = agg({ k: 2 });
    // Added out of order on purpose.
    addSys(a, [[R(3), 150]], T1);
    addSys(a, [[R(1), 130]], T0);
    addSys(a, [[R(4), 152]], T1 + 30_000);
    addSys(a, [[R(2), 132]], T0 + 59_999);
    addSys(a, [[R(5), 154]], T2 - 1);
    expect(a.events).toBe(5);
    expect(read(a.items(T0, W), T0, 2).get('systolic_bp')).toMatchObject({ measurements: 2, residents: 2, mean: 131 });
    // Consumed: asking again gives an empty window.
    expect(read(a.items(T0, W), T0, 2).get('systolic_bp')).toMatchObject(suppressedBody('systolic_bp', 0));
    expect(read(a.items(T1, W), T1, 2).get('systolic_bp')).toMatchObject({ measurements: 3, residents: 3, mean: 152 });
  });

  it('a later window reported first drops an older unreported window, keeps a newer one', () => {
    const a = agg({ k: 2 });
    addSys(a, [[R(1), 130], [R(2), 130]], T0 + 10);
    addSys(a, [[R(3), 140], [R(4), 140]], T1 + 10);
    addSys(a, [[R(5), 160], [R(6), 160]], T2 + 10);
    expect(read(a.items(T1, W), T1, 2).get('systolic_bp')).toMatchObject({ measurements: 2, mean: 140 });
    // T0 was never reported and is now gone: never reported late.
    expect(read(a.items(T0, W), T0, 2).get('systolic_bp')).toMatchObject(suppressedBody('systolic_bp', 0));
    expect(read(a.items(T2, W), T2, 2).get('systolic_bp')).toMatchObject({ measurements: 2, mean: 160 });
  });
});

describe('events from Readings and scans', () => {
  const point = (id: string): Point => profile.points.find((p) => p.id === id)!;
  function reading(id: string, value: Reading['value'], ts: number, quality: Quality = 'good', device = 'kiosk-1'): Reading {
    const p = point(id);
    return { device, facility: 'health', point: id, ts, value, quality, unit: p.unit, privacy: p.privacy, kind: p.kind };
  }
  type V = number | null | [number | null, Quality];
  /** One full scan of the kiosk in address order, then its scan-done. */
  function scan(a: PersonalAggregator, ts: number, count: V, card: string | null, values: Partial<Record<string, V>>): void {
    const feed = (id: string, v: V | string | null) => {
      if (Array.isArray(v)) a.onReading(reading(id, v[0], ts, v[1]));
      else a.onReading(reading(id, v, ts));
    };
    feed('measurement_count', count);
    feed('resident_card_uid', card);
    for (const m of MEASURES) if (m in values) feed(m, values[m]!);
    a.onReading(reading('ready', true, ts));
    a.onScan({ device: 'kiosk-1', facility: 'health', ts });
  }
  const P1 = 'a1b2c3d4e5f60718';
  const P2 = '0f1e2d3c4b5a6978';

  it('baseline, unchanged counter, increases, bad-quality values left out', () => {
    const a = agg({ k: 2 });
    const full = { systolic_bp: 137, diastolic_bp: 84, pulse_rate: 70, body_weight: 66.6, blood_glucose: 5.5 };
    // The very first counter reading only sets the baseline: that session was before us.
    scan(a, T0 + 1000, 10, P1, full);
    expect(a.events).toBe(0);
    // Unchanged counter: no event, however often it is scanned.
    scan(a, T0 + 2000, 10, P1, full);
    scan(a, T0 + 3000, 10, P1, full);
    expect(a.events).toBe(0);
    // Counter 10 -> 11: one event. Pulse timed out, glucose not taken (0, out of range).
    scan(a, T0 + 4000, 11, P1, { systolic_bp: 141, diastolic_bp: 88, pulse_rate: [null, 'timeout'], body_weight: 70.5, blood_glucose: [0, 'out_of_range'] });
    expect(a.events).toBe(1);
    // Still 11 in the next scans: no new event.
    scan(a, T0 + 5000, 11, P1, { systolic_bp: 141, diastolic_bp: 88, pulse_rate: 70, body_weight: 70.5, blood_glucose: 5.5 });
    expect(a.events).toBe(1);
    // 11 -> 12: a second resident's session.
    scan(a, T0 + 6000, 12, P2, { systolic_bp: 149, diastolic_bp: 92, pulse_rate: 75, body_weight: 64, blood_glucose: [0, 'out_of_range'] });
    expect(a.events).toBe(2);
    const b = read(a.items(T0, W), T0, 2);
    // The baseline scan's 137 is not in: (141 + 149) / 2.
    expect(b.get('systolic_bp')).toMatchObject({ measurements: 2, residents: 2, mean: 145, bands: sysBands({ grade_1: 2 }), suppressed: 0 });
    // 88 normal_high and 92 grade_1: two 1-resident cells, both suppressed.
    expect(b.get('diastolic_bp')).toMatchObject({ measurements: 2, residents: 2, mean: 90, bands: { normal: 0, normal_high: null, grade_1: null, grade_2: 0, grade_3: 0 }, suppressed: 2 });
    // Pulse timed out in the first session (not taken from earlier scans): one measurement.
    expect(b.get('pulse_rate')).toMatchObject(suppressedBody('pulse_rate', 1));
    expect(b.get('body_weight')).toMatchObject({ measurements: 2, residents: 2, mean: 67.25, suppressed: 0 });
    // Glucose was out of range in both sessions: no measurement at all.
    expect(b.get('blood_glucose')).toMatchObject(suppressedBody('blood_glucose', 0));
  });

  it('an event is recorded at the scan, with exactly the values of that scan', () => {
    const a = agg({ k: 2 });
    scan(a, T0 + 1000, 500, P1, { systolic_bp: 120 });
    scan(a, T0 + 2000, 501, P1, { systolic_bp: 131 });
    scan(a, T0 + 3000, 502, P2, { systolic_bp: 133 });
    expect(a.events).toBe(2);
    expect(read(a.items(T0, W), T0, 2).get('systolic_bp')).toMatchObject({ measurements: 2, residents: 2, mean: 132, suppressed: 0 });
  });

  it('a bad-quality counter reading neither sets the baseline nor triggers an event', () => {
    const a = agg({ k: 2 });
    scan(a, T0 + 1000, [null, 'timeout'], P1, { systolic_bp: 130 });
    scan(a, T0 + 2000, 10, P1, { systolic_bp: 130 }); // baseline now
    expect(a.events).toBe(0);
    scan(a, T0 + 3000, [null, 'comm_error'], P1, { systolic_bp: 130 });
    scan(a, T0 + 4000, [7, 'exception'], P1, { systolic_bp: 130 });
    scan(a, T0 + 5000, 10, P1, { systolic_bp: 130 });
    expect(a.events).toBe(0);
    scan(a, T0 + 6000, 11, P1, { systolic_bp: 130 });
    expect(a.events).toBe(1);
  });

  it('a counter wrap 65535 -> 0 is one session', () => {
    const a = agg({ k: 2 });
    scan(a, T0 + 1000, 65535, P1, { systolic_bp: 130 });
    scan(a, T0 + 2000, 0, P2, { systolic_bp: 130 });
    expect(a.events).toBe(1);
  });

  it('a session without card (card reading null) is anonymous: a measurement, not a resident', () => {
    const a = agg({ k: 2 });
    scan(a, T0 + 1000, 1, null, { systolic_bp: 125 });
    scan(a, T0 + 2000, 2, P1, { systolic_bp: 125 });
    scan(a, T0 + 3000, 3, null, { systolic_bp: 125 });
    scan(a, T0 + 4000, 4, P2, { systolic_bp: 128 });
    expect(a.events).toBe(3);
    expect(read(a.items(T0, W), T0, 2).get('systolic_bp')).toMatchObject({ measurements: 3, residents: 2, mean: 126, suppressed: 0 });
  });

  it('readings and scans of other devices are ignored', () => {
    const a = agg({ k: 2 });
    a.onReading(reading('measurement_count', 1, T0, 'good', 'kiosk-9'));
    a.onReading(reading('measurement_count', 2, T0, 'good', 'kiosk-9'));
    a.onScan({ device: 'kiosk-9', facility: 'health', ts: T0 });
    scan(a, T0 + 1000, 10, P1, { systolic_bp: 130 });
    // A scan-done of another device does not turn kiosk-1's pending increase into an event...
    a.onReading(reading('measurement_count', 11, T0 + 2000));
    a.onScan({ device: 'kiosk-9', facility: 'health', ts: T0 + 2000 });
    expect(a.events).toBe(0);
    // ...its own scan-done does.
    a.onScan({ device: 'kiosk-1', facility: 'health', ts: T0 + 2000 });
    expect(a.events).toBe(1);
  });
});

describe('k-anonymous mode with epsilon: discrete Laplace noise, scale 1/epsilon', () => {
  it('suppression is decided on the true counts; suppressed cells stay null; released counts are noised', () => {
    const a = agg({ k: 5, epsilon: 0.5, rnd: seeded(7) });
    addSys(a, [[R(1), 125], [R(2), 125], [R(3), 125], [R(4), 125]]);
    // 4 < k residents: suppressed whatever the noise; only the suppressed count is released.
    const s4 = read(a.items(T0, W), T0, 5).get('systolic_bp')!;
    expect(s4).toMatchObject({ measurements: null, residents: null, mean: null, bands: null });
    expect(Number.isInteger(s4.suppressed) && s4.suppressed >= 0).toBe(true);
    const c = agg({ k: 5, epsilon: 0.5, rnd: seeded(8) });
    addSys(c, [[R(1), 110], [R(2), 110], ...Array.from({ length: 6 }, (_, i) => [R(10 + i), 125] as [string, number]), ...Array.from({ length: 5 }, (_, i) => [R(20 + i), 145] as [string, number])]);
    const s = read(c.items(T0, W), T0, 5).get('systolic_bp')!;
    // normal (2) small, grade_1 (5) its complement: null, whatever the noise.
    expect(s.bands!.normal).toBeNull();
    expect(s.bands!.grade_1).toBeNull();
    // k-anonymous mode noises counts only: the mean is the exact mean of the 13 (130.38).
    expect(s.mean).toBe(130.4);
    expect(s.epsilon).toBe(0.5);
    for (const v of [s.measurements, s.residents, s.bands!.normal_high, s.bands!.grade_2, s.bands!.grade_3, s.suppressed]) expect(Number.isInteger(v) && v! >= 0).toBe(true);
  });

  it('production noise comes from node:crypto (crypto.randomInt), never Math.random', () => {
    const spy = vi.spyOn(crypto, 'randomInt');
    const mr = vi.spyOn(Math, 'random');
    try {
      const a = agg({ k: 5, epsilon: 0.5 });
      addSys(a, [[R(1), 125], [R(2), 125], [R(3), 125], [R(4), 125], [R(5), 125]]);
      read(a.items(T0, W), T0, 5);
      expect(spy).toHaveBeenCalled();
      expect(mr).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
      mr.mockRestore();
    }
  });

  it('released counts are non-negative integers', () => {
    const a = agg({ k: 2, epsilon: 0.3 });
    const counts: number[] = [];
    for (let round = 0; round < 100; round++) {
      const ws = T0 + round * WMS;
      addSys(a, [[R(1), 125], [R(2), 125]], ws + 1);
      const s = read(a.items(ws, W), ws, 2).get('systolic_bp')!;
      expect(s.epsilon).toBe(0.3);
      counts.push(s.measurements!, s.residents!, ...Object.values(s.bands!).map((v) => v!));
    }
    // 700 counts, most of them true 0 or 2 with scale 3.3 noise: many would be negative unclamped.
    expect(counts.length).toBe(700);
    expect(counts.filter((n) => !Number.isInteger(n) || n < 0)).toEqual([]);
    expect(counts.filter((n) => n === 0).length).toBeGreaterThan(100);
  });

  it('20,000 draws: mean noise ~ 0, mean |noise| ~ 1/epsilon (within 5%)', () => {
    // eps 0.1 (scale 10) and true counts of 300: clamping at 0 needs noise < -300 (probability
    // e^-30 / 2); the discrete law's E|noise| = 2a / (1 - a^2), a = e^-0.1, is 9.98 (0.2% below 10). The standard error of the mean |noise|
    // is 10 / sqrt(20000) = 0.07 (0.7%), of the mean noise sqrt(2) * 10 / sqrt(20000) = 0.1,
    // so the 5% bounds (0.5) are about 5 standard errors wide.
    const eps = 0.1;
    const N = 300;
    const a = agg({ k: 5, epsilon: eps });
    const values = { systolic_bp: 125, diastolic_bp: 85, pulse_rate: 70, body_weight: 65, blood_glucose: 5 };
    const cell: Record<string, string> = { systolic_bp: 'normal_high', diastolic_bp: 'normal_high', pulse_rate: 'normal', blood_glucose: 'normal' };
    const events = Array.from({ length: N }, (_, i) => ev(R(i), values, T0 + 1000));
    const noise: number[] = [];
    const epsilons = new Set<number | undefined>();
    while (noise.length < 20_000) {
      for (const e of events) a.add(e);
      for (const item of a.items(T0, W)) {
        const b = JSON.parse(item.body) as Body;
        epsilons.add(b.epsilon);
        noise.push(b.measurements! - N, b.residents! - N);
        if (cell[b.point]) noise.push(b.bands![cell[b.point]!]! - N);
      }
    }
    expect([...epsilons]).toEqual([eps]);
    const n = noise.length;
    const mean = noise.reduce((s, x) => s + x, 0) / n;
    const meanAbs = noise.reduce((s, x) => s + Math.abs(x), 0) / n;
    expect(n).toBeGreaterThanOrEqual(20_000);
    expect(noise.every((x) => Number.isInteger(x) && x > -N)).toBe(true);
    expect(Math.abs(mean)).toBeLessThan(0.05 / eps);
    expect(Math.abs(meanAbs * eps - 1)).toBeLessThan(0.05);
    // Both signs occur about equally often.
    const pos = noise.filter((x) => x > 0).length;
    const neg = noise.filter((x) => x < 0).length;
    expect(Math.abs(pos - neg) / n).toBeLessThan(0.03);
  });
});

describe('PersonalAggregator with a window longer than the public one', () => {
  it('reports an hour window once, when the public window that ends it closes', async () => {
    const { loadProfiles } = await import('../../src/config/profiles.js');
    const { DRIVERS_DIR } = await import('../../src/config/paths.js');
    const { PersonalAggregator } = await import('../../src/privacy/personal-aggregator.js');
    const profile = loadProfiles(DRIVERS_DIR).get('fc-health-kiosk-v1')!;
    const a = new PersonalAggregator([{ id: 'kiosk-1', facility: 'health', profile }], { k: 2 }, 3600_000);
    const hour = 1_795_716_000_000; // a multiple of 3,600,000
    for (let i = 0; i < 6; i++) a.add({ device: 'kiosk-1', facility: 'health', ts: hour + i * 600_000, subject: `r${i}`, values: new Map([['systolic_bp', 130]]) });
    // The public 60 s windows inside the hour report nothing personal.
    expect(a.items(hour, 60)).toEqual([]);
    expect(a.items(hour + 3540_000 - 60_000, 60)).toEqual([]);
    const items = a.items(hour + 3540_000, 60).map((i) => JSON.parse(i.body) as Record<string, unknown>);
    expect(items).toHaveLength(5);
    expect(items.find((i) => i.point === 'systolic_bp')).toMatchObject({ windowStart: hour, windowSeconds: 3600, measurements: 6, residents: 6, mean: 130 });
  });
});

describe('dp mode: noisy threshold, bounded contributions, the per-resident ledger', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  function ledgerFile(): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-dp-'));
    dirs.push(d);
    return path.join(d, 'privacy-ledger.json');
  }
  const ALL = { systolic_bp: 125, diastolic_bp: 82, pulse_rate: 70, body_weight: 65.2, blood_glucose: 5.6 };
  function dpAgg(file: string, epsilon: number, annual: number, seed: number): { a: PersonalAggregator; ledger: PrivacyLedger } {
    const ledger = new PrivacyLedger(file, annual).load();
    return { a: agg({ k: 5, mode: 'dp', epsilon, delta: 1e-3, ledger, rnd: seeded(seed) }), ledger };
  }

  it('released items carry epsilon, delta and the threshold, suppressed 0, and validate against the contract', () => {
    const { a } = dpAgg(ledgerFile(), 10, 1000, 1);
    for (let i = 0; i < 40; i++) a.add(ev(R(i), ALL));
    const items = read(a.items(T0, W), T0, 5);
    for (const [point, b] of items) {
      expect(b, point).toMatchObject({ epsilon: 10, delta: 1e-3, suppressed: 0 });
      expect((b as unknown as { threshold: number }).threshold).toBeGreaterThan(1);
      expect(b.measurements, point).toBe(b.residents);
      expect(Math.abs(b.residents! - 40), point).toBeLessThan(10);
    }
    expect(Math.abs(items.get('body_weight')!.mean! - 65.2)).toBeLessThan(5);
  });

  it('a window below the threshold releases nothing, and its residents are still charged (the decision used their data)', () => {
    const f = ledgerFile();
    const { a, ledger } = dpAgg(f, 1, 100, 2);
    a.add(ev(R(1), ALL));
    a.add(ev(R(2), ALL));
    for (const b of read(a.items(T0, W), T0, 5).values()) expect(b).toMatchObject({ measurements: null, residents: null, mean: null, suppressed: 0 });
    // Five items (one per measure), epsilon 1 each.
    expect(ledger.spent(R(1))).toBe(5);
    // Saved before the items were handed over.
    expect(new PrivacyLedger(f, 100).load().spent(R(2))).toBe(5);
  });

  it('one session per resident and device; anonymous sessions are left out and charge nobody', () => {
    const { a, ledger } = dpAgg(ledgerFile(), 1, 100, 3);
    a.add(ev(R(1), ALL));
    a.add(ev(R(1), ALL));
    a.add(ev(R(1), { systolic_bp: 200 }));
    a.add(ev(null, ALL));
    a.items(T0, W);
    expect(ledger.spent(R(1))).toBe(5);
    expect(a.excludedTotal).toBe(0);
  });

  it('past the annual cap a resident is left out and counted as excluded, also after a restart', () => {
    const f = ledgerFile();
    // Each window costs a kiosk resident 5 x 1 = 5; the cap 10 allows two windows.
    let { a } = dpAgg(f, 1, 10, 4);
    for (const ws of [T0, T1]) {
      a.add(ev(R(1), ALL, ws + 1000));
      a.items(ws, W);
    }
    expect(a.excludedTotal).toBe(0);
    // A restart: the ledger comes back from its file.
    ({ a } = dpAgg(f, 1, 10, 5));
    a.add(ev(R(1), ALL, T2 + 1000));
    a.add(ev(R(1), { systolic_bp: 130 }, T2 + 2000));
    a.items(T2, W);
    expect(a.excludedTotal).toBe(2);
    const s = new PrivacyLedger(f, 10).load().summary(1);
    expect(s).toMatchObject({ residents: 1, excludedResidents: 1, excludedSessions: 2 });
    expect(s.spent.at(-1)).toEqual({ from: 1, to: 1, residents: 1 });
  });
});

describe('PersonalAggregator: facility id and house code', () => {
  it('every personal item carries the device\'s facility id where it is not the type id, never the house code', () => {
    const a = agg({ k: 2 }, [{ ...DEVICE, facilityId: 'station-east', houseCode: 'H-3' } as typeof DEVICE]);
    addSys(a, [[R(1), 120], [R(2), 130], [R(3), 140]]);
    const items = a.items(T0, 60).map((i) => JSON.parse(i.body) as Record<string, unknown>);
    expect(items.length).toBeGreaterThan(0);
    for (const it of items) {
      expect(it).toMatchObject({ facility: 'health', facilityId: 'station-east' });
      expect(it).not.toHaveProperty('houseCode');
    }
    const unlisted = agg({ k: 2 }, [{ ...DEVICE, facilityId: 'health' } as typeof DEVICE]);
    addSys(unlisted, [[R(1), 120], [R(2), 130]]);
    for (const it of unlisted.items(T0, 60).map((i) => JSON.parse(i.body) as Record<string, unknown>)) expect(it).not.toHaveProperty('facilityId');
  });
});
