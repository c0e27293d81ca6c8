// Compact encoding of one series' raw readings (a block): a few bytes per reading instead of
// a row each. Timestamps as zigzag varints of the delta of deltas (a steady poll costs one
// byte); values as varint deltas of integers at the smallest decimal scale that holds every
// value to 12 significant digits (4.5 °C is 45 at scale 1; a register scaled by 0.1 in
// floating point, 23.400000000000002, is 234 too and comes back as 23.4), else as float32
// when every value is one (a register pair decoded as an IEEE float: 4 bytes, exact), else as
// float64 (exact); readings that are not 'good' or have no value are listed apart (usually
// none). A register holds at most 10 significant digits, so the decimals lose nothing it said.
// In columns (encodeColumns) a value of NaN stands for no value: the raw store keeps only
// finite numbers.

export interface RawPoint {
  ts: number;
  value: number | null;
  quality: string;
}

const VERSION = 1;
const FLOAT = 255;
const FLOAT32 = 254;
const MAX_SCALE = 6;

class Writer {
  private buf = Buffer.allocUnsafe(64);
  len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.len++] = b;
  }

  /** Unsigned varint of a non-negative integer up to 2^53 (7 bits a byte, no 32-bit ops). */
  uvar(n: number): void {
    this.room(8);
    while (n >= 0x80) {
      this.buf[this.len++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.len++] = n;
  }

  svar(n: number): void {
    this.uvar(n < 0 ? -2 * n - 1 : 2 * n);
  }

  f64(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.len);
    this.len += 8;
  }

  f32(v: number): void {
    this.room(4);
    this.buf.writeFloatLE(v, this.len);
    this.len += 4;
  }

  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.uvar(b.length);
    this.room(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
  }

  done(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

class Reader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  byte(): number {
    if (this.pos >= this.buf.length) throw new Error('raw block truncated');
    return this.buf[this.pos++]!;
  }

  uvar(): number {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = this.byte();
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 0x80;
    }
  }

  svar(): number {
    const u = this.uvar();
    return u % 2 === 1 ? -(u + 1) / 2 : u / 2;
  }

  f64(): number {
    if (this.pos + 8 > this.buf.length) throw new Error('raw block truncated');
    const v = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, 8).readDoubleLE(0);
    this.pos += 8;
    return v;
  }

  f32(): number {
    if (this.pos + 4 > this.buf.length) throw new Error('raw block truncated');
    const v = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, 4).readFloatLE(0);
    this.pos += 4;
    return v;
  }

  str(): string {
    const n = this.uvar();
    if (this.pos + n > this.buf.length) throw new Error('raw block truncated');
    const s = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, n).toString('utf8');
    this.pos += n;
    return s;
  }
}

/** Relative difference under which a value is taken as its decimal (12 significant digits). */
const DECIMAL_TOLERANCE = 1e-12;

/** The smallest scale s (0..6) at which every value times 10^s is a safe integer that gives
 * the value back to 12 significant digits; FLOAT32 or FLOAT if there is none. */
function scaleOf(c: Columns, from: number, to: number): number {
  for (let s = 0; s <= MAX_SCALE; s++) {
    const m = 10 ** s;
    let fits = true;
    for (let i = from; i < to && fits; i++) {
      const v = c.value[i]!;
      if (Number.isNaN(v)) continue;
      const n = Math.round(v * m);
      fits = Number.isSafeInteger(n) && Math.abs(n / m - v) <= Math.abs(v) * DECIMAL_TOLERANCE && !Object.is(v, -0);
    }
    if (fits) return s;
  }
  for (let i = from; i < to; i++) {
    const v = c.value[i]!;
    if (!Number.isNaN(v) && Math.fround(v) !== v) return FLOAT;
  }
  return FLOAT32;
}

/** One series' readings as columns (what the raw store buffers: no object per reading).
 * value NaN: no value; quality: an index into the qualities passed beside. */
export interface Columns {
  ts: ArrayLike<number>;
  value: ArrayLike<number>;
  quality: ArrayLike<number>;
}

