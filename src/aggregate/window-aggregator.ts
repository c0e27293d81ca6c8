// Per point, wall-clock aligned windows of windowSeconds: count, mean, min, max, sum, last;
// for counters the increase (across wraps and resets); for on/off points the share of "on"
// and the number of changes. Each window closes on time, also for a silent device (count 0),
// and carries, per facility, the time-weighted share of devices online.
// Clock steps (a box without RTC syncing NTP): a window is sent at most once, also across a
// restart (the end of the last closed window is persisted with its items), and never for
// time the gateway did not observe (a forward step skips the gap; a backward step waits
// until the wall clock is past what was already sent). docs/RELIABILITY.md, "Clock steps".
import type { Point } from '../config/profile-schema.js';
import type { Logger } from '../log.js';
import { monoNow } from '../time/monotonic.js';
import type { OutboxItem } from '../store/outbox.js';
import { placementFields, pointPlacement, seriesKey, type DeviceStatus, type Facility, type Placement, type Reading } from '../types.js';

export interface AggregatedPoint extends Partial<Placement> {
  device: string;
  facility: Facility;
  point: Point;
}

/** A device as the aggregator places it: its facility type, facility id and house code. */
export type PlacedDevice = { id: string; facility: Facility } & Partial<Placement>;

/** Every field only ever holds a number, so that V8 keeps it unboxed and updates it in place:
 * a field that may hold null (`last` did) takes a new heap number at every reading, which the
 * Acc, old by then, keeps alive for up to a second, so each one was promoted (issue 14). */
interface Acc {
  count: number;
  bad: number;
  sum: number;
  min: number;
  max: number;
  /** Meaningful once count > 0. */
  last: number;
  increase: number;
  trues: number;
  changes: number;
}

interface DeviceTime extends Partial<Placement> {
  facility: Facility;
  /** State at the start of the open window. */
  online: boolean;
  /** Changes since then, in time order; those after the window's end belong to the next one. */
  changes: { t: number; online: boolean }[];
}

/** Something else that reports per window (the personal aggregator), closed on the same clock. */
export interface WindowContributor {
  items(windowStart: number, windowSeconds: number): OutboxItem[];
}

export interface WindowAggregatorOptions {
  windowSeconds: number;
  /** Wait after the boundary before closing, so a reading taken just before it still counts. */
  closeDelayMs: number;
  /** End of the last window sent before this start (persisted): nothing before it is sent again. */
  closedUpTo?: number;
  /** The monotonic clock, for the watchdog's view of the close timer. */
  mono?: () => number;
  /** Asks the clock watch to compare clocks now, so a step is handled before a window closes. */
  checkClock?: () => void;
}

/** Called with each closed window's items and the end of that window (to persist with them).
 * The items are built as they are iterated (one point's JSON at a time, issue 14: 10,000
 * points made ~7 MB of items at once), valid only during the call, and iterable again (the
 * outbox retries an append after making room on a full disk). */
export type WindowSink = (items: Iterable<OutboxItem>, closedUpTo: number) => void;

/** The close timer re-checks at least this often: after a step back the next window may be an
 * hour away on the wall clock, and setTimeout cannot take more than 24.8 days anyway. */
const MAX_TIMER_MS = 60_000;
/** The close timer this late (event loop stuck, timer lost) is a stall for the watchdog. */
const STALL_GRACE_MS = 30_000;

const key = (device: string, point: string) => seriesKey({ device, point });

export class WindowAggregator {
  private readonly points = new Map<string, AggregatedPoint>();
  private readonly windows = new Map<number, Map<string, Acc>>();
  /** A closed window's accumulators, reset and reused by the next window: made anew every
   * window, 10,000 of them lived a minute (so were promoted) and then died in the old
   * generation together (issue 14). */
  private spare: Map<string, Acc> | null = null;
  /** Last good counter value and on/off state per point (NaN: none yet), carried across
   * windows for the increase and the changes; boxes updated in place, as Acc. */
  private readonly carried = new Map<string, { counter: number; state: number }>();
  private readonly devices = new Map<string, DeviceTime>();
  private timer: NodeJS.Timeout | null = null;
  private observedFrom = 0;
  private openWindow = 0;
  /** Readings stamped before the open window (late, or before a backward clock step). */
  late = 0;
  windowsClosed = 0;
  /** Windows never observed, jumped over by a forward clock step. */
  windowsSkipped = 0;
  /** End of the last window sent: the at-most-once line. */
  closedUpTo: number;
  /** Monotonic time the close timer is due: the watchdog's sign of life. */
  private dueMono: number | null = null;
  private running = false;
  private readonly mono: () => number;

