// The raw store's readings waiting for the next flush, per series in typed arrays (ts, value,
// quality code: 17 bytes a reading) instead of the Reading objects themselves. Held for up to
// a minute, Reading objects outlived V8's young generation, were promoted and then collected
// by old-space GCs that swung the resident set by tens of MB at 10,000 points (issue 14).
// Here a reading's object dies young; the arrays are reused from flush to flush.
import type { Columns } from './raw-codec.js';

export class SeriesBuffer implements Columns {
  ts = new Float64Array(8);
  /** NaN: no value. */
  value = new Float64Array(8);
  quality = new Uint8Array(8);
  /** The readings held are [head, end): the oldest may have been dropped from the front. */
  head = 0;
  end = 0;

  constructor(
    readonly device: string,
    readonly point: string,
  ) {}

  get length(): number {
    return this.end - this.head;
  }

  push(ts: number, value: number, quality: number): void {
    if (this.end === this.ts.length) this.grow();
    this.ts[this.end] = ts;
    this.value[this.end] = value;
    this.quality[this.end] = quality;
    this.end++;
  }

  /** Moves what is held to the front, doubling the room if it is more than half full. */
  private grow(): void {
    const n = this.length;
    const cap = n * 2 > this.ts.length ? this.ts.length * 2 : this.ts.length;
    const move = <T extends Float64Array | Uint8Array>(a: T, b: T): T => {
      b.set(a.subarray(this.head, this.end));
      return b;
    };
    this.ts = move(this.ts, new Float64Array(cap));
    this.value = move(this.value, new Float64Array(cap));
    this.quality = move(this.quality, new Uint8Array(cap));
    this.head = 0;
    this.end = n;
  }

  /** In time order? (Almost always: a series is polled in order. A clock step back is not.) */
  sorted(): boolean {
    for (let i = this.head + 1; i < this.end; i++) if (this.ts[i]! < this.ts[i - 1]!) return false;
    return true;
  }

  /** Sorts by ts, stably (readings with the same ts keep the order they were taken in). */
  sort(): void {
    const idx = Array.from({ length: this.length }, (_, i) => this.head + i).sort((a, b) => this.ts[a]! - this.ts[b]! || a - b);
    const ts = this.ts.slice();
    const value = this.value.slice();
    const quality = this.quality.slice();
    idx.forEach((from, i) => {
      this.ts[this.head + i] = ts[from]!;
      this.value[this.head + i] = value[from]!;
      this.quality[this.head + i] = quality[from]!;
    });
  }
}

export class RawBuffer {
  private readonly byDevice = new Map<string, Map<string, number>>();
  private slots: SeriesBuffer[] = [];
  /** Slot of every reading held, in arrival order (a ring): which series holds the oldest. */
  private order = new Int32Array(1024);
  private orderHead = 0;
  /** Readings held. */
  size = 0;
  /** Quality names by code ('good' is 0). */
  readonly qualities: string[] = ['good'];

  add(device: string, point: string, ts: number, value: number | null, quality: string): void {
    let points = this.byDevice.get(device);
    if (!points) this.byDevice.set(device, (points = new Map()));
    let slot = points.get(point);
    if (slot === undefined) {
      slot = this.slots.push(new SeriesBuffer(device, point)) - 1;
      points.set(point, slot);
    }
    let q = this.qualities.indexOf(quality);
    if (q < 0) q = this.qualities.push(quality) - 1;
    this.slots[slot]!.push(ts, value ?? NaN, q);
    if (this.size === this.order.length) this.growOrder();
    this.order[(this.orderHead + this.size) % this.order.length] = slot;
    this.size++;
  }

  private growOrder(): void {
    const next = new Int32Array(this.order.length * 2);
    for (let i = 0; i < this.size; i++) next[i] = this.order[(this.orderHead + i) % this.order.length]!;
    this.order = next;
    this.orderHead = 0;
  }

  /** Drops the oldest reading held (the one added first). */
  dropOldest(): void {
    if (this.size === 0) return;
    this.slots[this.order[this.orderHead]!]!.head++;
    this.orderHead = (this.orderHead + 1) % this.order.length;
    this.size--;
  }

  get(device: string, point: string): SeriesBuffer | undefined {
    const slot = this.byDevice.get(device)?.get(point);
    return slot === undefined ? undefined : this.slots[slot];
  }

  /** The series holding readings. */
  series(): SeriesBuffer[] {
    return this.slots.filter((s) => s.length > 0);
  }

  /** Empties the buffer. A series that received nothing since the last clear gives up its
   * arrays (a device removed); the others keep them for the next minute. */
  clear(): void {
    this.keep((s) => s.length > 0);
  }

  /** Drops every reading of the series for which `gone` is true (RawStore.reclassify). */
  purge(gone: (device: string, point: string) => boolean): void {
    const left: number[] = [];
    for (let i = 0; i < this.size; i++) {
      const s = this.slots[this.order[(this.orderHead + i) % this.order.length]!]!;
      if (!gone(s.device, s.point)) left.push(i);
    }
    const order = left.map((i) => this.order[(this.orderHead + i) % this.order.length]!);
    const kept = this.slots.map((s) => !gone(s.device, s.point));
    // Keep the purged series' readings out of the rebuilt order: slots are renumbered below.
    const renumber = this.slots.map(() => -1);
    const slots: SeriesBuffer[] = [];
    this.slots.forEach((s, i) => {
      if (kept[i]) renumber[i] = slots.push(s) - 1;
    });
    this.rebuild(slots);
    this.order = new Int32Array(Math.max(1024, order.length));
    order.forEach((slot, i) => (this.order[i] = renumber[slot]!));
    this.orderHead = 0;
    this.size = order.length;
  }

  private keep(f: (s: SeriesBuffer) => boolean): void {
    const slots = this.slots.filter(f);
    for (const s of slots) s.head = s.end = 0;
    this.rebuild(slots);
    this.orderHead = 0;
    this.size = 0;
  }

  private rebuild(slots: SeriesBuffer[]): void {
    this.slots = slots;
    this.byDevice.clear();
    slots.forEach((s, i) => {
      let points = this.byDevice.get(s.device);
      if (!points) this.byDevice.set(s.device, (points = new Map()));
      points.set(s.point, i);
    });
  }
}
