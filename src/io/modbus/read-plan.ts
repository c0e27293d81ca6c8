// Read planning: cover a device's points with the fewest Modbus requests. Points of one
// register kind are sorted by address and merged greedily while the block stays within the
// per-request limit, the gap between neighbours is at most maxGap, and no hole lies between
// them. Greedy left-to-right packing is optimal here: every constraint only limits how far a
// block may extend to the right, so taking the most points per block never costs a request.
import type { Hole, Point, RegisterKind } from '../../config/profile-schema.js';
import { pointSpan } from '../../config/profile-schema.js';

// pointSpan lives with the profile schema (config must not import from io/); re-exported for
// the modules that take it from here.
export { pointSpan };

export interface ReadBlock {
  register: RegisterKind;
  start: number;
  count: number;
  points: Point[];
}

export interface PlanOptions {
  /** Largest run of unused addresses read to join two points in one request (registers;
   * coils and discretes allow 16 times as many bits, one register's worth each). */
  maxGap: number;
  /** Largest register count per request (at most 125 by the protocol). */
  maxRegisters: number;
}

/** Most bits one read-coils / read-discrete-inputs request may ask (MBAP v1.1b3, 6.1/6.2). */
const MAX_BITS = 2000;
const KINDS: RegisterKind[] = ['coil', 'discrete', 'holding', 'input'];

export function planReads(points: readonly Point[], holes: readonly Hole[], opts: PlanOptions): ReadBlock[] {
  const blocks: ReadBlock[] = [];
  for (const kind of KINDS) {
    const bits = kind === 'coil' || kind === 'discrete';
    const maxCount = bits ? MAX_BITS : Math.min(125, opts.maxRegisters);
    const maxGap = bits ? opts.maxGap * 16 : opts.maxGap;
    const kindHoles = holes.filter((h) => h.register === kind);
    const pts = points.filter((p) => p.register === kind).sort((a, b) => a.address - b.address);
    let cur: { from: number; to: number; points: Point[] } | null = null;
    for (const p of pts) {
      const s = pointSpan(p);
      if (cur) {
        const to = Math.max(cur.to, s.to);
        const gap = s.from - cur.to - 1;
        const fits = to - cur.from + 1 <= maxCount && gap <= maxGap && !kindHoles.some((h) => h.from <= s.from - 1 && h.to >= cur!.to + 1);
        if (fits) {
          cur.to = to;
          cur.points.push(p);
          continue;
        }
        blocks.push({ register: kind, start: cur.from, count: cur.to - cur.from + 1, points: cur.points });
      }
      cur = { from: s.from, to: s.to, points: [p] };
    }
    if (cur) blocks.push({ register: kind, start: cur.from, count: cur.to - cur.from + 1, points: cur.points });
  }
  return blocks;
}

/** The addresses inside a block that no point uses: where an unknown hole may hide. */
export function unusedRanges(block: ReadBlock): { from: number; to: number }[] {
  const spans = block.points.map(pointSpan).sort((a, b) => a.from - b.from);
  const out: { from: number; to: number }[] = [];
  let next = block.start;
  for (const s of spans) {
    if (s.from > next) out.push({ from: next, to: s.from - 1 });
    next = Math.max(next, s.to + 1);
  }
  return out;
}

/** Points that share a register (the bit points of one word, values that overlap), with the
 * addresses they cover. A learning read never separates them: one reply carries them all. */
export interface RegisterGroup {
  from: number;
  to: number;
  points: Point[];
}

/** The points' register groups in address order (one register kind). */
export function registerGroups(points: readonly Point[]): RegisterGroup[] {
  const spans = points.map((p) => ({ p, s: pointSpan(p) })).sort((a, b) => a.s.from - b.s.from || a.s.to - b.s.to);
  const out: RegisterGroup[] = [];
  for (const { p, s } of spans) {
    const last = out.at(-1);
    if (last && s.from <= last.to) {
      last.to = Math.max(last.to, s.to);
      last.points.push(p);
    } else {
      out.push({ from: s.from, to: s.to, points: [p] });
    }
  }
  return out;
}

/** One read of consecutive groups: from the first one's start to the last one's end. */
export function groupsBlock(register: RegisterKind, groups: readonly RegisterGroup[]): ReadBlock {
  const start = groups[0]!.from;
  return { register, start, count: groups.at(-1)!.to - start + 1, points: groups.flatMap((g) => g.points) };
}

/** Where bisection cuts a refused run of two or more groups: before index i, at the widest
 * unused gap among the middle half of the boundaries (ties: nearest the middle). A firmware's
 * missing addresses are most often a reserved range between register clusters, the profile's
 * widest gaps: cut there, both halves are accepted and the refused read costs two more. Staying
 * in the middle half keeps each part to about three quarters of the groups, so the depth stays
 * logarithmic; with no gaps at all this is the plain middle. */
export function bisectionCut(groups: readonly RegisterGroup[]): number {
  const n = groups.length;
  const lo = Math.max(1, Math.floor(n / 4));
  const hi = Math.min(n - 1, Math.ceil((3 * n) / 4));
  let best = -1;
  let cut = Math.ceil(n / 2);
  for (let i = lo; i <= hi; i++) {
    const gap = groups[i]!.from - groups[i - 1]!.to - 1;
    if (gap > best || (gap === best && Math.abs(2 * i - n) < Math.abs(2 * cut - n))) {
      best = gap;
      cut = i;
    }
  }
  return cut;
}
