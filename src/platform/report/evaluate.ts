// The operation evaluation (社区场景运营动态评价) per community, facility and period, from the
// items the gateways sent: availability, service volume (meals, health-station measurements),
// cold-chain compliance, alarms and data completeness. It reads the store as a stream (pages
// of items in (gatewayId, seq) order) and keeps only per-period sums, so a province-wide
// report never holds the items. Each formula is in docs/EVALUATION.md.
import type { ConsumerStore, StoredItem, StoredStatus } from '../store.js';
import { periodIndex, periods, type Period, type PeriodKind } from './periods.js';
import { airRule, coldRule, type ColdRule, type ReportRules } from './rules.js';
import type { FacilityTypeSet, Indicator } from '../../config/facility-types.js';

export interface ReportOptions {
  from: number;
  to: number;
  community?: string;
  period: PeriodKind;
  /** Minutes east of UTC (China time: 480). */
  utcOffsetMin: number;
  rules: ReportRules;
  /** Facility types (drivers/facility-types.yaml): each type's figures are only those of its
   * indicators. A type not in the set (a site's own) gets every figure. */
  types?: FacilityTypeSet;
  now?: () => number;
}

export interface Availability {
  /** Σ(availability × observedSeconds) / Σ observedSeconds over facility items; null when unobserved. */
  value: number | null;
  observedSeconds: number;
  /** Σ observedSeconds / (period length × facilities of the type reporting in the period, each
   * (gatewayId, facilityId) once). */
  observedShare: number | null;
}

export interface Meals {
  /** Σ increase of the meal counters over observed windows; null when none was observed. */
  value: number | null;
  observedWindows: number;
  /** Windows whose counter was not read (no increase): left out, never counted as 0 meals. */
  unobservedWindows: number;
}

export interface Cell {
  /** Σ of the released figures; null when every window withheld it (suppressed). */
  value: number | null;
  releasedWindows: number;
  suppressedWindows: number;
}

export interface PersonalFigure {
  device: string;
  point: string;
  unit: string;
  measurements: Cell;
  /** Σ of released distinct-resident counts: resident-windows (the same resident in two
   * windows counts twice; distinct residents over a period cannot be derived honestly). */
  residentWindows: Cell;
  bands: Record<string, Cell> | null;
  /** Some windows carried noise (epsilon): the sums are sums of noisy counts. */
  noisy: boolean;
}

export interface ColdChainFigure {
  device: string;
  point: string;
  rule: string;
  min: number | null;
  max: number | null;
  observedSeconds: number;
  inRangeSeconds: number;
  /** inRangeSeconds / observedSeconds; null when unobserved. */
  value: number | null;
}

export interface Alarms {
  raised: number;
  critical: number;
  warning: number;
  /** Of those raised, cleared before the report's end. */
  cleared: number;
  /** Time from raised to cleared, seconds. */
  clearSecondsMedian: number | null;
  clearSecondsMax: number | null;
  /** Raised and not cleared before the report's end. */
  open: number;
}

export interface FacilityPeriod {
  period: string;
  start: number;
  end: number;
  availability: Availability;
  meals: Meals | null;
  personal: PersonalFigure[];
  coldChain: ColdChainFigure[];
  /** Share of observed window-time whose mean met the rule (CO2, PM2.5). */
  airQuality: ColdChainFigure[];
  /** Σ increase of UV lamp run-hour counters (same shape as meals: unobserved windows apart). */
  disinfectionHours: Meals | null;
  alarms: Alarms;
}

export interface GatewayCompleteness {
  gatewayId: string;
  firstSeq: number | null;
  lastSeq: number | null;
  received: number;
  /** Seqs between first and last that the platform does not hold (shed, lost, not yet sent). */
  missing: number;
  /** Missing seq ranges, inclusive (the first 100). */
  gaps: [number, number][];
  /** status.shed of the gateway's last status in the range (cumulative on the gateway). */
  shed: { rows: number; bytes: number; dropped: number } | null;
  /** Rows shed during the range: last status in it minus the last before it; null when unknown. */
  shedInRange: { rows: number; dropped: number } | null;
  lastStatusTs: number | null;
}

export interface CommunityReport {
  communityCode: string;
  gateways: string[];
  facilities: {
    facility: string;
    /** The type's code, names and indicators; null for a type the report does not know. */
    type: { code: string; name: { zh: string; en: string }; indicators: Indicator[] } | null;
    periods: FacilityPeriod[];
  }[];
  completeness: GatewayCompleteness[];
}

export interface OperationReport {
  from: number;
  to: number;
  period: PeriodKind;
  utcOffsetMin: number;
  generatedAt: number;
  rules: ReportRules;
  communities: CommunityReport[];
}

