// The operation evaluation on a fixture of known items (test/fixtures/report/site.ts), stored
// through each real store (a PostgreSQL 15 cluster started here, a SQLite file on disk) and
// read back by the report: availability with an outage, meals across a counter wrap, cold
// chain, alarms and time to clear, a suppressed personal cell that stays suppressed, and seq
// gaps against the gateway's shed count. The expected figures are worked out by hand below.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster } from '../../../bench/peers/postgres.js';
import { PostgresStore } from '../../../src/platform/store-postgres.js';
import { SqliteStore } from '../../../src/platform/store-sqlite.js';
import type { ConsumerStore } from '../../../src/platform/store.js';
import { evaluate, type FacilityPeriod, type OperationReport } from '../../../src/platform/report/evaluate.js';
import { DEFAULT_RULES } from '../../../src/platform/report/rules.js';
import { renderCsv } from '../../../src/platform/report/render-csv.js';
import { renderHtml } from '../../../src/platform/report/render-html.js';
import { CC, CC2, DAY1, DAY3, fixture } from '../../fixtures/report/site.js';
import { tmpDir } from '../../helpers/peers.js';
import { AggItem } from '../../../src/uplink/contract.js';
import type { AnyItem } from '../../../src/platform/store.js';
import { loadFacilityTypes } from '../../../src/config/facility-types.js';
import { DRIVERS_DIR } from '../../../src/config/paths.js';

let cluster: PgCluster;
beforeAll(async () => {
  cluster = await PgCluster.start();
}, 60_000);
afterAll(async () => {
  await cluster?.destroy();
});

async function load(s: ConsumerStore): Promise<ConsumerStore> {
  await s.migrate();
  const { messages, statuses } = fixture();
  for (const m of messages) await s.storeItems(m.gatewayId, m.communityCode, m.kind, m.items, DAY1);
  for (const st of statuses) await s.storeStatus(st, st.ts);
  return s;
}

const stores: [string, () => Promise<ConsumerStore>][] = [
  [
    'PostgreSQL',
    async () => load(new PostgresStore(await cluster.createDatabase())),
  ],
  ['SQLite', async () => load(new SqliteStore(path.join(tmpDir('cgw-report-'), 'p.db')))],
];

const opts = { from: DAY1, to: DAY3, period: 'day' as const, utcOffsetMin: 480, rules: DEFAULT_RULES, now: () => DAY3 };
const fac = (r: OperationReport, community: string, facility: string): FacilityPeriod[] => r.communities.find((c) => c.communityCode === community)!.facilities.find((f) => f.facility === facility)!.periods;