  constructor(
    private readonly opts: WindowAggregatorOptions,
    points: AggregatedPoint[],
    devices: PlacedDevice[],
    private readonly sink: WindowSink,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly contributors: WindowContributor[] = [],
  ) {
    for (const p of points) this.points.set(key(p.device, p.point.id), p);
    for (const d of devices) this.devices.set(d.id, { ...placed(d), online: false, changes: [] });
    this.closedUpTo = opts.closedUpTo ?? 0;
    this.mono = opts.mono ?? monoNow;
  }

  /** Points and devices from a reloaded config. The open window keeps its readings: kept
   * points go on accumulating, new points start at count 0, removed points are not sent. */
  reconfigure(points: AggregatedPoint[], devices: PlacedDevice[]): void {
    this.points.clear();
    for (const p of points) this.points.set(key(p.device, p.point.id), p);
    this.spare = null;
    const ids = new Set(devices.map((d) => d.id));
    for (const id of [...this.devices.keys()]) if (!ids.has(id)) this.devices.delete(id);
    for (const d of devices) {
      const known = this.devices.get(d.id);
      this.devices.set(d.id, { ...placed(d), online: known?.online ?? false, changes: known?.changes ?? [] });
    }
  }

  private get windowMs(): number {
    return this.opts.windowSeconds * 1000;
  }

  start(): void {
    const t = this.now();
    this.openWindow = Math.floor(t / this.windowMs) * this.windowMs;
    this.observedFrom = t;
    // Started with the clock behind what was already sent (stepped back, then restarted): wait
    // for the wall clock to pass it; readings until then are late.
    if (this.openWindow < this.closedUpTo) this.resumeAfterSent(t);
    this.running = true;
    this.schedule();
  }

  /** The open window moves to the first aligned one at or after closedUpTo. */
  private resumeAfterSent(t: number): void {
    this.openWindow = Math.ceil(this.closedUpTo / this.windowMs) * this.windowMs;
    this.observedFrom = Math.max(t, this.openWindow);
    this.log.warn({ resumesAt: new Date(this.openWindow).toISOString() }, 'aggregation: the clock is behind windows already sent; aggregates resume when it passes them (readings stay local and live)');
  }

  /** null while the close timer fires on time, else why not (for the service watchdog).
   * Measured on the monotonic clock: a wall-clock step is not a stall. */
  stalled(mono = this.mono()): string | null {
    if (this.timer === null || this.dueMono === null) return null;
    const late = mono - this.dueMono;
    return late > STALL_GRACE_MS ? `aggregation: the window timer is ${Math.round(late / 1000)} s late` : null;
  }

  /** The wall clock stepped (ClockWatch). Forward past the open window: that window is sent
   * with what was observed until the step, and the gap is skipped (no item claims time the
   * gateway did not see). Back before the open window: the open window waits for the clock to
   * come back to it (readings until then are late), so nothing already sent is sent again.
   * Within the open window: nothing. */
  onClockStep(step: { before: number; after: number; deltaMs: number }): void {
    if (!this.running) return;
    const target = Math.floor(step.after / this.windowMs) * this.windowMs;
    if (step.deltaMs < 0 && target < this.openWindow) {
      // The open window has not been sent: it stays open, and fills again once the clock is
      // back in it. What is stamped before it was sent already or is late: counted, not sent.
      this.log.warn({ resumesAt: new Date(this.openWindow).toISOString() }, 'aggregation: clock stepped back; aggregates resume when it passes windows already sent (readings stay local and live)');
    }
    if (step.deltaMs <= 0 || target <= this.openWindow) return;
    this.emit(this.openWindow, step.before);
    const skipped = Math.max(0, (target - this.openWindow - this.windowMs) / this.windowMs);
    this.windowsSkipped += skipped;
    this.openWindow = target;
    this.observedFrom = step.after;
    for (const ws of [...this.windows.keys()]) if (ws < target) this.recycle(ws);
    this.log.warn({ skippedWindows: skipped, resumesAt: new Date(target).toISOString() }, 'aggregation: clock stepped forward; the unobserved windows are not sent');
    if (this.timer) clearTimeout(this.timer);
    this.schedule();
  }