// ---- accumulators (one per community x facility x period)

interface PersonalAcc {
  unit: string;
  m: Cell;
  r: Cell;
  bands: Map<string, Cell> | null;
  /** Windows whose whole histogram was withheld. */
  withheld: number;
  noisy: boolean;
}

interface PeriodAcc {
  availWeighted: number;
  observed: number;
  gateways: Set<string>;
  meals: Meals | null;
  personal: Map<string, PersonalAcc>;
  cold: Map<string, ColdChainFigure>;
  air: Map<string, ColdChainFigure>;
  runHours: Meals | null;
  alarms: { raised: number; critical: number; warning: number; cleared: number; durations: number[]; open: number };
}

interface AlarmEvent {
  ts: number;
  state: 'raised' | 'cleared';
  severity: 'warning' | 'critical';
  facility: string;
}

type StatusShed = { rows: number; bytes: number; dropped: number };

const cell = (): Cell => ({ value: null, releasedWindows: 0, suppressedWindows: 0 });
function addCell(c: Cell, v: number | null | undefined): void {
  if (v === null || v === undefined) c.suppressedWindows++;
  else {
    c.value = (c.value ?? 0) + v;
    c.releasedWindows++;
  }
}

class Community {
  readonly gateways = new Set<string>();
  readonly facilities = new Map<string, PeriodAcc[]>();
  readonly alarmEvents = new Map<string, AlarmEvent[]>();
  readonly completeness = new Map<string, GatewayCompleteness>();
  /** Per gateway, status.shed of its last status before the range: the counters' baseline. */
  readonly shedBase = new Map<string, StatusShed | null>();
  constructor(readonly code: string) {}
}

export async function evaluate(store: ConsumerStore, o: ReportOptions): Promise<OperationReport> {
  const ps = periods(o.from, o.to, o.period, o.utcOffsetMin);
  const communities = new Map<string, Community>();
  const community = (code: string) => {
    let c = communities.get(code);
    if (!c) communities.set(code, (c = new Community(code)));
    return c;
  };
  const acc = (c: Community, facility: string, i: number): PeriodAcc => {
    let list = c.facilities.get(facility);
    if (!list) {
      list = ps.map(() => ({ availWeighted: 0, observed: 0, gateways: new Set<string>(), meals: null, personal: new Map(), cold: new Map(), air: new Map(), runHours: null, alarms: { raised: 0, critical: 0, warning: 0, cleared: 0, durations: [], open: 0 } }));
      c.facilities.set(facility, list);
    }
    return list[i]!;
  };

  let gw: GatewayCompleteness | null = null;
  let prevSeq = 0;
  for await (const it of store.scanItems({ from: o.from, to: o.to, ...(o.community ? { community: o.community } : {}) })) {
    const c = community(it.communityCode);
    c.gateways.add(it.gatewayId);
    if (!gw || gw.gatewayId !== it.gatewayId) {
      gw = c.completeness.get(it.gatewayId) ?? { gatewayId: it.gatewayId, firstSeq: null, lastSeq: null, received: 0, missing: 0, gaps: [], shed: null, shedInRange: null, lastStatusTs: null };
      c.completeness.set(it.gatewayId, gw);
      prevSeq = gw.lastSeq ?? 0;
    }
    // Items come in seq order per gateway: a jump is a gap (checked against the store below).
    if (gw.firstSeq === null) gw.firstSeq = it.seq;
    else if (it.seq > prevSeq + 1) gw.gaps.push([prevSeq + 1, it.seq - 1]);
    gw.lastSeq = it.seq;
    gw.received++;
    prevSeq = it.seq;
    const i = periodIndex(ps, it.itemTs);
    if (i < 0) continue;
    add(c, it, i, acc, o);
  }

  for await (const s of store.scanStatuses({ from: o.from, to: o.to, ...(o.community ? { community: o.community } : {}) })) statusSeen(community(s.communityCode), s, o.from);

  const out: CommunityReport[] = [];
  for (const c of [...communities.values()].sort((a, b) => a.code.localeCompare(b.code))) {
    pairAlarms(c, ps, o.to, acc);
    const completeness: GatewayCompleteness[] = [];
    for (const g of [...c.completeness.values()].sort((a, b) => a.gatewayId.localeCompare(b.gatewayId))) {
      completeness.push(await confirmGaps(store, g));
    }
    out.push({
      communityCode: c.code,
      gateways: [...c.gateways].sort(),
      facilities: [...c.facilities.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([facility, list]) => {
        const t = o.types?.get(facility);
        const keep = t ? new Set<Indicator>(t.indicators) : null;
        return { facility, type: t ? { code: t.code, name: t.name, indicators: t.indicators } : null, periods: list.map((a, i) => finish(a, ps[i]!, keep)) };
      }),
      completeness,
    });
  }
  return { from: o.from, to: o.to, period: o.period, utcOffsetMin: o.utcOffsetMin, generatedAt: (o.now ?? Date.now)(), rules: o.rules, communities: out };
}

