// The device chart's rules, apart from the DOM and uPlot so that Node can test them: which
// points may share a chart (at most 4 series, at most two units: a left and a right axis),
// time ticks whose labels never repeat, and whole-number ticks for whole-number points.

export const MAX_SERIES = 4;
export const COLOURS = ['#1565c0', '#c62828', '#2e7d32', '#8e24aa'];
/** The ranges offered, in hours: the history route accepts 1..168. */
export const RANGES = [1, 6, 24, 168];

const MIN = 60;
const HOUR = 3600;
const DAY = 86400;

/** Why `cand` ({id, unit}) cannot join `sel` (the series shown): 'max' (four already), 'units'
 * (it would be a third unit), or null when it can. */
export function refusal(sel, cand) {
  if (sel.some((s) => s.id === cand.id)) return null;
  if (sel.length >= MAX_SERIES) return 'max';
  const units = new Set(sel.map((s) => s.unit ?? ''));
  if (!units.has(cand.unit ?? '') && units.size >= 2) return 'units';
  return null;
}

/** The y scale of each unit in order of first appearance: the first unit left ('y'), the
 * second right ('y2'). */
export function unitScales(sel) {
  const out = new Map();
  for (const s of sel) if (!out.has(s.unit ?? '')) out.set(s.unit ?? '', out.size === 0 ? 'y' : 'y2');
  return out;
}

/** The first colour no selected series uses. */
export function freeColour(sel) {
  return COLOURS.find((c) => !sel.some((s) => s.colour === c)) ?? COLOURS[sel.length % COLOURS.length];
}

/** Tick steps in seconds for a range. Up to a day: whole minutes to 12 hours, labelled HH:mm;
 * longer: whole days, labelled MM-DD. A step is never finer than its label, so two ticks
 * cannot read the same. */
export function timeIncrs(hours) {
  if (hours > 24) return [DAY, 2 * DAY, 3 * DAY, 7 * DAY];
  return [MIN, 2 * MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, HOUR, 2 * HOUR, 3 * HOUR, 4 * HOUR, 6 * HOUR, 12 * HOUR];
}

const pad = (n) => String(n).padStart(2, '0');
const hhmm = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}`;
const mmdd = (d) => `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;

/** Labels of time ticks (`splits` in seconds, local time): MM-DD for day steps; HH:mm below,
 * with MM-DD at midnight (the day a chart of hours crosses into). A label that would repeat
 * one already given (a 24 h range whose both ends fall on a tick) gets its date as well. */
export function timeLabels(splits, incr) {
  const seen = new Set();
  return splits.map((s) => {
    const d = new Date(s * 1000);
    let text = incr >= DAY || (d.getHours() === 0 && d.getMinutes() === 0) ? mmdd(d) : hhmm(d);
    if (seen.has(text)) text = `${mmdd(d)} ${hhmm(d)}`;
    seen.add(text);
    return text;
  });
}

/** Tick steps for an axis of whole numbers: 1, 2, 5, 10, 20, 50 ... never a fraction. */
export const INTEGER_INCRS = Array.from({ length: 30 }, (_, i) => [1, 2, 5][i % 3] * 10 ** Math.floor(i / 3));

/** Labels of value ticks: as many decimals as the step has (none for a whole step). */
export function valueLabels(splits, incr) {
  let dec = 0;
  while (dec < 6 && Math.abs(Math.round(incr * 10 ** dec) - incr * 10 ** dec) > 1e-9 * 10 ** dec) dec++;
  return splits.map((v) => (v == null ? '' : Math.abs(v) >= 1e6 ? v.toExponential(2) : v.toFixed(dec)));
}

/** A whole-number axis spans whole numbers, at least 1 wide (a counter that stands still). */
export function integerRange(min, max) {
  if (min == null || max == null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  let lo = Math.floor(min);
  let hi = Math.ceil(max);
  if (hi - lo < 1) {
    lo -= 1;
    hi += 1;
  }
  return [lo, hi];
}

/** One x array for every series (the union of their times) and one y array each, null where
 * a series has no value at that time. `series`: [{points: [[ms, value], ...]}]. */
export function alignSeries(series) {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  const ys = series.map((s) => {
    const y = new Array(xs.length).fill(null);
    for (const [ts, v] of s.points) y[at.get(ts)] = v == null ? null : Number(v);
    return y;
  });
  return [xs.map((x) => x / 1000), ...ys];
}

/** A live reading into a series of bucket means (`bucketMs` wide, stamped at the middle, as the
 * history route gives them): the last bucket's mean updated, or a new bucket. `acc` remembers
 * the count of the last bucket. Points before `from` are dropped. */
export function addReading(s, ts, value, bucketMs, from) {
  const b = Math.floor(ts / bucketMs);
  const mid = b * bucketMs + Math.floor(bucketMs / 2);
  const last = s.points[s.points.length - 1];
  if (last && last[0] === mid) {
    const n = s.lastN ?? 1;
    last[1] = (last[1] * n + value) / (n + 1);
    s.lastN = n + 1;
  } else if (!last || mid > last[0]) {
    s.points.push([mid, value]);
    s.lastN = 1;
  }
  dropBefore(s, from);
}

/** Drops the points of a series older than `from` (the range moved on). */
export function dropBefore(s, from) {
  let i = 0;
  while (i < s.points.length && s.points[i][0] < from) i++;
  if (i) s.points.splice(0, i);
}