describe.each(stores)('operation evaluation: %s', (_name, open) => {
  it('figures of the fixture, worked out by hand', async () => {
    const store = await open();
    try {
      const r = await evaluate(store, opts);
      expect(r.communities.map((c) => c.communityCode)).toEqual([CC, CC2]);
      const canteen = fac(r, CC, 'canteen');
      expect(canteen.map((p) => p.period)).toEqual(['2026-11-02', '2026-11-03']);
      const [d1, d2] = canteen as [FacilityPeriod, FacilityPeriod];

      // Availability, time-weighted over observed time: hours 0-9, 13-19, 21-23 at 1 (20 h),
      // hour 12 at 0.5 for 1800 s, hour 20 at 0 (up, devices offline); hours 10-11 the gateway
      // was off and count for nothing. (20 x 3600 + 900) / (21 x 3600 + 1800) = 72900 / 77400.
      expect(d1.availability).toEqual({ value: 0.9419, observedSeconds: 77400, observedShare: 0.8958 });
      expect(d2.availability).toEqual({ value: 1, observedSeconds: 10800, observedShare: 0.125 });

      // Meals: the counter's increases (it wraps past 2^32 on day 1): 10 x 10 + 5 + 2 x 10 + 9
      // + 4 x 10 + 3 x 10 = 204; hour 20 (device silent) is unobserved, not 0.
      expect(d1.meals).toEqual({ value: 204, observedWindows: 21, unobservedWindows: 1 });
      expect(d2.meals).toBeNull();

      // Cold chain: 21 observed hours, hour 5 reached 9.1 °C: 20 / 21.
      expect(d1.coldChain).toEqual([{ device: 'fridge-1', point: 'fridge_1_temperature', rule: 'refrigeration (0-8 °C)', min: 0, max: 8, observedSeconds: 75600, inRangeSeconds: 72000, value: 0.9524 }]);

      // Alarms raised on day 1: door (60 s), fridge at 05:10 (1800 s), gas at 22:00 (open),
      // fridge at 23:30 cleared 00:15 next day (2700 s). The clear on day 2 is no new alarm.
      expect(d1.alarms).toEqual({ raised: 4, critical: 1, warning: 3, cleared: 3, clearSecondsMedian: 1800, clearSecondsMax: 2700, open: 1 });
      expect(d2.alarms).toMatchObject({ raised: 0, cleared: 0, open: 0 });

      // Health station: two released windows (7 + 9 measurements, 6 + 8 residents) and one
      // suppressed on day 1; a band cell null in a released window stays out of the sum.
      const [h1, h2] = fac(r, CC, 'health') as [FacilityPeriod, FacilityPeriod];
      expect(h1.personal).toHaveLength(1);
      const p1 = h1.personal[0]!;
      expect(p1.measurements).toEqual({ value: 16, releasedWindows: 2, suppressedWindows: 1 });
      expect(p1.residentWindows).toEqual({ value: 14, releasedWindows: 2, suppressedWindows: 1 });
      expect(p1.bands!.normal).toEqual({ value: 0, releasedWindows: 1, suppressedWindows: 2 });
      expect(p1.bands!.normal_high).toEqual({ value: 11, releasedWindows: 2, suppressedWindows: 1 });
      expect(p1.bands!.grade_1).toEqual({ value: 3, releasedWindows: 1, suppressedWindows: 2 });
      // Day 2: every window below k. The figure stays suppressed (null), never 0, never estimated.
      expect(h2.personal[0]!.measurements).toEqual({ value: null, releasedWindows: 0, suppressedWindows: 3 });
      expect(h2.personal[0]!.residentWindows.value).toBeNull();
      expect(h2.personal[0]!.bands).toBeNull();

      // Completeness: seqs jump after hour 16 by 3 (shed: status.shed.rows 10 -> 13), and
      // 1 -> 3 at the start, where seq 2 is held (its own time is before the range).
      const comp = r.communities[0]!.completeness;
      expect(comp).toHaveLength(1);
      expect(comp[0]).toMatchObject({ gatewayId: 'gw-a', firstSeq: 1, missing: 3, shedInRange: { rows: 3, dropped: 0 }, shed: { rows: 13, bytes: 2600, dropped: 0 } });
      expect(comp[0]!.gaps).toHaveLength(1);
      const [a, b] = comp[0]!.gaps[0]!;
      expect(b - a).toBe(2);

      // Another community, and --community.
      expect(fac(r, CC2, 'canteen')[0]!.availability.value).toBe(0.25);
      const only = await evaluate(store, { ...opts, community: CC });
      expect(only.communities.map((c) => c.communityCode)).toEqual([CC]);

      // A week: both days in the ISO week of Monday 2026-11-02.
      const week = await evaluate(store, { ...opts, period: 'week' });
      const w = fac(week, CC, 'canteen');
      expect(w.map((p) => p.period)).toEqual(['2026-W45 (2026-11-02)']);
      expect(w[0]!.meals!.value).toBe(204);
      expect(w[0]!.availability.value).toBe(Number(((72900 + 10800) / (77400 + 10800)).toFixed(4)));
    } finally {
      await store.close();
    }
  }, 60_000);

  it('csv and html keep a suppressed figure suppressed and escape what the database holds', async () => {
    const store = await open();
    try {
      const r = await evaluate(store, opts);
      const csv = renderCsv(r).split('\r\n');
      expect(csv[0]).toBe('community,facility,period,period_start,period_end,indicator,device,point,value,detail');
      const row = csv.find((l) => l.startsWith(`${CC},health,2026-11-03,`) && l.includes(',personal_measurements,'))!;
      expect(row.split(',')[8]).toBe('suppressed');
      expect(csv.find((l) => l.startsWith(`${CC},canteen,2026-11-02,`) && l.includes(',meals,'))!.split(',')[8]).toBe('204');
      // Unobserved is empty, never 0: the health station has no meals row at all, day 2's canteen no cold chain row.
      expect(csv.some((l) => l.startsWith(`${CC},canteen,2026-11-03,`) && l.includes('cold_chain'))).toBe(false);
      const html = renderHtml(r);
      expect(html.startsWith('<!doctype html>')).toBe(true);
      expect(html).toContain('<svg');
      expect(html).toContain('<span class="sup">suppressed</span>');
      expect(html).not.toMatch(/\b(src|href)=/);
      expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
      // Text from the database is escaped.
      const tricky = renderHtml({ ...r, communities: [{ ...r.communities[0]!, gateways: ['<script>alert(1)</script>'] }] });
      expect(tricky).not.toContain('<script>');
      expect(tricky).toContain('&lt;script&gt;');
    } finally {
      await store.close();
    }
  }, 60_000);
});

