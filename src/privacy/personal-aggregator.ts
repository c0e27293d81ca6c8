// Aggregates of personal data: each completed session of an event device (a health kiosk) is
// one event of one resident (pseudonym) with its measured values. Per window and measure, what
// may leave the site is the number of measurements, the number of distinct residents, the mean
// and counts per band, and only where they rest on at least k distinct residents:
//  - fewer than k residents in the window: every figure of that measure is suppressed;
//  - a band cell with 1..k-1 residents is suppressed; if that leaves exactly one suppressed
//    cell, the smallest other non-empty cell is suppressed too, so no suppressed cell can be
//    recovered by subtracting the visible cells from the total (complementary suppression).
// No min, max, last or single value of a personal measure ever leaves the site.
// With epsilon set (k-anonymous mode), the released counts get discrete Laplace noise.
// privacy.mode: dp replaces the k decision with a noisy threshold and charges every resident's
// spend to the ledger (dp-release.ts, ledger.ts; docs/PRIVACY.md).
import type { Point, Profile } from '../config/profile-schema.js';
import { countNoise, cryptoRandom, type RandomSource } from './discrete-laplace.js';
import { dpMeasure } from './dp-release.js';
import { milli, type PrivacyLedger } from './ledger.js';
import type { OutboxItem } from '../store/outbox.js';
import { pointPlacement, type Facility, type Placement, type Reading, type ScanDone } from '../types.js';
import type { WindowContributor } from '../aggregate/window-aggregator.js';

export interface HealthEvent {
  device: string;
  facility: Facility;
  ts: number;
  /** The resident's pseudonym, or null for an anonymous session (no card). */
  subject: string | null;
  values: Map<string, number>;
}

interface EventDevice {
  id: string;
  facility: Facility;
  place: { facilityId?: string };
  trigger: string;
  subject?: string;
  values: Point[];
  /** Latest good value per point in the current scan. */
  latest: Map<string, number | string | null>;
  lastCount: number | null;
  pendingIncrease: boolean;
}

interface Cell {
  measurements: number;
  residents: Set<string>;
}

export interface PersonalOptions {
  k: number;
  /** 'k-anonymous' (the default) or 'dp'. */
  mode?: 'k-anonymous' | 'dp';
  /** k-anonymous: noise on every released count; dp: each item's budget. */
  epsilon?: number;
  /** dp: the chance a window resting on one resident is released at all. */
  delta?: number;
  /** dp: the per-resident annual budget (required in dp mode). */
  ledger?: PrivacyLedger;
  /** Tests only: production draws from node:crypto. */
  rnd?: RandomSource;
}

export class PersonalAggregator implements WindowContributor {
  private readonly devices = new Map<string, EventDevice>();
  private readonly windows = new Map<number, HealthEvent[]>();
  events = 0;
  suppressedTotal = 0;
  /** dp: sessions left out because their resident had reached the annual cap. */
  excludedTotal = 0;

  constructor(
    devices: ({ id: string; facility: Facility; profile: Profile } & Partial<Placement>)[],
    private readonly opts: PersonalOptions,
    private readonly windowMs: number,
  ) {
    this.reconfigure(devices);
  }

  /** Event devices from a (reloaded) config. Sessions already in the open window stay; a kept
   * device keeps its counter baseline so no session is counted twice. */
  reconfigure(devices: ({ id: string; facility: Facility; profile: Profile } & Partial<Placement>)[]): void {
    const old = new Map(this.devices);
    this.devices.clear();
    for (const d of devices) {
      const ev = d.profile.events;
      if (!ev) continue;
      const values = ev.values.map((v) => d.profile.points.find((p) => p.id === v)!).filter((p) => p.privacy === 'personal');
      const prev = old.get(d.id);
      this.devices.set(d.id, { id: d.id, facility: d.facility, place: pointPlacement(d.facility, d), trigger: ev.trigger, subject: ev.subject, values, latest: prev?.latest ?? new Map(), lastCount: prev?.lastCount ?? null, pendingIncrease: prev?.pendingIncrease ?? false });
    }
  }

