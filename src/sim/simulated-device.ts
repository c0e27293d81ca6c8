// One simulated Modbus device built from a profile: a register image whose values move
// plausibly over time. Motion comes from the point's `simulate` spec, or is derived from its
// kind and range. Personal and identifier points of a kiosk change only when its event
// counter advances, like a real measurement.
import type { Point, Profile, RegisterKind, SimSpec } from '../config/profile-schema.js';
import { decodeRegisters, encodeRegisters } from '../io/modbus/codec.js';
import { scaleValue } from '../pipeline/scale.js';
import { pointSpan } from '../io/modbus/read-plan.js';

interface Motion {
  point: Point;
  spec: SimSpec;
  value: number;
}

export class SimulatedDevice {
  /** Register images per kind; an address missing from the map answers ILLEGAL DATA ADDRESS. */
  private readonly image = new Map<RegisterKind, Map<number, number>>();
  private readonly motions: Motion[] = [];
  private last: number;
  /** Resident card pool for identifier points: 40 residents, as a small community station sees. */
  private readonly cards: number[];

  constructor(
    readonly profile: Profile,
    private readonly random: () => number,
    now = Date.now(),
  ) {
    this.last = now;
    this.cards = Array.from({ length: 40 }, () => 10_000_000 + Math.floor(random() * 89_999_999));
    for (const kind of ['coil', 'discrete', 'holding', 'input'] as const) {
      const pts = profile.points.filter((p) => p.register === kind);
      if (!pts.length) continue;
      // Every address from the lowest to the highest point exists (reads zero), except holes.
      const lo = Math.min(...pts.map((p) => p.address));
      const hi = Math.max(...pts.map((p) => pointSpan(p).to));
      const m = new Map<number, number>();
      for (let a = lo; a <= hi; a++) {
        if (!profile.holes.some((h) => h.register === kind && a >= h.from && a <= h.to)) m.set(a, 0);
      }
      this.image.set(kind, m);
    }
    for (const p of profile.points) {
      const spec = p.simulate ?? defaultSpec(p);
      const m: Motion = { point: p, spec, value: initial(spec, p, random) };
      this.motions.push(m);
      this.write(m);
    }
  }

