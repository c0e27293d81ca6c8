// The device chart's rules (src/web/public/chart-axes.js): series and units allowed together,
// time labels that never repeat at any range, whole-number ticks for whole-number points.
import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain browser JavaScript, no types
import * as ax from '../../src/web/public/chart-axes.js';

const H = 3600;

/** Ticks every `incr` seconds over [from, to] as a time axis places them: on multiples of the
 * step in local time (days from local midnight). */
function splits(from: number, to: number, incr: number): number[] {
  const tz = new Date(from * 1000).getTimezoneOffset() * 60;
  const out: number[] = [];
  for (let s = Math.ceil((from - tz) / incr) * incr + tz; s <= to; s += incr) out.push(s);
  return out;
}

describe('chart: series and units', () => {
  const v = (id: string) => ({ id, unit: 'V' });
  it('takes up to four series and two units; a fifth series or a third unit is refused', () => {
    expect(ax.refusal([], v('a'))).toBeNull();
    expect(ax.refusal([v('a'), { id: 'b', unit: 'A' }], { id: 'c', unit: 'W' })).toBe('units');
    expect(ax.refusal([v('a'), { id: 'b', unit: 'A' }], v('c'))).toBeNull();
    expect(ax.refusal([v('a'), v('b'), v('c'), v('d')], v('e'))).toBe('max');
    // A point without a unit (a counter) is a unit of its own.
    expect(ax.refusal([v('a'), { id: 'n', unit: '' }], { id: 'm', unit: '' })).toBeNull();
    expect(ax.refusal([v('a'), { id: 'n', unit: '' }], { id: 'w', unit: 'W' })).toBe('units');
  });

  it('puts the first unit on the left axis and the second on the right', () => {
    expect([...ax.unitScales([v('a'), { id: 'b', unit: 'A' }, v('c')])]).toEqual([['V', 'y'], ['A', 'y2']]);
  });

  it('gives each new series a colour no other series has', () => {
    const sel = [{ id: 'a', colour: ax.COLOURS[0] }, { id: 'c', colour: ax.COLOURS[2] }];
    expect(ax.freeColour(sel)).toBe(ax.COLOURS[1]);
  });
});

describe('chart: time labels', () => {
  // A fixed day with a midnight in it, and "now" at odd and at round times.
  const ends = [Date.parse('2026-12-02T05:31:37'), Date.parse('2026-12-02T06:00:00'), Date.parse('2026-12-01T00:00:00')].map((t) => t / 1000);
  it.each(ax.RANGES as number[])('no two ticks read the same over %i h, whatever step is chosen', (hours) => {
    for (const to of ends) {
      for (const incr of ax.timeIncrs(hours) as number[]) {
        const labels: string[] = ax.timeLabels(splits(to - hours * H, to, incr), incr);
        expect(new Set(labels).size, `${hours} h, step ${incr} s: ${labels.join(' ')}`).toBe(labels.length);
        if (hours <= 24) for (const l of labels) expect(l).toMatch(/^(\d\d:\d\d|\d\d-\d\d|\d\d-\d\d \d\d:\d\d)$/);
        else for (const l of labels) expect(l).toMatch(/^\d\d-\d\d$/);
      }
    }
  });

  it('labels hours HH:mm with the date at midnight, and days MM-DD', () => {
    const mid = Date.parse('2026-12-02T00:00:00') / 1000;
    expect(ax.timeLabels([mid - 2 * H, mid - H, mid, mid + H], H)).toEqual(['22:00', '23:00', '12-02', '01:00']);
    expect(ax.timeLabels([mid, mid + 86400], 86400)).toEqual(['12-02', '12-03']);
    // Both ends of a 24 h range on a tick: the second 06:00 gets its date.
    expect(ax.timeLabels([mid + 6 * H, mid + 12 * H, mid + 30 * H], 6 * H)).toEqual(['06:00', '12:00', '12-03 06:00']);
    // Steps are never under a minute (HH:mm would repeat) and whole days past 24 h.
    expect(Math.min(...(ax.timeIncrs(1) as number[]))).toBe(60);
    expect((ax.timeIncrs(168) as number[]).every((s) => s % 86400 === 0)).toBe(true);
  });
});

describe('chart: value ticks', () => {
  it('whole-number axes step by 1, 2, 5, 10 ... and span whole numbers', () => {
    expect((ax.INTEGER_INCRS as number[]).slice(0, 7)).toEqual([1, 2, 5, 10, 20, 50, 100]);
    expect((ax.INTEGER_INCRS as number[]).every((n) => Number.isInteger(n))).toBe(true);
    expect(ax.integerRange(3.2, 7.9)).toEqual([3, 8]);
    expect(ax.integerRange(5, 5)).toEqual([4, 6]);
    expect(ax.integerRange(null, null)).toEqual([0, 1]);
    expect(ax.valueLabels([4, 5, 6], 1)).toEqual(['4', '5', '6']);
  });

  it('fractional axes show the decimals of their step', () => {
    expect(ax.valueLabels([0, 0.5, 1], 0.5)).toEqual(['0.0', '0.5', '1.0']);
    expect(ax.valueLabels([2.25, 2.5], 0.25)).toEqual(['2.25', '2.50']);
    expect(ax.valueLabels([230, 240], 10)).toEqual(['230', '240']);
  });
});

describe('chart: data', () => {
  it('aligns series of different times on one x array, null where a series has no value', () => {
    const d = ax.alignSeries([{ points: [[1000, 1], [3000, 3]] }, { points: [[2000, 20], [3000, 30]] }]);
    expect(d).toEqual([[1, 2, 3], [1, null, 3], [null, 20, 30]]);
  });

  it('folds a live reading into the last bucket mean, or opens the next bucket, and drops what fell out of the range', () => {
    const s: { points: number[][]; lastN?: number } = { points: [[500, 10], [1500, 4]] };
    ax.addReading(s, 1700, 6, 1000, 0);
    expect(s.points).toEqual([[500, 10], [1500, 5]]);
    ax.addReading(s, 1900, 8, 1000, 0);
    expect(s.points[1]).toEqual([1500, 6]);
    ax.addReading(s, 2100, 1, 1000, 1000);
    expect(s.points).toEqual([[1500, 6], [2500, 1]]);
  });
});
