import type { Profile, RegisterKind } from '../src/config/profile-schema.js';
import { pointSpan } from '../src/io/modbus/read-plan.js';

type Plannable = Pick<Profile, 'points' | 'holes' | 'maxRegistersPerRead'>;

/** The true minimum number of requests under the same constraints as the planner, found by
 * dynamic programming over every way to cut the sorted points into blocks: an independent
 * check that the greedy planner is optimal. */
export function minimumRequests(p: Plannable, maxGap: number): number {
  return minimumCost(p, maxGap, () => 1);
}

/** Modbus RTU bytes of one read: request 8 (unit, fc, start, count, CRC); reply 5 (unit, fc,
 * byte count, CRC) plus the data (Modbus over Serial Line v1.02, 2.5.1). */
export function rtuReadBytes(kind: RegisterKind, count: number): number {
  const data = kind === 'coil' || kind === 'discrete' ? Math.ceil(count / 8) : 2 * count;
  return 8 + 5 + data;
}

/** The fewest RTU bytes on the wire for one scan under the planner's limits. */
export function minimumRtuBytes(p: Plannable, maxGap: number): number {
  return minimumCost(p, maxGap, rtuReadBytes);
}

/** Cheapest cut of each register kind's sorted points into reads, `cost` per read. */
function minimumCost(p: Plannable, maxGap: number, cost: (kind: RegisterKind, count: number) => number): number {
  let total = 0;
  for (const kind of ['coil', 'discrete', 'holding', 'input'] as const) {
    const bits = kind === 'coil' || kind === 'discrete';
    const maxCount = bits ? 2000 : Math.min(125, p.maxRegistersPerRead);
    const gap = bits ? maxGap * 16 : maxGap;
    const spans = p.points.filter((x) => x.register === kind).map(pointSpan).sort((a, b) => a.from - b.from || a.to - b.to);
    if (!spans.length) continue;
    const holes = p.holes.filter((h) => h.register === kind);
    const best = new Array<number>(spans.length + 1).fill(Infinity);
    best[0] = 0;
    for (let i = 1; i <= spans.length; i++) {
      for (let j = i; j >= 1; j--) {
        // Can spans[j-1 .. i-1] be one read?
        const from = spans[j - 1]!.from;
        let to = from - 1;
        let ok = true;
        for (let k = j - 1; k < i && ok; k++) {
          const s = spans[k]!;
          if (k > j - 1 && (s.from - to - 1 > gap || holes.some((h) => h.from <= s.from - 1 && h.to >= to + 1))) ok = false;
          to = Math.max(to, s.to);
        }
        if (ok && to - from + 1 <= maxCount) best[i] = Math.min(best[i]!, best[j - 1]! + cost(kind, to - from + 1));
      }
    }
    total += best[spans.length]!;
  }
  return total;
}