function add(c: Community, it: StoredItem, i: number, acc: (c: Community, f: string, i: number) => PeriodAcc, o: ReportOptions): void {
  const b = it.body as unknown as Record<string, unknown>;
  if (it.kind === 'alarm') {
    const key = `${it.gatewayId}\u0000${String(b.alarm)}\u0000${String(b.device)}`;
    const list = c.alarmEvents.get(key) ?? [];
    list.push({ ts: it.itemTs, state: b.state as AlarmEvent['state'], severity: b.severity as AlarmEvent['severity'], facility: String(b.facility) });
    c.alarmEvents.set(key, list);
    acc(c, String(b.facility), i); // the facility appears even with alarms only
    return;
  }
  if (it.kind !== 'agg') return;
  const a = acc(c, String(b.facility), i);
  const ws = Number(b.windowSeconds);
  if (b.type === 'facility') {
    const obs = Number(b.observedSeconds);
    // One facility item per facility and window: a gateway with two canteens observes twice.
    a.gateways.add(`${it.gatewayId}\u0000${String(b.facilityId ?? b.facility)}`);
    if (b.availability !== null && obs > 0) {
      a.availWeighted += Number(b.availability) * obs;
      a.observed += obs;
    }
    return;
  }
  if (b.type === 'personal') {
    const key = `${String(b.device)}\u0000${String(b.point)}`;
    let p = a.personal.get(key);
    if (!p) a.personal.set(key, (p = { unit: String(b.unit), m: cell(), r: cell(), bands: null, withheld: 0, noisy: false }));
    addCell(p.m, b.measurements as number | null);
    addCell(p.r, b.residents as number | null);
    if (b.epsilon !== undefined) p.noisy = true;
    const bands = b.bands as Record<string, number | null> | null | undefined;
    if (bands) {
      p.bands ??= new Map();
      for (const [id, v] of Object.entries(bands)) {
        if (!p.bands.has(id)) p.bands.set(id, cell());
        addCell(p.bands.get(id)!, v);
      }
    } else if (bands === null) {
      // A whole histogram withheld (the window below k): suppressed in every band (finish()).
      p.withheld++;
    }
    return;
  }
  // type: point
  if (b.kind === 'counter' && o.rules.meals.includes(String(b.point))) {
    a.meals = addIncrease(a.meals, b);
    return;
  }
  if (b.kind === 'counter' && b.unit === 'h' && o.rules.runHours.includes(String(b.point))) {
    a.runHours = addIncrease(a.runHours, b);
    return;
  }
  if (b.kind === 'gauge') {
    const cold = coldRule(o.rules, String(b.point), String(b.unit));
    // Window-level and conservative: only min and max are uplinked, so a window counts as in
    // range only when its whole span was.
    if (cold) return addInRange(a.cold, cold, b, ws, Number(b.min), Number(b.max));
    const air = airRule(o.rules, String(b.point), String(b.unit));
    // Indoor-air limits are means (GB/T 18883): the window's mean is judged.
    if (air) addInRange(a.air, air, b, ws, Number(b.mean), Number(b.mean));
  }
}

/** A counter's window into a sum of increases; a window without a reading is unobserved, never 0. */
function addIncrease(m: Meals | null, b: Record<string, unknown>): Meals {
  const out = m ?? { value: null, observedWindows: 0, unobservedWindows: 0 };
  const inc = b.increase as number | null | undefined;
  if (inc === null || inc === undefined || Number(b.count) === 0) out.unobservedWindows++;
  else {
    out.value = (out.value ?? 0) + inc;
    out.observedWindows++;
  }
  return out;
}

/** A gauge's window into the share of observed time in range: in range when lo and hi are. */
function addInRange(into: Map<string, ColdChainFigure>, rule: ColdRule, b: Record<string, unknown>, ws: number, lo: number, hi: number): void {
  const key = `${String(b.device)}\u0000${String(b.point)}`;
  let f = into.get(key);
  if (!f) into.set(key, (f = { device: String(b.device), point: String(b.point), rule: rule.name, min: rule.min, max: rule.max, observedSeconds: 0, inRangeSeconds: 0, value: null }));
  if (Number(b.count) === 0 || b.min === null || b.max === null || b.mean === null) return; // unobserved: excluded
  f.observedSeconds += ws;
  if ((rule.min === null || lo >= rule.min) && (rule.max === null || hi <= rule.max)) f.inRangeSeconds += ws;
}

