// The raw store's readings waiting for the next flush, in a few typed arrays (ts, value,
// quality code, series slot: 21 bytes a reading, in arrival order) instead of the Reading
// objects themselves. Held for up to a minute, Reading objects outlived V8's young
// generation, were promoted, and old-space GCs then swung the resident set by tens of MB at
// 10,000 points (issue 14). Here a reading's object dies young; the arrays are reused from
// flush to flush, and there is no object per series either (a typed array each costs ~100 B
// of heap).
import type { Columns } from './raw-codec.js';

export interface SeriesName {
  device: string;
  point: string;
}

/** The buffer grouped by series for a flush (RawBuffer.group): the readings of slot s are
 * cols[start[s], end[s]), in time order; `slots` lists the slots holding readings. */
export interface Grouped {
  cols: Columns;
  slots: Int32Array;
  /** rank(slot) for each slot in `slots` (the series' ids). */
  rank: Float64Array;
  start: Int32Array;
  end: Int32Array;
}

export class RawBuffer {
  private slotOf = new Map<string, Map<string, number>>();
  private names: SeriesName[] = [];
  /** A ring of `size` readings from `head`, capacity a power of two. */
  private ts = new Float64Array(1024);
  /** NaN: no value. */
  private value = new Float64Array(1024);
  private quality = new Uint8Array(1024);
  private slot = new Int32Array(1024);
  private head = 0;
  /** Readings held. */
  size = 0;
  /** Quality names by code ('good' is 0). */
  readonly qualities: string[] = ['good'];
  /** Scratch for group(): reused, grows with the buffer. */
  private g = { ts: new Float64Array(0), value: new Float64Array(0), quality: new Uint8Array(0) };

  private get mask(): number {
    return this.ts.length - 1;
  }

  add(device: string, point: string, ts: number, value: number | null, quality: string): void {
    let points = this.slotOf.get(device);
    if (!points) this.slotOf.set(device, (points = new Map()));
    let s = points.get(point);
    if (s === undefined) {
      s = this.names.push({ device, point }) - 1;
      points.set(point, s);
    }
    let q = this.qualities.indexOf(quality);
    if (q < 0) q = this.qualities.push(quality) - 1;
    if (this.size === this.ts.length) this.grow();
    const i = (this.head + this.size) & this.mask;
    this.ts[i] = ts;
    this.value[i] = value ?? Number.NaN;
    this.quality[i] = q;
    this.slot[i] = s;
    this.size++;
  }

  private grow(): void {
    const cap = this.ts.length * 2;
    const mask = this.mask;
    const move = <T extends Float64Array | Uint8Array | Int32Array>(a: T, b: T): T => {
      for (let k = 0; k < this.size; k++) b[k] = a[(this.head + k) & mask]!;
      return b;
    };
    this.ts = move(this.ts, new Float64Array(cap));
    this.value = move(this.value, new Float64Array(cap));
    this.quality = move(this.quality, new Uint8Array(cap));
    this.slot = move(this.slot, new Int32Array(cap));
    this.head = 0;
  }

  /** Drops the oldest reading held (the one added first). */
  dropOldest(): void {
    if (this.size === 0) return;
    this.head = (this.head + 1) & this.mask;
    this.size--;
  }

  /** One series' readings, in arrival order. */
  each(device: string, point: string, f: (ts: number, value: number | null, quality: string) => void): void {
    const s = this.slotOf.get(device)?.get(point);
    if (s === undefined) return;
    for (let k = 0; k < this.size; k++) {
      const i = (this.head + k) & this.mask;
      if (this.slot[i] !== s) continue;
      const v = this.value[i]!;
      f(this.ts[i]!, Number.isNaN(v) ? null : v, this.qualities[this.quality[i]!]!);
    }
  }

  name(slot: number): SeriesName {
    return this.names[slot]!;
  }

  /** Readings per slot (a counting pass over the ring). */
  private counts(): Int32Array {
    const n = new Int32Array(this.names.length);
    for (let k = 0; k < this.size; k++) n[this.slot[(this.head + k) & this.mask]!]!++;
    return n;
  }

