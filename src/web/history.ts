// The device page's chart data (GET /api/devices/:id/history): up to four public points of one
// device over 1 hour to 7 days, bucketed from the raw store, with what the page needs to draw
// them (unit, whole-number values) and how long the raw store keeps readings here.
import { z } from 'zod';
import { defaultChartPoint, wholeNumberPoint, type Point, type Profile } from '../config/profile-schema.js';

/** Series on one chart: one line each, four stay readable on a phone. */
export const MAX_SERIES = 4;
/** 7 days: the longest range the page offers. */
export const MAX_HOURS = 168;
/** Buckets per series: a line of 1000 points is smooth at any width a page has. */
export const BUCKETS = 1000;

/** The query as URLSearchParams gives it: `point` repeated, once per series. */
export const HistoryQuery = z.strictObject({
  point: z.array(z.string().max(64)).max(MAX_SERIES, `at most ${MAX_SERIES} points in one chart`).default([]),
  hours: z
    .string()
    .default('6')
    .refine((s) => /^\d{1,3}$/.test(s) && Number(s) >= 1 && Number(s) <= MAX_HOURS, `must be a whole number 1..${MAX_HOURS}`)
    .transform(Number),
});
export type HistoryQuery = z.infer<typeof HistoryQuery>;

/** URLSearchParams as the object HistoryQuery checks (`point` always a list, others single). */
export function historyQueryInput(q: URLSearchParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of new Set(q.keys())) out[k] = k === 'point' ? q.getAll(k) : q.get(k);
  return out;
}

/** The points asked for, in order, without repeats; none asked: the profile's chart default. */
export function historyPoints(profile: Pick<Profile, 'points' | 'mainPoint'>, asked: string[]): string[] {
  if (asked.length) return [...new Set(asked)];
  const d = defaultChartPoint(profile);
  return d === undefined ? [] : [d];
}

/** One series of the answer. `integer`: every value of the point is a whole number (from the
 * profile, not the data), so its axis gets whole-number ticks. The values are bucket means. */
export function seriesOf(p: Point, points: [number, number][]): { point: string; unit: string; kind: string; integer: boolean; points: [number, number][] } {
  return { point: p.id, unit: p.unit, kind: p.kind, integer: wholeNumberPoint(p), points };
}

/** Bucket width for a range: what the raw store's bucketed() uses for `BUCKETS` buckets. */
export function bucketMs(hours: number): number {
  return Math.max(1, Math.ceil((hours * 3_600_000) / BUCKETS));
}