  /** Values of `count` addresses from `start`, or null if any is outside the image. */
  read(kind: RegisterKind, start: number, count: number, now = Date.now()): number[] | null {
    this.advance(now);
    const m = this.image.get(kind);
    if (!m) return null;
    const out = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      const v = m.get(start + i);
      if (v === undefined) return null;
      out[i] = v;
    }
    return out;
  }

  /** A write from the gateway (FC 05/06/15/16). Accepted only if every address belongs to a
   * writable point; those points then hold the written value instead of moving. */
  accept(kind: 'coil' | 'holding', start: number, values: number[]): boolean {
    const img = this.image.get(kind);
    const owners = (a: number) => this.motions.filter((m) => m.point.writable && m.point.register === kind && a >= m.point.address && a <= pointSpan(m.point).to);
    if (!img || values.some((_, i) => owners(start + i).length === 0)) return false;
    values.forEach((v, i) => img.set(start + i, kind === 'coil' ? (v ? 1 : 0) : v & 0xffff));
    for (const m of new Set(values.flatMap((_, i) => owners(start + i)))) {
      const p = m.point;
      const words = Array.from({ length: pointSpan(p).to - p.address + 1 }, (_, i) => img.get(p.address + i) ?? 0);
      const v = p.type === 'bool' ? words[0]! : scaleValue(p, decodeRegisters(words, 0, p.type, p.order, p.bit));
      m.value = Number(v);
      m.spec = { model: 'fixed' };
    }
    return true;
  }

  /** Current engineering value of a point (tests compare these with what the gateway reports). */
  valueOf(pointId: string): number | undefined {
    return this.motions.find((m) => m.point.id === pointId)?.value;
  }

  advance(now: number): void {
    const dt = (now - this.last) / 1000;
    if (dt <= 0) return;
    this.last = now;
    let events = 0;
    for (const m of this.motions) {
      if (m.spec.model !== 'counter' || m.point.kind !== 'counter') continue;
      const p = m.point;
      const before = Math.floor(m.value);
      const rate = m.spec.rate ?? 0.1;
      // Whole-number counters (meals, measurements) step by events; metered ones flow.
      const stepwise = p.scale === 1 && p.type !== 'float32' && p.type !== 'float64';
      m.value += stepwise ? poissonish(rate, dt, this.random) : rate * dt;
      const maxRaw = p.type === 'uint16' ? 65535 : p.type === 'uint32' ? 4294967295 : Infinity;
      if ((m.value - p.offset) / p.scale > maxRaw) m.value = p.offset; // wraps like the register
      if (Math.floor(m.value) > before) events++;
    }
    for (const m of this.motions) {
      const s = m.spec;
      const lo = s.min ?? m.point.range?.min ?? 0;
      const hi = s.max ?? m.point.range?.max ?? 100;
      switch (s.model) {
        case 'walk': {
          const step = (s.rate ?? (hi - lo) * 0.01) * Math.sqrt(dt) * (this.random() * 2 - 1) * 1.7;
          // Pull toward the middle so the walk stays in its band.
          m.value += step + ((lo + hi) / 2 - m.value) * Math.min(1, 0.02 * dt);
          m.value = Math.min(hi, Math.max(lo, m.value));
          break;
        }
        case 'sine':
          m.value = lo + ((hi - lo) * (1 + Math.sin((2 * Math.PI * now) / 1000 / (s.periodS ?? 3600)))) / 2;
          break;
        case 'toggle':
          if (this.random() < 1 - Math.exp(-(s.rate ?? 0.01) * dt)) m.value = m.value ? 0 : 1;
          break;
        case 'event':
          if (events > 0) m.value = m.point.privacy === 'identifier' ? this.cards[Math.floor(this.random() * this.cards.length)]! : lo + this.random() * (hi - lo);
          break;
        case 'counter':
          if (m.point.kind !== 'counter') m.value += (s.rate ?? 0.1) * dt;
          break;
        case 'fixed':
          break;
      }
      this.write(m);
    }
  }

  private write(m: Motion): void {
    const p = m.point;
    const img = this.image.get(p.register);
    if (!img) return;
    if (p.type === 'bool') {
      img.set(p.address, m.value ? 1 : 0);
      return;
    }
    const raw = (m.value - p.offset) / p.scale;
    const words = encodeRegisters(p.type === 'bit' ? raw !== 0 : raw, p.type, p.order, p.bit ?? 0, img.get(p.address) ?? 0);
    words.forEach((w, i) => img.set(p.address + i, w));
  }
}

function defaultSpec(p: Point): SimSpec {
  if (p.kind === 'counter') return { model: 'counter', rate: 0.1 };
  if (p.kind === 'state' || p.type === 'bool' || p.type === 'bit') return { model: 'toggle', rate: 0.01 };
  if (p.privacy !== 'public') return { model: 'event' };
  if (p.range) {
    const span = p.range.max - p.range.min;
    const mid = p.range.min + span / 2;
    return { model: 'walk', min: mid - span * 0.1, max: mid + span * 0.1 };
  }
  return { model: 'walk', min: 0, max: 100 };
}

function initial(s: SimSpec, p: Point, random: () => number): number {
  if (s.value !== undefined) return s.value;
  if (s.model === 'toggle' || p.type === 'bool' || p.type === 'bit') return 0;
  if (s.model === 'counter') return s.min ?? Math.floor(random() * 1000);
  const lo = s.min ?? p.range?.min ?? 0;
  const hi = s.max ?? p.range?.max ?? 100;
  return lo + random() * (hi - lo);
}

/** Events in dt seconds at `rate` per second: exact expectation, randomised rounding. */
function poissonish(rate: number, dt: number, random: () => number): number {
  const mean = rate * dt;
  const whole = Math.floor(mean);
  return whole + (random() < mean - whole ? 1 : 0);
}