/** Encodes readings already sorted by ts (out-of-order input only costs bytes). `t0` is the
 * first reading's ts, kept beside the block (a column) rather than in it. */
export function encodeBlock(points: readonly RawPoint[]): Buffer {
  const qualities: string[] = [];
  const quality = new Uint8Array(points.length);
  points.forEach((p, i) => {
    let q = qualities.indexOf(p.quality);
    if (q < 0) q = qualities.push(p.quality) - 1;
    quality[i] = q;
  });
  const c: Columns = { ts: Float64Array.from(points, (p) => p.ts), value: Float64Array.from(points, (p) => p.value ?? NaN), quality };
  return encodeColumns(c, qualities, 0, points.length);
}

/** encodeBlock of the readings [from, to) of `c`; `qualities` names c.quality's codes. */
export function encodeColumns(c: Columns, qualities: readonly string[], from: number, to: number): Buffer {
  const w = new Writer();
  const good = qualities.indexOf('good');
  w.byte(VERSION);
  w.uvar(to - from);
  // Timestamps: delta of deltas from the first (whose value lives in the t0 column).
  let prev = to > from ? c.ts[from]! : 0;
  let prevDelta = 0;
  for (let i = from + 1; i < to; i++) {
    const d = c.ts[i]! - prev;
    w.svar(d - prevDelta);
    prevDelta = d;
    prev = c.ts[i]!;
  }
  // Exceptions: readings that are not 'good' or carry no value; their qualities listed in
  // order of first use.
  const used: number[] = [];
  let exceptions = 0;
  for (let i = from; i < to; i++) {
    if (c.quality[i] === good && !Number.isNaN(c.value[i]!)) continue;
    exceptions++;
    if (!used.includes(c.quality[i]!)) used.push(c.quality[i]!);
  }
  w.uvar(used.length);
  for (const q of used) w.str(qualities[q] ?? 'unknown');
  w.uvar(exceptions);
  let last = 0;
  for (let i = from; i < to; i++) {
    const has = !Number.isNaN(c.value[i]!);
    if (c.quality[i] === good && has) continue;
    w.uvar(i - from - last);
    last = i - from;
    w.uvar(used.indexOf(c.quality[i]!) * 2 + (has ? 1 : 0));
  }
  const scale = scaleOf(c, from, to);
  w.byte(scale);
  const m = 10 ** scale;
  let pv = 0;
  for (let i = from; i < to; i++) {
    const v = c.value[i]!;
    if (Number.isNaN(v)) continue;
    if (scale === FLOAT) w.f64(v);
    else if (scale === FLOAT32) w.f32(v);
    else {
      const n = Math.round(v * m);
      w.svar(n - pv);
      pv = n;
    }
  }
  return w.done();
}

export function decodeBlock(t0: number, data: Uint8Array): RawPoint[] {
  const r = new Reader(data);
  if (r.byte() !== VERSION) throw new Error('raw block of an unknown version');
  const n = r.uvar();
  const ts = new Array<number>(n);
  if (n > 0) ts[0] = t0;
  let delta = 0;
  for (let i = 1; i < n; i++) {
    delta += r.svar();
    ts[i] = ts[i - 1]! + delta;
  }
  const qualities: string[] = [];
  for (let q = r.uvar(); q > 0; q--) qualities.push(r.str());
  const exc = new Map<number, { quality: string; has: boolean }>();
  let at = 0;
  for (let e = r.uvar(); e > 0; e--) {
    at += r.uvar();
    const code = r.uvar();
    exc.set(at, { quality: qualities[code >> 1] ?? 'unknown', has: (code & 1) === 1 });
  }
  const scale = r.byte();
  const m = scale >= FLOAT32 ? 1 : 10 ** scale;
  let pv = 0;
  const out: RawPoint[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const e = exc.get(i);
    let value: number | null = null;
    if (!e || e.has) {
      if (scale === FLOAT) value = r.f64();
      else if (scale === FLOAT32) value = r.f32();
      else {
        pv += r.svar();
        value = pv / m;
      }
    }
    out[i] = { ts: ts[i]!, value, quality: e?.quality ?? 'good' };
  }
  return out;
}
