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