// The facility types decide each type's figures (drivers/facility-types.yaml), and the two
// figures the new types read: indoor air in range (window means against GB/T 18883-2022) and
// UV lamp run hours. Two canteens of one gateway: one observed share, not two.
describe('operation evaluation: facility types and their indicators (SQLite file)', () => {
  const H = 3_600_000;
  it('childcare gets air quality and UV hours, a canteen not; two facilities of a type share one observed share', async () => {
    const store = new SqliteStore(path.join(tmpDir('cgw-report-types-'), 'p.db'));
    await store.migrate();
    try {
      let seq = 0;
      const items: Record<string, unknown>[] = [];
      const point = (ws: number, facility: string, facilityId: string, device: string, pt: string, unit: string, kind: 'gauge' | 'counter', mean: number | null, increase?: number | null) =>
        items.push({ seq: ++seq, type: 'point', windowStart: ws, windowSeconds: 3600, facility, facilityId, device, point: pt, unit, kind, count: mean === null ? 0 : 60, bad: 0, mean, min: mean, max: mean === null ? null : mean + 400, sum: null, last: mean, ...(kind === 'counter' ? { increase: increase ?? null } : {}) });
      for (let h = 0; h < 4; h++) {
        const ws = DAY1 + h * H;
        // CO2 window means 800, 900, 1100 (over the limit), unread: 2 of 3 observed hours in range
        // (max is 400 above the mean: a span rule would have failed every hour).
        point(ws, 'childcare', 'nursery', 'air-1', 'co2', 'ppm', 'gauge', [800, 900, 1100, null][h]!);
        point(ws, 'childcare', 'nursery', 'air-1', 'pm2_5', 'ug/m3', 'gauge', 12);
        point(ws, 'childcare', 'nursery', 'uv-1', 'run_hours', 'h', 'counter', 100 + h, [0.5, 1, null, 0.25][h]!);
        // A canteen's meter also has run hours and its kitchen a CO2 sensor: not canteen indicators.
        point(ws, 'canteen', 'canteen-north', 'meter-1', 'run_hours', 'h', 'counter', 5, 1);
        point(ws, 'canteen', 'canteen-north', 'kitchen-air', 'co2', 'ppm', 'gauge', 700);
        for (const id of ['canteen-north', 'canteen-south']) items.push({ seq: ++seq, type: 'facility', windowStart: ws, windowSeconds: 3600, facility: 'canteen', facilityId: id, houseCode: `H-${id}`, devices: 2, availability: id === 'canteen-north' ? 1 : 0.5, observedSeconds: 3600 });
      }
      const parsed = items.map((i) => AggItem.parse(i) as unknown as AnyItem);
      await store.storeItems('gw-t', CC, 'agg', parsed, DAY1);
      const r = await evaluate(store, { ...opts, to: DAY1 + 24 * H, types: loadFacilityTypes(DRIVERS_DIR, null) });
      const c = r.communities[0]!;
      const child = c.facilities.find((f) => f.facility === 'childcare')!;
      expect(child.type).toMatchObject({ code: '03', name: { zh: '托育服务设施' } });
      const day = child.periods[0]!;
      const co2 = day.airQuality.find((x) => x.point === 'co2')!;
      expect(co2).toMatchObject({ observedSeconds: 3 * 3600, inRangeSeconds: 2 * 3600, value: 0.6667, max: 1000 });
      expect(day.airQuality.find((x) => x.point === 'pm2_5')!.value).toBe(1);
      expect(day.disinfectionHours).toEqual({ value: 1.75, observedWindows: 3, unobservedWindows: 1 });
      expect(day.meals).toBeNull();
      const canteen = c.facilities.find((f) => f.facility === 'canteen')!.periods[0]!;
      expect(canteen.airQuality).toEqual([]);
      expect(canteen.disinfectionHours).toBeNull();
      // Two canteens, 4 h each observed of a 24 h day: (1 + 0.5) / 2 availability, 8 h / 48 h observed.
      expect(canteen.availability).toEqual({ value: 0.75, observedSeconds: 8 * 3600, observedShare: Number((8 / 48).toFixed(4)) });
      // Without types every figure is computed (a site's own type): the canteen's CO2 shows.
      const all = await evaluate(store, { ...opts, to: DAY1 + 24 * H });
      expect(all.communities[0]!.facilities.find((f) => f.facility === 'canteen')!.periods[0]!.airQuality[0]!.value).toBe(1);
      const csv = renderCsv(r);
      expect(csv).toContain(`${CC},childcare,2026-11-02,`);
      expect(csv).toMatch(/,air_quality_in_range,air-1,co2,0\.6667,/);
      expect(csv).toMatch(/,disinfection_hours,,,1\.75,/);
      expect(renderHtml(r)).toContain('托育服务设施 · Childcare facility');
    } finally {
      await store.close();
    }
  });
});