  /** The window open at stop is not sent: a partial window would collide with the one the
   * next start sends for the same period. Its readings stay in the raw store. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.running = false;
  }

  onReading(r: Reading): void {
    const k = seriesKey(r);
    const p = this.points.get(k);
    if (!p) return;
    const ws = Math.floor(r.ts / this.windowMs) * this.windowMs;
    if (ws < this.openWindow || r.ts < this.observedFrom) {
      this.late++;
      return;
    }
    let w = this.windows.get(ws);
    if (!w) this.windows.set(ws, (w = this.freshWindow()));
    let a = w.get(k);
    if (!a) w.set(k, (a = { count: 0, bad: 0, sum: 0, min: Infinity, max: -Infinity, last: 0, increase: 0, trues: 0, changes: 0 }));
    if (r.quality !== 'good' || r.value === null || typeof r.value === 'string') {
      a.bad++;
      return;
    }
    const v = typeof r.value === 'boolean' ? (r.value ? 1 : 0) : r.value;
    a.count++;
    a.sum += v;
    if (v < a.min) a.min = v;
    if (v > a.max) a.max = v;
    a.last = v;
    if (typeof r.value === 'boolean') {
      if (v) a.trues++;
      const c = this.carry(k);
      if (!Number.isNaN(c.state) && c.state !== v) a.changes++;
      c.state = v;
    }
    if (p.point.kind === 'counter') {
      const c = this.carry(k);
      if (!Number.isNaN(c.counter)) a.increase += counterDelta(p.point, c.counter, v);
      c.counter = v;
    }
  }

  private carry(k: string): { counter: number; state: number } {
    let c = this.carried.get(k);
    if (!c) this.carried.set(k, (c = { counter: Number.NaN, state: Number.NaN }));
    return c;
  }

  onStatus(s: DeviceStatus): void {
    const d = this.devices.get(s.device);
    if (!d) return;
    const current = d.changes.length ? d.changes[d.changes.length - 1]!.online : d.online;
    if (current !== s.online) d.changes.push({ t: this.now(), online: s.online });
  }

  private schedule(): void {
    const due = this.openWindow + this.windowMs + this.opts.closeDelayMs;
    const ms = Math.min(MAX_TIMER_MS, Math.max(0, due - this.now()));
    this.dueMono = this.mono() + ms;
    this.timer = setTimeout(() => this.close(), ms);
  }

  /** Closes every window that has ended (more than one after a stalled event loop: those were
   * observed, their readings are in). A clock step is handled first, so it is never taken
   * for a stall. */
  private close(): void {
    this.timer = null;
    this.opts.checkClock?.();
    if (this.timer) return; // the step handler closed and rescheduled
    const t = this.now();
    while (this.openWindow + this.windowMs + this.opts.closeDelayMs <= t) {
      this.emit(this.openWindow, t);
      this.openWindow += this.windowMs;
    }
    this.schedule();
  }

  /** Sends window ws, observed until `until` (its end, or a clock step inside it). Never a
   * window at or before one already sent. */
  private emit(ws: number, until: number): void {
    if (ws >= this.closedUpTo) {
      const end = ws + this.windowMs;
      try {
        // The facility and contributor items update their state as they are made: made once,
        // here; the point items are made as the sink reads them.
        const facilities = this.facilityItems(ws, until);
        const others = this.contributors.flatMap((c) => c.items(ws, this.opts.windowSeconds));
        const accs = this.windows.get(ws) ?? new Map<string, Acc>();
        this.sink({ [Symbol.iterator]: () => this.windowItems(ws, accs, facilities, others) }, end);
      } catch (err) {
        this.log.error({ err, windowStart: ws }, 'aggregate window could not be written');
      }
      this.closedUpTo = end;
      this.windowsClosed++;
    }
    this.recycle(ws);
  }

  /** Drops window ws; its accumulators become the spare (the sink has read them by now). */
  private recycle(ws: number): void {
    const w = this.windows.get(ws);
    this.windows.delete(ws);
    if (w) this.spare = w;
  }

  /** The spare accumulators, reset in place, or a new map. */
  private freshWindow(): Map<string, Acc> {
    const w = this.spare;
    this.spare = null;
    if (!w) return new Map();
    for (const a of w.values()) {
      a.count = a.bad = a.sum = a.last = a.increase = a.trues = a.changes = 0;
      a.min = Infinity;
      a.max = -Infinity;
    }
    return w;
  }

  private *windowItems(ws: number, accs: Map<string, Acc>, facilities: OutboxItem[], others: OutboxItem[]): Generator<OutboxItem> {
    yield* this.pointItems(ws, accs);
    yield* facilities;
    yield* others;
  }