function statusSeen(c: Community, s: StoredStatus, from: number): void {
  const shed = s.body.shed ?? null;
  if (s.ts < from) {
    c.shedBase.set(s.gatewayId, shed);
    return;
  }
  const g = c.completeness.get(s.gatewayId) ?? { gatewayId: s.gatewayId, firstSeq: null, lastSeq: null, received: 0, missing: 0, gaps: [], shed: null, shedInRange: null, lastStatusTs: null };
  c.completeness.set(s.gatewayId, g);
  c.gateways.add(s.gatewayId);
  g.lastStatusTs = s.ts;
  g.shed = shed;
  const base = c.shedBase.get(s.gatewayId);
  // The counters are the gateway's running totals; a smaller one than the baseline (an outbox
  // replaced) leaves the figure for the range unknown.
  g.shedInRange = shed && base && shed.rows >= base.rows && shed.dropped >= base.dropped ? { rows: shed.rows - base.rows, dropped: shed.dropped - base.dropped } : null;
}

/** A jump in seq within the range may be items whose own time lies outside it (an alarm just
 * before the range, a window just after): only seqs the store holds nowhere are missing. */
async function confirmGaps(store: ConsumerStore, g: GatewayCompleteness): Promise<GatewayCompleteness> {
  const gaps: [number, number][] = [];
  let missing = 0;
  for (const [a, b] of g.gaps) {
    const held = await store.countSeqs(g.gatewayId, a, b);
    const m = b - a + 1 - held;
    if (m <= 0) continue;
    missing += m;
    if (gaps.length < 100) gaps.push([a, b]);
  }
  return { ...g, missing, gaps };
}

function pairAlarms(c: Community, ps: Period[], to: number, acc: (c: Community, f: string, i: number) => PeriodAcc): void {
  for (const events of c.alarmEvents.values()) {
    events.sort((x, y) => x.ts - y.ts);
    let open: { ts: number; a: PeriodAcc } | null = null;
    for (const e of events) {
      if (e.state === 'raised') {
        if (open) continue; // raised twice (a resend under another seq): one episode
        const a = acc(c, e.facility, periodIndex(ps, e.ts));
        a.alarms.raised++;
        a.alarms[e.severity]++;
        open = { ts: e.ts, a };
      } else if (open) {
        open.a.alarms.cleared++;
        open.a.alarms.durations.push((e.ts - open.ts) / 1000);
        open = null;
      }
      // A clear without a raise in the range belongs to an alarm raised before it: not counted.
    }
    if (open && open.ts < to) open.a.alarms.open++;
  }
}

/** `keep`: the type's indicators (null: all). Availability and alarms are always reported. */
function finish(a: PeriodAcc, p: Period, keep: Set<Indicator> | null): FacilityPeriod {
  const has = (i: Indicator) => keep === null || keep.has(i);
  const share = (m: Map<string, ColdChainFigure>) => [...m.values()].map((f) => ({ ...f, value: f.observedSeconds > 0 ? round(f.inRangeSeconds / f.observedSeconds, 4) : null }));
  const len = (p.end - p.start) / 1000;
  const d = [...a.alarms.durations].sort((x, y) => x - y);
  const median = d.length ? (d.length % 2 ? d[(d.length - 1) / 2]! : (d[d.length / 2 - 1]! + d[d.length / 2]!) / 2) : null;
  return {
    period: p.label,
    start: p.start,
    end: p.end,
    availability: {
      value: a.observed > 0 ? round(a.availWeighted / a.observed, 4) : null,
      observedSeconds: a.observed,
      observedShare: a.gateways.size ? round(a.observed / (len * a.gateways.size), 4) : null,
    },
    meals: has('meals') ? a.meals : null,
    personal: !has('personal-measures') ? [] : [...a.personal.entries()].map(([key, x]) => {
      const [device, point] = key.split('\u0000') as [string, string];
      const bands = x.bands ? Object.fromEntries([...x.bands].map(([id, c]) => [id, { ...c, suppressedWindows: c.suppressedWindows + x.withheld }])) : null;
      return { device, point, unit: x.unit, measurements: x.m, residentWindows: x.r, bands, noisy: x.noisy };
    }),
    coldChain: has('cold-chain') ? share(a.cold) : [],
    airQuality: has('air-quality') ? share(a.air) : [],
    disinfectionHours: has('disinfection-hours') ? a.runHours : null,
    alarms: { raised: a.alarms.raised, critical: a.alarms.critical, warning: a.alarms.warning, cleared: a.alarms.cleared, clearSecondsMedian: median, clearSecondsMax: d.length ? d[d.length - 1]! : null, open: a.alarms.open },
  };
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}
