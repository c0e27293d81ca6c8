// Report periods: calendar days or ISO weeks (Monday first) in a fixed UTC offset, China time
// (+08:00) by default, clipped to the report's [from, to).
export type PeriodKind = 'day' | 'week';

export interface Period {
  /** 2026-12-01, or the Monday of the week: 2026-W49 (2026-11-30). */
  label: string;
  start: number;
  end: number;
}

const DAY = 86_400_000;

/** "+08:00" / "-05:30" / "Z" in minutes; undefined when malformed. */
export function parseUtcOffset(text: string): number | undefined {
  if (text === 'Z' || text === '+00:00') return 0;
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(text);
  if (!m || Number(m[2]) > 14 || Number(m[3]) > 59) return undefined;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

/** A date (YYYY-MM-DD, midnight in the offset) or a full ISO 8601 time with its own zone. */
export function parseTime(text: string, offsetMin: number): number | undefined {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (d) {
    const ms = Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3])) - offsetMin * 60_000;
    return new Date(ms + offsetMin * 60_000).toISOString().slice(0, 10) === text ? ms : undefined;
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

function localDate(ms: number, offsetMin: number): string {
  return new Date(ms + offsetMin * 60_000).toISOString().slice(0, 10);
}

/** ISO week label of a local date (the week's Thursday decides the year). */
function isoWeek(localMidnightUtc: number): string {
  const d = new Date(localMidnightUtc);
  const dow = (d.getUTCDay() + 6) % 7; // Monday 0
  const thursday = new Date(localMidnightUtc + (3 - dow) * DAY);
  const y = thursday.getUTCFullYear();
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(y, 0, 1)) / DAY / 7);
  return `${y}-W${String(week).padStart(2, '0')}`;
}

/** The periods covering [from, to), each clipped to it. */
export function periods(from: number, to: number, kind: PeriodKind, offsetMin: number): Period[] {
  const off = offsetMin * 60_000;
  const out: Period[] = [];
  // Local midnight at or before `from`, then back to the Monday for weeks.
  let start = Math.floor((from + off) / DAY) * DAY - off;
  if (kind === 'week') start -= ((new Date(start + off).getUTCDay() + 6) % 7) * DAY;
  const step = kind === 'day' ? DAY : 7 * DAY;
  for (let s = start; s < to; s += step) {
    const label = kind === 'day' ? localDate(s, offsetMin) : `${isoWeek(s + off)} (${localDate(s, offsetMin)})`;
    out.push({ label, start: Math.max(s, from), end: Math.min(s + step, to) });
  }
  return out;
}

/** Index of the period holding ts, or -1. */
export function periodIndex(ps: readonly Period[], ts: number): number {
  let lo = 0;
  let hi = ps.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const p = ps[mid]!;
    if (ts < p.start) hi = mid - 1;
    else if (ts >= p.end) lo = mid + 1;
    else return mid;
  }
  return -1;
}