  /** One item per configured point, each made when the consumer asks for it. */
  private *pointItems(ws: number, accs: Map<string, Acc>): Generator<OutboxItem> {
    const ts = ws + this.windowMs;
    for (const [k, p] of this.points) {
      const a = accs.get(k);
      const n = a?.count ?? 0;
      const boolean = p.point.type === 'bool' || p.point.type === 'bit';
      const item: Record<string, unknown> = {
        type: 'point',
        windowStart: ws,
        windowSeconds: this.opts.windowSeconds,
        facility: p.facility,
        ...pointPlacement(p.facility, p),
        device: p.device,
        point: p.point.id,
        unit: p.point.unit,
        kind: p.point.kind,
        count: n,
        bad: a?.bad ?? 0,
        mean: n ? round(a!.sum / n) : null,
        min: n ? a!.min : null,
        max: n ? a!.max : null,
        sum: n ? round(a!.sum) : null,
        last: n ? a!.last : null,
      };
      if (p.point.kind === 'counter') item.increase = n ? round(a!.increase) : null;
      if (boolean) {
        item.trueShare = n ? round(a!.trues / n) : null;
        item.changes = a?.changes ?? 0;
      }
      yield { kind: 'agg', ts, body: JSON.stringify(item) };
    }
  }

  /** One item per facility; moves each device's online state on to the window's end. */
  private facilityItems(ws: number, until: number): OutboxItem[] {
    const we = Math.min(ws + this.windowMs, Math.max(ws, until));
    const out: OutboxItem[] = [];
    const ts = ws + this.windowMs;
    // Facility availability over the part of the window the gateway observed.
    const from = Math.max(ws, this.observedFrom);
    const observed = Math.max(0, we - from);
    // One item per facility (by id): two canteens of a community are two items.
    const byFacility = new Map<string, { place: DeviceTime; devices: number; onlineMs: number }>();
    for (const d of this.devices.values()) {
      let state = d.online;
      let cursor = from;
      let onlineMs = 0;
      let used = 0;
      for (const c of d.changes) {
        if (c.t >= we) break;
        const at = Math.max(c.t, from);
        if (state) onlineMs += at - cursor;
        cursor = at;
        state = c.online;
        used++;
      }
      if (state) onlineMs += we - cursor;
      // The next window starts from the state at this window's end.
      d.online = state;
      d.changes = d.changes.slice(used);
      const id = d.facilityId ?? d.facility;
      const f = byFacility.get(id) ?? { place: d, devices: 0, onlineMs: 0 };
      f.devices++;
      f.onlineMs += onlineMs;
      byFacility.set(id, f);
    }
    for (const f of byFacility.values()) {
      out.push({
        kind: 'agg',
        ts,
        body: JSON.stringify({
          type: 'facility',
          windowStart: ws,
          windowSeconds: this.opts.windowSeconds,
          facility: f.place.facility,
          ...placementFields(f.place),
          devices: f.devices,
          availability: observed > 0 && f.devices > 0 ? round(f.onlineMs / (observed * f.devices)) : null,
          observedSeconds: observed / 1000,
        }),
      });
    }
    return out;
  }
}

function placed(d: PlacedDevice): Omit<DeviceTime, 'online' | 'changes'> {
  return { facility: d.facility, ...placementFields(d) };
}

/** The counter's increase from prev to cur. A drop is a wrap when prev was in the top half of
 * the register's range and cur in the bottom half (a uint16 meal counter passing 65535; a
 * signed counter passing from its maximum to its minimum), otherwise a reset (a meter
 * replaced, a device restarted): then the increase is what was counted since, never negative. */
export function counterDelta(p: Point, prev: number, cur: number): number {
  if (cur >= prev) return cur - prev;
  const span = wrapSpan(p);
  if (span !== null) {
    const signed = p.type === 'int16' || p.type === 'int32';
    const mid = p.offset + (signed ? 0 : span / 2);
    if (prev >= mid && cur < mid) return span - (prev - p.offset) + (cur - p.offset);
  }
  return Math.max(0, cur - p.offset);
}

function wrapSpan(p: Point): number | null {
  switch (p.type) {
    case 'uint16':
    case 'int16':
      return 65536 * p.scale;
    case 'uint32':
    case 'int32':
      return 4294967296 * p.scale;
    default:
      return null; // floating-point counters reset, they do not wrap
  }
}

function round(x: number): number {
  return Number(x.toPrecision(12));
}
