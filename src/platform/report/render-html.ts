// The report as one self-contained HTML page: inline CSS and inline SVG bar charts drawn here,
// no script, no external URL, so it opens offline and can be mailed. Every text from the
// database (ids, codes, point names) is escaped.
import type { Cell, FacilityPeriod, OperationReport } from './evaluate.js';

export function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const pct = (v: number | null) => (v === null ? '<span class="na">unobserved</span>' : `${(v * 100).toFixed(1)} %`);
const num = (v: number | null) => (v === null ? '<span class="na">unobserved</span>' : esc(Number(v.toFixed(2))));
function cell(c: Cell): string {
  if (c.value === null) return c.suppressedWindows > 0 ? '<span class="sup">suppressed</span>' : '<span class="na">none</span>';
  return `${esc(c.value)}${c.suppressedWindows ? ` <span class="sup">(+${c.suppressedWindows} windows suppressed)</span>` : ''}`;
}

/** Vertical bars, one per period; null draws a hatched "unobserved" slot, never a 0 bar. */
function bars(title: string, labels: string[], values: (number | null)[], max: number, fmt: (v: number) => string): string {
  const w = 640;
  const h = 160;
  const pad = 28;
  const slot = (w - pad) / Math.max(1, values.length);
  const top = max > 0 ? max : 1;
  const parts = values.map((v, i) => {
    const x = pad + i * slot + slot * 0.15;
    const bw = slot * 0.7;
    if (v === null) return `<rect x="${x.toFixed(1)}" y="${pad}" width="${bw.toFixed(1)}" height="${h - 2 * pad}" class="unobs"><title>${esc(labels[i]!)}: unobserved</title></rect>`;
    const bh = ((h - 2 * pad) * v) / top;
    return `<rect x="${x.toFixed(1)}" y="${(h - pad - bh).toFixed(1)}" width="${bw.toFixed(1)}" height="${bh.toFixed(1)}" class="bar"><title>${esc(labels[i]!)}: ${esc(fmt(v))}</title></rect>`;
  });
  const ticks = labels.length <= 14 ? labels.map((l, i) => `<text x="${(pad + i * slot + slot / 2).toFixed(1)}" y="${h - 8}" text-anchor="middle">${esc(l.slice(5, 10))}</text>`).join('') : '';
  return `<figure><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}"><line x1="${pad}" y1="${h - pad}" x2="${w}" y2="${h - pad}" class="axis"/><text x="2" y="${pad + 4}">${esc(fmt(top))}</text>${parts.join('')}${ticks}</svg></figure>`;
}

function facilityTable(periods: FacilityPeriod[]): string {
  const rows = periods.map((p) => {
    const cold = p.coldChain.map((c) => `${esc(c.device)}.${esc(c.point)}: ${pct(c.value)}`).join('<br>') || '—';
    const personal = p.personal.map((x) => `${esc(x.device)}.${esc(x.point)}: ${cell(x.measurements)} measurements, ${cell(x.residentWindows)} resident-windows${x.noisy ? ' (noisy)' : ''}`).join('<br>') || '—';
    const a = p.alarms;
    const alarms = `${a.raised} raised (${a.critical} critical), ${a.cleared} cleared${a.clearSecondsMedian !== null ? `, median ${Math.round(a.clearSecondsMedian)} s to clear` : ''}${a.open ? `, <b>${a.open} open</b>` : ''}`;
    const air = p.airQuality.map((c) => `${esc(c.device)}.${esc(c.point)}: ${pct(c.value)}`).join('<br>') || '—';
    return `<tr><td>${esc(p.period)}</td><td>${pct(p.availability.value)}</td><td>${pct(p.availability.observedShare)}</td><td>${p.meals ? num(p.meals.value) : '—'}</td><td>${cold}</td><td>${air}</td><td>${p.disinfectionHours ? num(p.disinfectionHours.value) : '—'}</td><td>${personal}</td><td>${alarms}</td></tr>`;
  });
  return `<table><thead><tr><th>Period</th><th>Availability</th><th>Observed</th><th>Meals</th><th>Cold chain in range</th><th>Indoor air in range</th><th>UV lamp hours</th><th>Health station (released figures)</th><th>Alarms</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

export function renderHtml(r: OperationReport): string {
  const off = r.utcOffsetMin;
  const zone = `UTC${off >= 0 ? '+' : '-'}${String(Math.floor(Math.abs(off) / 60)).padStart(2, '0')}:${String(Math.abs(off) % 60).padStart(2, '0')}`;
  const sections = r.communities.map((c) => {
    const facilities = c.facilities.map((f) => {
      const labels = f.periods.map((p) => p.period);
      const charts = [bars(`Availability, ${f.facility}`, labels, f.periods.map((p) => p.availability.value), 1, (v) => `${(v * 100).toFixed(1)} %`)];
      if (f.periods.some((p) => p.meals)) {
        const meals = f.periods.map((p) => p.meals?.value ?? null);
        charts.push(bars(`Meals, ${f.facility}`, labels, meals, Math.max(0, ...meals.map((v) => v ?? 0)), (v) => String(v)));
      }
      const title = f.type ? `${esc(f.type.name.zh)} · ${esc(f.type.name.en)} <small>(${esc(f.facility)}, ${esc(f.type.code)})</small>` : esc(f.facility);
      return `<h3>${title}</h3>${charts.join('')}${facilityTable(f.periods)}`;
    });
    const comp = c.completeness
      .map((g) => `<tr><td>${esc(g.gatewayId)}</td><td>${g.received}</td><td>${g.firstSeq ?? '—'}..${g.lastSeq ?? '—'}</td><td>${g.missing}${g.gaps.length ? ` <small>(${g.gaps.map(([a, b]) => esc(a === b ? `${a}` : `${a}-${b}`)).join(', ')})</small>` : ''}</td><td>${g.shedInRange ? `${g.shedInRange.rows} rows` : '<span class="na">unknown</span>'}</td></tr>`)
      .join('');
    return `<section><h2>Community ${esc(c.communityCode)}</h2><p>Gateways: ${c.gateways.map(esc).join(', ')}</p>${facilities.join('')}<h3>Data completeness</h3><table><thead><tr><th>Gateway</th><th>Items received</th><th>Seq range</th><th>Missing</th><th>Shed in range</th></tr></thead><tbody>${comp}</tbody></table></section>`;
  });
  const range = `${new Date(r.from + off * 60_000).toISOString().slice(0, 16).replace('T', ' ')} to ${new Date(r.to + off * 60_000).toISOString().slice(0, 16).replace('T', ' ')} (${zone})`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Facility operation evaluation ${esc(range)}</title>
<style>
body{font:14px/1.45 system-ui,"Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;text-align:left}
th{background:#f3f3f3}.na{color:#888}.sup{color:#a35200}figure{margin:.5em 0}figcaption{font-weight:600}
svg{width:100%;max-width:640px;height:auto}svg text{font-size:10px;fill:#555}.bar{fill:#3a7bd5}.unobs{fill:#eee;stroke:#ccc;stroke-dasharray:3 2}.axis{stroke:#999}
</style></head><body>
<h1>Facility operation evaluation · 社区场景运营动态评价</h1>
<p>${esc(range)}, per ${esc(r.period)}. Generated ${esc(new Date(r.generatedAt).toISOString())}. Formulas: docs/EVALUATION.md. A suppressed figure is withheld by the gateway's privacy filter and is never estimated; unobserved time is left out of every share.</p>
${sections.join('\n') || '<p>No items in this range.</p>'}
</body></html>
`;
}
