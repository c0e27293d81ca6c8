// Per point, wall-clock aligned windows of windowSeconds: count, mean, min, max, sum, last;
// for counters the increase (across wraps and resets); for on/off points the share of "on"
// and the number of changes. Each window closes on time, also for a silent device (count 0),
// and carries, per facility, the time-weighted share of devices online.
import type { Point } from '../config/profile-schema.js';
import type { Logger } from '../log.js';
import type { OutboxItem } from '../store/outbox.js';
import type { DeviceStatus, Facility, Reading } from '../types.js';

export interface AggregatedPoint {
  device: string;
  facility: Facility;
  point: Point;
}

interface Acc {
  count: number;
  bad: number;
  sum: number;
  min: number;
  max: number;
  last: number | null;
  increase: number;
  trues: number;
  changes: number;
}

interface DeviceTime {
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
}

const key = (device: string, point: string) => `${device}\u0000${point}`;

export class WindowAggregator {
  private readonly points = new Map<string, AggregatedPoint>();
  private readonly windows = new Map<number, Map<string, Acc>>();
  /** Last good counter value per point, carried across windows for the increase. */
  private readonly lastCounter = new Map<string, number>();
  private readonly lastState = new Map<string, number>();
  private readonly devices = new Map<string, DeviceTime>();
  private timer: NodeJS.Timeout | null = null;
  private observedFrom = 0;
  private openWindow = 0;
  late = 0;
  windowsClosed = 0;
  /** When a window last closed (or start): the watchdog's sign of life. */
  lastClose: number | null = null;

  constructor(
    private readonly opts: WindowAggregatorOptions,
    points: AggregatedPoint[],
    devices: { id: string; facility: Facility }[],
    private readonly sink: (items: OutboxItem[]) => void,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly contributors: WindowContributor[] = [],
  ) {
    for (const p of points) this.points.set(key(p.device, p.point.id), p);
    for (const d of devices) this.devices.set(d.id, { facility: d.facility, online: false, changes: [] });
  }

  /** Points and devices from a reloaded config. The open window keeps its readings: kept
   * points go on accumulating, new points start at count 0, removed points are not sent. */
  reconfigure(points: AggregatedPoint[], devices: { id: string; facility: Facility }[]): void {
    this.points.clear();
    for (const p of points) this.points.set(key(p.device, p.point.id), p);
    const ids = new Set(devices.map((d) => d.id));
    for (const id of [...this.devices.keys()]) if (!ids.has(id)) this.devices.delete(id);
    for (const d of devices) {
      const known = this.devices.get(d.id);
      if (!known) this.devices.set(d.id, { facility: d.facility, online: false, changes: [] });
      else known.facility = d.facility;
    }
  }

  private get windowMs(): number {
    return this.opts.windowSeconds * 1000;
  }

  start(): void {
    const t = this.now();
    this.observedFrom = t;
    this.openWindow = Math.floor(t / this.windowMs) * this.windowMs;
    this.lastClose = t;
    this.schedule();
  }

  /** null while windows close on time, else why not (for the service watchdog). */
  stalled(now = this.now()): string | null {
    if (this.lastClose === null || this.timer === null) return null;
    const limit = 3 * this.windowMs + this.opts.closeDelayMs + 10_000;
    return now - this.lastClose > limit ? `aggregation: no window closed for ${Math.round((now - this.lastClose) / 1000)} s` : null;
  }

  /** The window open at stop is not sent: a partial window would collide with the one the
   * next start sends for the same period. Its readings stay in the raw store. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  onReading(r: Reading): void {
    const k = key(r.device, r.point);
    const p = this.points.get(k);
    if (!p) return;
    const ws = Math.floor(r.ts / this.windowMs) * this.windowMs;
    if (ws < this.openWindow) {
      this.late++;
      return;
    }
    let w = this.windows.get(ws);
    if (!w) this.windows.set(ws, (w = new Map()));
    let a = w.get(k);
    if (!a) w.set(k, (a = { count: 0, bad: 0, sum: 0, min: Infinity, max: -Infinity, last: null, increase: 0, trues: 0, changes: 0 }));
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
      const prev = this.lastState.get(k);
      if (prev !== undefined && prev !== v) a.changes++;
      this.lastState.set(k, v);
    }
    if (p.point.kind === 'counter') {
      const prev = this.lastCounter.get(k);
      if (prev !== undefined) a.increase += counterDelta(p.point, prev, v);
      this.lastCounter.set(k, v);
    }
  }

  onStatus(s: DeviceStatus): void {
    const d = this.devices.get(s.device);
    if (!d) return;
    const current = d.changes.length ? d.changes[d.changes.length - 1]!.online : d.online;
    if (current !== s.online) d.changes.push({ t: this.now(), online: s.online });
  }

  private schedule(): void {
    const next = this.openWindow + this.windowMs;
    this.timer = setTimeout(() => this.close(), Math.max(0, next + this.opts.closeDelayMs - this.now()));
  }

  /** Closes every window that has ended (more than one after a stalled event loop). */
  private close(): void {
    const t = this.now();
    while (this.openWindow + this.windowMs + this.opts.closeDelayMs <= t) {
      try {
        this.sink([...this.items(this.openWindow), ...this.contributors.flatMap((c) => c.items(this.openWindow, this.opts.windowSeconds))]);
      } catch (err) {
        this.log.error({ err, windowStart: this.openWindow }, 'aggregate window could not be written');
      }
      this.windows.delete(this.openWindow);
      this.openWindow += this.windowMs;
      this.windowsClosed++;
      this.lastClose = t;
    }
    this.schedule();
  }

  private items(ws: number): OutboxItem[] {
    const we = ws + this.windowMs;
    const accs = this.windows.get(ws) ?? new Map<string, Acc>();
    const out: OutboxItem[] = [];
    const ts = we;
    for (const [k, p] of this.points) {
      const a = accs.get(k);
      const n = a?.count ?? 0;
      const boolean = p.point.type === 'bool' || p.point.type === 'bit';
      const item: Record<string, unknown> = {
        type: 'point',
        windowStart: ws,
        windowSeconds: this.opts.windowSeconds,
        facility: p.facility,
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
      out.push({ kind: 'agg', ts, body: JSON.stringify(item) });
    }
    // Facility availability over the part of the window the gateway observed.
    const from = Math.max(ws, this.observedFrom);
    const observed = Math.max(0, we - from);
    const byFacility = new Map<Facility, { devices: number; onlineMs: number }>();
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
      const f = byFacility.get(d.facility) ?? { devices: 0, onlineMs: 0 };
      f.devices++;
      f.onlineMs += onlineMs;
      byFacility.set(d.facility, f);
    }
    for (const [facility, f] of byFacility) {
      out.push({
        kind: 'agg',
        ts,
        body: JSON.stringify({
          type: 'facility',
          windowStart: ws,
          windowSeconds: this.opts.windowSeconds,
          facility,
          devices: f.devices,
          availability: observed > 0 && f.devices > 0 ? round(f.onlineMs / (observed * f.devices)) : null,
          observedSeconds: observed / 1000,
        }),
      });
    }
    return out;
  }
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