  onReading(r: Reading): void {
    const d = this.devices.get(r.device);
    if (!d) return;
    if (r.point === d.trigger) {
      if (r.quality !== 'good' || typeof r.value !== 'number') return;
      // The first reading after start only sets the baseline: that session was before us.
      if (d.lastCount !== null && r.value !== d.lastCount) d.pendingIncrease = true;
      d.lastCount = r.value;
      return;
    }
    d.latest.set(r.point, r.quality === 'good' ? (r.value as number | string | null) : null);
  }

  /** A scan is complete: if the counter advanced, the values read in it are one event. */
  onScan(s: ScanDone): void {
    const d = this.devices.get(s.device);
    if (!d || !d.pendingIncrease) return;
    d.pendingIncrease = false;
    const values = new Map<string, number>();
    for (const p of d.values) {
      const v = d.latest.get(p.id);
      if (typeof v === 'number') values.set(p.id, v);
    }
    const subject = d.subject ? d.latest.get(d.subject) : null;
    this.add({ device: d.id, facility: d.facility, ts: s.ts, subject: typeof subject === 'string' ? subject : null, values });
    d.latest.clear();
  }

  add(e: HealthEvent): void {
    const ws = Math.floor(e.ts / this.windowMs) * this.windowMs;
    const list = this.windows.get(ws) ?? [];
    list.push(e);
    this.windows.set(ws, list);
    this.events++;
  }

  /** Called at the close of every public window [ws, ws + publicSeconds). Personal windows
   * (windowMs, a multiple of the public window: residents measure a few times an hour, so k
   * needs longer windows) are reported when the public window that ends them closes: one item
   * per event device and personal measure. */
  items(publicStart: number, publicSeconds: number): OutboxItem[] {
    const publicEnd = publicStart + publicSeconds * 1000;
    if (publicEnd % this.windowMs !== 0) return [];
    const ws = publicEnd - this.windowMs;
    const windowSeconds = this.windowMs / 1000;
    const events = this.windows.get(ws) ?? [];
    this.windows.delete(ws);
    for (const k of this.windows.keys()) if (k < ws) this.windows.delete(k); // never reported late
    const out: OutboxItem[] = [];
    const dp = this.opts.mode === 'dp';
    const kept = dp ? this.admit(events, ws) : events;
    for (const d of this.devices.values()) {
      const mine = kept.filter((e) => e.device === d.id);
      for (const p of d.values) {
        const body = dp ? this.measureDp(d, p, mine, ws, windowSeconds) : this.measure(d, p, mine, ws, windowSeconds);
        out.push({ kind: 'agg', ts: ws + this.windowMs, body: JSON.stringify(body) });
      }
    }
    // The spend is on disk before the items reach the outbox (ledger.ts).
    if (dp) this.opts.ledger!.save();
    return out;
  }

  /** dp: one session per resident and device (the first), none anonymous; each resident is
   * charged epsilon per item they appear in, or left out of the window when that would pass
   * their annual cap. */
  private admit(events: HealthEvent[], ws: number): HealthEvent[] {
    const ledger = this.opts.ledger!;
    const eps = milli(this.opts.epsilon!);
    const first = new Map<string, HealthEvent[]>();
    const sessionsOf = new Map<string, number>();
    const seen = new Set<string>();
    for (const e of events) {
      if (!e.subject || !this.devices.has(e.device)) continue;
      sessionsOf.set(e.subject, (sessionsOf.get(e.subject) ?? 0) + 1);
      if (seen.has(`${e.subject}\u0000${e.device}`)) continue;
      seen.add(`${e.subject}\u0000${e.device}`);
      first.set(e.subject, [...(first.get(e.subject) ?? []), e]);
    }
    const kept: HealthEvent[] = [];
    for (const [subject, list] of first) {
      const items = list.reduce((n, e) => n + this.devices.get(e.device)!.values.filter((p) => e.values.has(p.id)).length, 0);
      const sessions = sessionsOf.get(subject)!;
      if (ledger.charge(subject, items * eps, sessions, ws)) kept.push(...list);
      else this.excludedTotal += sessions;
    }
    return kept;
  }

