// The report as CSV, long form: one row per community, facility, period and indicator (and
// per device and point where the indicator has one), so a spreadsheet pivots it any way. A
// withheld personal figure is the word "suppressed", an unobserved one is empty: neither is 0.
import type { Cell, OperationReport } from './evaluate.js';

const HEADER = ['community', 'facility', 'period', 'period_start', 'period_end', 'indicator', 'device', 'point', 'value', 'detail'];

function field(v: string | number | null): string {
  const s = v === null ? '' : String(v);
  // RFC 4180 quoting; a leading = + - @ is prefixed so a spreadsheet never runs it as a formula.
  const safe = /^[=+\-@\t\r]/.test(s) && !/^-?\d/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function cellValue(c: Cell): string | number | null {
  if (c.value !== null) return c.value;
  return c.suppressedWindows > 0 ? 'suppressed' : null;
}

function cellDetail(c: Cell): string {
  return `released ${c.releasedWindows} windows, suppressed ${c.suppressedWindows}`;
}

export function renderCsv(r: OperationReport): string {
  const rows: (string | number | null)[][] = [HEADER];
  const iso = (ms: number) => new Date(ms).toISOString();
  for (const c of r.communities) {
    for (const f of c.facilities) {
      for (const p of f.periods) {
        const row = (indicator: string, device: string | null, point: string | null, value: string | number | null, detail = '') => rows.push([c.communityCode, f.facility, p.period, iso(p.start), iso(p.end), indicator, device, point, value, detail]);
        row('availability', null, null, p.availability.value, `observed ${p.availability.observedSeconds} s, observed share ${p.availability.observedShare ?? ''}`);
        if (p.meals) row('meals', null, null, p.meals.value, `observed ${p.meals.observedWindows} windows, unobserved ${p.meals.unobservedWindows}`);
        for (const x of p.personal) {
          const noisy = x.noisy ? '; noisy (differential privacy)' : '';
          row('personal_measurements', x.device, x.point, cellValue(x.measurements), cellDetail(x.measurements) + noisy);
          row('personal_resident_windows', x.device, x.point, cellValue(x.residentWindows), cellDetail(x.residentWindows) + noisy);
          for (const [band, b] of Object.entries(x.bands ?? {})) row(`personal_band:${band}`, x.device, x.point, cellValue(b), cellDetail(b) + noisy);
        }
        for (const x of p.coldChain) row('cold_chain_in_range', x.device, x.point, x.value, `${x.rule}; observed ${x.observedSeconds} s, in range ${x.inRangeSeconds} s`);
        for (const x of p.airQuality) row('air_quality_in_range', x.device, x.point, x.value, `${x.rule}; observed ${x.observedSeconds} s, in range ${x.inRangeSeconds} s (window means)`);
        if (p.disinfectionHours) row('disinfection_hours', null, null, p.disinfectionHours.value, `observed ${p.disinfectionHours.observedWindows} windows, unobserved ${p.disinfectionHours.unobservedWindows}`);
        const a = p.alarms;
        row('alarms_raised', null, null, a.raised, `critical ${a.critical}, warning ${a.warning}`);
        row('alarms_cleared', null, null, a.cleared);
        row('alarms_open', null, null, a.open);
        row('alarm_clear_seconds_median', null, null, a.clearSecondsMedian);
        row('alarm_clear_seconds_max', null, null, a.clearSecondsMax);
      }
    }
    for (const g of c.completeness) {
      const row = (indicator: string, value: number | null, detail = '') => rows.push([c.communityCode, null, null, iso(r.from), iso(r.to), indicator, g.gatewayId, null, value, detail]);
      row('items_received', g.received, `seq ${g.firstSeq ?? ''}..${g.lastSeq ?? ''}`);
      row('items_missing', g.missing, g.gaps.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(' '));
      row('rows_shed_in_range', g.shedInRange?.rows ?? null, g.shed ? `gateway totals: shed ${g.shed.rows} rows, dropped ${g.shed.dropped}` : 'no status in range');
    }
  }
  return `${rows.map((r) => r.map(field).join(',')).join('\r\n')}\r\n`;
}
