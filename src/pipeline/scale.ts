// Engineering value from a raw decoded value: value = raw * scale + offset, rounded to the
// precision the register actually carries, so 234 * 0.1 reads 23.4 and not 23.400000000000002.
import type { Point } from '../config/profile-schema.js';
import type { Quality } from '../types.js';

export function scaleValue(p: Point, raw: number | boolean): number | boolean {
  if (typeof raw === 'boolean') return raw;
  let v = raw * p.scale + p.offset;
  if (p.type === 'float32') {
    // float32 carries ~7 significant digits; the rest is binary noise.
    return v === 0 || !Number.isFinite(v) ? v : Number(v.toPrecision(7));
  }
  if (p.type !== 'float64') {
    const d = decimalsOf(p.scale, p.offset);
    const f = POW10[d]!;
    v = Math.round(v * f) / f;
  }
  return v;
}

const POW10 = [1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];
const decimalsCache = new Map<number, number>();

function decimalsOf(scale: number, offset: number): number {
  const key = scale * 1e6 + offset; // cheap memo key, exactness not needed
  let d = decimalsCache.get(key);
  if (d === undefined) {
    d = Math.min(10, Math.max(places(scale), places(offset)));
    decimalsCache.set(key, d);
  }
  return d;
}

function places(n: number): number {
  const s = String(n);
  if (s.includes('e-')) return Number(s.split('e-')[1]);
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

export function checkRange(p: Point, v: number | boolean): Quality {
  if (typeof v === 'boolean' || !p.range) return Number.isFinite(v as number) || typeof v === 'boolean' ? 'good' : 'out_of_range';
  return v >= p.range.min && v <= p.range.max ? 'good' : 'out_of_range';
}