  private measureDp(d: EventDevice, p: Point, events: HealthEvent[], ws: number, windowSeconds: number): Record<string, unknown> {
    const values = events.map((e) => e.values.get(p.id)).filter((v): v is number => v !== undefined);
    const params = { epsilon: this.opts.epsilon!, delta: this.opts.delta! };
    // Config validation requires a range on every personal value point in dp mode.
    const point = { range: p.range!, resolution: Math.abs(p.scale), ...(p.bands ? { bands: p.bands } : {}) };
    const r = dpMeasure(values, point, params, this.opts.rnd ?? cryptoRandom);
    const base = { type: 'personal', windowStart: ws, windowSeconds, facility: d.facility, ...d.place, device: d.id, point: p.id, unit: p.unit, k: this.opts.k };
    return {
      ...base,
      measurements: r.count,
      residents: r.count,
      mean: r.mean,
      ...(p.bands ? { bands: r.bands } : {}),
      // Sessions left out (second sessions, anonymous ones, residents past the cap) are not a
      // released figure in dp mode: their number has no bounded sensitivity.
      suppressed: 0,
      epsilon: this.opts.epsilon,
      delta: this.opts.delta,
      threshold: r.threshold,
    };
  }

  private measure(d: EventDevice, p: Point, events: HealthEvent[], ws: number, windowSeconds: number): Record<string, unknown> {
    const k = this.opts.k;
    const total: Cell = { measurements: 0, residents: new Set() };
    let sum = 0;
    const cells = new Map<string, Cell>((p.bands ?? []).map((b) => [b.id, { measurements: 0, residents: new Set<string>() }]));
    // With noise, each count must change by at most 1 when one resident is added or removed:
    // keep one session per resident per window and leave anonymous sessions out (they could
    // all be one person). Without noise every session counts.
    const bounded = this.opts.epsilon !== undefined;
    const seen = new Set<string>();
    let bounding = 0;
    for (const e of events) {
      const v = e.values.get(p.id);
      if (v === undefined) continue;
      if (bounded) {
        if (!e.subject || seen.has(e.subject)) {
          bounding++;
          continue;
        }
        seen.add(e.subject);
      }
      total.measurements++;
      sum += v;
      if (e.subject) total.residents.add(e.subject);
      if (p.bands) {
        const band = [...p.bands].reverse().find((b) => v >= b.from) ?? p.bands[0]!;
        const c = cells.get(band.id)!;
        c.measurements++;
        if (e.subject) c.residents.add(e.subject);
      }
    }
    const base = { type: 'personal', windowStart: ws, windowSeconds, facility: d.facility, ...d.place, device: d.id, point: p.id, unit: p.unit, k };
    if (total.residents.size < k) {
      // Nothing about this measure rests on k residents: release only that it was suppressed.
      this.suppressedTotal += total.measurements + bounding;
      return { ...base, measurements: null, residents: null, mean: null, bands: p.bands ? null : undefined, suppressed: this.noisy(total.measurements + bounding) };
    }
    let suppressed = bounding;
    let bands: Record<string, number | null> | undefined;
    if (p.bands) {
      const small = [...cells].filter(([, c]) => c.measurements > 0 && c.residents.size < k).map(([id]) => id);
      if (small.length === 1) {
        // Complementary suppression: the smallest other non-empty cell goes too.
        const other = [...cells]
          .filter(([id, c]) => id !== small[0] && c.measurements > 0)
          .sort((a, b) => a[1].residents.size - b[1].residents.size || a[1].measurements - b[1].measurements)[0];
        if (other) small.push(other[0]);
      }
      bands = {};
      for (const [id, c] of cells) {
        if (small.includes(id)) {
          bands[id] = null;
          suppressed += c.measurements;
        } else bands[id] = this.noisy(c.measurements);
      }
    }
    this.suppressedTotal += suppressed;
    return {
      ...base,
      measurements: this.noisy(total.measurements),
      residents: this.noisy(total.residents.size),
      mean: Number((sum / total.measurements).toPrecision(4)),
      ...(bands ? { bands } : {}),
      // Under noise the suppressed count is a released count like the others.
      suppressed: this.noisy(suppressed),
      ...(this.opts.epsilon ? { epsilon: this.opts.epsilon } : {}),
    };
  }

  /** Discrete Laplace noise with scale 1/epsilon (sensitivity 1: one resident's event changes
   * a count by one), clamped at 0. Without epsilon the exact count. */
  private noisy(n: number): number {
    const eps = this.opts.epsilon;
    if (!eps) return n;
    return Math.max(0, n + countNoise(eps, this.opts.rnd ?? cryptoRandom));
  }
}