  /** The buffer grouped by series, each in time order (stable: readings with the same ts keep
   * the order they came in), the slots in the order `rank` gives (the series' ids). */
  group(rank: (slot: number) => number): Grouped {
    if (this.g.ts.length < this.size) {
      const cap = this.ts.length;
      this.g = { ts: new Float64Array(cap), value: new Float64Array(cap), quality: new Uint8Array(cap) };
    }
    // Typed arrays only: this runs inside the flush's transaction, long enough for anything
    // on the JS heap to be promoted (a Map of 10,000 slots was, at every flush).
    const count = this.counts();
    let n = 0;
    for (let s = 0; s < count.length; s++) if (count[s]! > 0) n++;
    const slots = new Int32Array(n);
    const ranks = new Float64Array(this.names.length);
    n = 0;
    for (let s = 0; s < count.length; s++) {
      if (count[s]! === 0) continue;
      slots[n++] = s;
      ranks[s] = rank(s);
    }
    slots.sort((a, b) => ranks[a]! - ranks[b]!);
    const start = new Int32Array(this.names.length);
    const end = new Int32Array(this.names.length);
    let at = 0;
    for (const s of slots) {
      start[s] = end[s] = at;
      at += count[s]!;
    }
    const g = this.g;
    for (let k = 0; k < this.size; k++) {
      const i = (this.head + k) & this.mask;
      const o = end[this.slot[i]!]!++;
      g.ts[o] = this.ts[i]!;
      g.value[o] = this.value[i]!;
      g.quality[o] = this.quality[i]!;
    }
    for (const s of slots) sortRange(g, start[s]!, end[s]!);
    return { cols: g, slots, rank: ranks, start, end };
  }

  /** Empties the buffer. Series that sent nothing since the last clear are forgotten (a
   * device removed). */
  clear(): void {
    const count = this.counts();
    this.head = 0;
    this.size = 0;
    if (count.some((c) => c === 0)) this.renumber((s) => count[s]! > 0);
  }

  /** Drops every reading of the series for which `gone` is true (RawStore.reclassify). */
  purge(gone: (device: string, point: string) => boolean): void {
    const drop = this.names.map((n) => gone(n.device, n.point));
    let w = 0;
    for (let k = 0; k < this.size; k++) {
      const i = (this.head + k) & this.mask;
      if (drop[this.slot[i]!]) continue;
      const o = (this.head + w++) & this.mask;
      this.ts[o] = this.ts[i]!;
      this.value[o] = this.value[i]!;
      this.quality[o] = this.quality[i]!;
      this.slot[o] = this.slot[i]!;
    }
    this.size = w;
    this.renumber((s) => !drop[s]);
  }

  /** Keeps only the slots for which `keep` is true, renumbering those held in the ring. */
  private renumber(keep: (slot: number) => boolean): void {
    const next = new Int32Array(this.names.length).fill(-1);
    const names: SeriesName[] = [];
    this.names.forEach((n, s) => {
      if (keep(s)) next[s] = names.push(n) - 1;
    });
    for (let k = 0; k < this.size; k++) {
      const i = (this.head + k) & this.mask;
      this.slot[i] = next[this.slot[i]!]!;
    }
    this.names = names;
    this.slotOf = new Map();
    names.forEach((n, s) => {
      let points = this.slotOf.get(n.device);
      if (!points) this.slotOf.set(n.device, (points = new Map()));
      points.set(n.point, s);
    });
  }
}

/** Sorts [from, to) of the columns by ts, stably. Almost always sorted already: a series is
 * polled in order (a clock step back is not). */
function sortRange(c: { ts: Float64Array; value: Float64Array; quality: Uint8Array }, from: number, to: number): void {
  let sorted = true;
  for (let i = from + 1; i < to && sorted; i++) sorted = c.ts[i]! >= c.ts[i - 1]!;
  if (sorted) return;
  const idx = Array.from({ length: to - from }, (_, k) => from + k).sort((a, b) => c.ts[a]! - c.ts[b]! || a - b);
  const ts = c.ts.slice(from, to);
  const value = c.value.slice(from, to);
  const quality = c.quality.slice(from, to);
  idx.forEach((src, k) => {
    c.ts[from + k] = ts[src - from]!;
    c.value[from + k] = value[src - from]!;
    c.quality[from + k] = quality[src - from]!;
  });
}
