// The latest reading per point and the availability per device, kept for the web page and
// the status API. It only listens: nothing here reaches into drivers.
import type { EventBus } from '../events.js';
import type { DeviceStatus, Facility, Quality, Reading } from '../types.js';
import type { PointKind, PrivacyClass } from '../config/profile-schema.js';

/** One point's latest reading, copied into an object of its own that is updated in place.
 * Keeping the Reading itself held each one for a poll interval: at 10,000 points every second
 * that outlived V8's young generation, and every reading was promoted and collected by an
 * old-space GC (issue 14). A number goes into a field that only ever holds numbers, which V8
 * updates in place, so an update allocates nothing. */
export class LastReading implements Reading {
  facility: Facility;
  unit: string;
  privacy: PrivacyClass;
  kind: PointKind;
  ts = Number.NaN;
  quality: Quality = 'good';
  detail?: string;
  /** The value when it is a number (NaN otherwise); `other` when it is not. */
  private num = Number.NaN;
  private other: boolean | string | null = null;
  private numeric = false;

  constructor(
    readonly device: string,
    readonly point: string,
    r: Reading,
  ) {
    this.facility = r.facility;
    this.unit = r.unit;
    this.privacy = r.privacy;
    this.kind = r.kind;
    this.update(r);
  }

  get value(): Reading['value'] {
    return this.numeric ? this.num : this.other;
  }

  update(r: Reading): void {
    this.facility = r.facility;
    this.unit = r.unit;
    this.privacy = r.privacy;
    this.kind = r.kind;
    this.ts = r.ts;
    this.quality = r.quality;
    this.detail = r.detail;
    if (typeof r.value === 'number') {
      this.numeric = true;
      this.num = r.value;
      this.other = null;
    } else {
      this.numeric = false;
      this.num = Number.NaN;
      this.other = r.value;
    }
  }
}

export class LiveState {
  readonly last = new Map<string, Map<string, LastReading>>();
  readonly status = new Map<string, DeviceStatus>();
  private off: (() => void)[] = [];

  constructor(private readonly events: EventBus) {}

  start(): void {
    this.off.push(
      this.events.on('reading', (r) => {
        let m = this.last.get(r.device);
        if (!m) this.last.set(r.device, (m = new Map()));
        const l = m.get(r.point);
        if (l) l.update(r);
        else m.set(r.point, new LastReading(r.device, r.point, r));
      }),
      this.events.on('deviceStatus', (s) => this.status.set(s.device, s)),
    );
  }

  stop(): void {
    for (const f of this.off) f();
    this.off = [];
  }
}
