// One device: live values (patched by `reading` events), a uPlot history chart (up to four
// points, the profile's main point first, two unit axes), bus and device counters, the
// try-read panel with every byte order, and confirmed writes of writable points.
import { t, label, codeText, serverText } from '../i18n.js';
import { api, errText } from '../api.js';
import { h, table, fmtTime, fmtNumber, qualityText, stateBadge, confirmDialog } from '../dom.js';
import { valueNodes, patchReading, facilityName } from './overview.js';
import { COLOURS, INTEGER_INCRS, MAX_SERIES, RANGES, addReading, alignSeries, dropBefore, freeColour, integerRange, refusal, timeIncrs, timeLabels, unitScales, valueLabels } from '../chart-axes.js';

const TYPES = ['int16', 'uint16', 'int32', 'uint32', 'float32', 'float64'];
const ORDERS = ['ABCD', 'CDAB', 'BADC', 'DCBA'];
const REGISTERS = ['holding', 'input', 'coil', 'discrete'];
const CHART_H = 260;

/** Accepts points as an array of definitions or a map by id; last values inline or in a map. */
function normalize(d) {
  const list = Array.isArray(d.points) ? d.points : Object.entries(d.points ?? {}).map(([id, p]) => ({ id, ...p }));
  const lastMap = [d.values, d.last, d.readings].find((m) => m && typeof m === 'object' && !Array.isArray(m)) ?? {};
  const points = list.map((p) => {
    const inline = 'value' in p || 'withheld' in p ? { ts: p.ts, value: p.value, unit: p.unit, quality: p.quality, withheld: p.withheld } : null;
    return { ...p, last: p.last ?? p.reading ?? lastMap[p.id] ?? inline };
  });
  for (const [id, r] of Object.entries(lastMap)) if (!points.some((p) => p.id === id)) points.push({ id, unit: r?.unit, last: r });
  return { ...d, points };
}

const isBool = (p) => p.type === 'bool' || p.type === 'bit' || (!p.type && typeof p.last?.value === 'boolean');
const isPublic = (p) => (p.privacy ?? 'public') === 'public' && !p.last?.withheld;
const chartable = (p) => isPublic(p) && !isBool(p) && (p.type || p.kind !== 'state');

/** A decoded value in at most 11 characters: a wrong byte order's float32 is often a huge whole
 * number (3.99e11 printed in full widened the phone's table past the screen). */
export function fmtDecoded(v) {
  if (typeof v !== 'number') return v == null ? '—' : String(v);
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-2 || a >= 1e9)) return v.toExponential(4);
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(7)));
}
/** The device payload names its profile as {id, manufacturer, model, name}; the overview as an id. */
const profileText = (p) => (p && typeof p === 'object' ? [label(p.name, ''), p.id && `(${p.id})`].filter(Boolean).join(' ') : p ?? '');
const hexText = (h) => (typeof h === 'string' && /^[0-9a-f]{1,4}$/i.test(h) ? `0x${h.toUpperCase().padStart(4, '0')}` : h);
const hexWord = (w) => (typeof w === 'number' ? `0x${w.toString(16).toUpperCase().padStart(4, '0')}` : '—');

/** A reading's time as date and clock, the date hidden on a phone (app.css). */
function tsNodes(ts) {
  const s = fmtTime(ts);
  const i = s.indexOf(' ');
  return i > 0 ? [h('span', { class: 'date', text: `${s.slice(0, i)} ` }), s.slice(i + 1)] : [s];
}

/** How much a float32 byte order's values look like readings: finite, and zero or between
 * 1e-3 and 1e7 in size (a wrong order gives 1e-38 or 1e+30 and the like). */
function plausible(dec, order) {
  let n = 0;
  for (const x of dec) {
    const v = x.float32?.[order];
    if (typeof v === 'number' && Number.isFinite(v) && (v === 0 || (Math.abs(v) >= 1e-3 && Math.abs(v) <= 1e7))) n++;
  }
  return n;
}

/** The columns shown at first: int16, uint16 (their plain order) and float32 in its likeliest order. */
export function likelyColumns(dec, all) {
  const out = [];
  for (const [ty, os] of all) {
    if ((ty === 'int16' || ty === 'uint16') && os.includes('ABCD')) out.push([ty, ['ABCD']]);
    if (ty === 'float32') out.push([ty, [[...os].sort((a, b) => plausible(dec, b) - plausible(dec, a))[0]]]);
  }
  return out.length ? out : all;
}

/** Counters rendered generically as key/value; nested objects flattened one level (errors.timeout).
 * A counter's name comes from the server's catalogue (counter.<key>) with the key beside it;
 * an error text is shown in the page language by its `...Msg` sibling. */
function kvRows(obj, prefix = '') {
  if (obj == null || typeof obj !== 'object') return [];
  return Object.entries(obj).flatMap(([k, v]) => {
    if (k.endsWith('Msg')) return [];
    const key = prefix + k;
    if (v && typeof v === 'object' && !Array.isArray(v)) return kvRows(v, `${key}.`);
    const timeLike = typeof v === 'number' && v > 1e11 && /(^ts$|Ts$|Since$|^last(Success|Change|Poll)$|At$|Time$)/.test(k);
    const name = codeText(`counter.${k}`);
    const value = typeof v === 'string' && v && obj[`${k}Msg`] ? serverText(v, obj[`${k}Msg`]) : timeLike ? fmtTime(v) : Array.isArray(v) ? JSON.stringify(v) : typeof v === 'number' ? fmtNumber(v) : String(v ?? '—');
    return [[name ? `${name} (${key})` : key, value]];
  });
}
const kvTable = (obj, cls) => {
  const rows = kvRows(obj);
  return rows.length ? table([t('col.item'), t('col.value')], rows, { class: `kv ${cls}` }) : h('p', { class: 'muted', text: t('counters.none') });
};

export function mountDevice(root, id) {
  let dev = null;
  let error = '';
  let chart = null;
  /** The series shown, in order: [{id, unit, colour}]; empty until the first answer names the
   * profile's main point. */
  let sel = [];
  let hours = 6;
  /** The history answer (series of bucket means, patched live), null while loading. */
  let hist = null;
  let histError = '';
  let pickNote = '';
  /** The tick labels as last drawn, per scale: the canvas has no text, this goes in the DOM. */
  let ticks = {};
  const tr = { register: 'holding', start: 0, count: 10, busy: false, result: null, error: '', reqStart: 0, allTypes: false };
  const writeMsg = {};
  const path = `/api/devices/${encodeURIComponent(id)}`;

  function liveTable() {
    return table([t('col.point'), t('col.value'), t('col.quality'), t('col.time')], dev.points.map((p) => h('tr', null,
      h('td', null, h('div', { text: label(p.name, p.id) }), h('div', { class: 'muted small', text: p.id })),
      h('td', { 'data-point': p.id, 'data-ts': p.last?.ts, class: p.last?.quality && p.last.quality !== 'good' ? 'num q-bad' : 'num' }, valueNodes(p.last ?? (isPublic(p) ? { unit: p.unit } : { withheld: p.privacy }))),
      h('td', { class: 'quality', text: p.last?.withheld ? '—' : qualityText(p.last?.quality) }),
      h('td', { class: 'ts' }, tsNodes(p.last?.ts)))), { class: 'live' });
  }

  const pointText = (p) => `${label(p.name, p.id)}${p.unit ? ` (${p.unit})` : ''}`;
  const RETENTION_KEY = 'storage.rawRetentionHours';

  function chartSection() {
    const pts = dev.points.filter(chartable);
    if (!pts.length) return h('p', { class: 'muted', text: t('chart.none') });
    const picker = h('fieldset', { class: 'chart-picker' }, h('legend', { text: t('chart.points', { n: MAX_SERIES }) }),
      pts.map((p) => {
        const s = sel.find((x) => x.id === p.id);
        const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
        if (s) swatch.style.background = s.colour;
        return h('label', { class: 'check pick', 'data-chart-point': p.id }, h('input', { type: 'checkbox', name: 'chart-point', value: p.id, checked: !!s }), swatch, pointText(p));
      }));
    picker.addEventListener('change', (ev) => {
      const box = ev.target;
      const p = pts.find((x) => x.id === box.value);
      if (!p) return;
      if (box.checked) {
        const why = refusal(sel, { id: p.id, unit: p.unit ?? '' });
        if (why) {
          box.checked = false;
          pickNote = why === 'max'
            ? t('chart.maxSeries', { n: MAX_SERIES })
            : t('chart.thirdUnit', { point: pointText(p), units: [...unitScales(sel).keys()].map((u) => u || t('chart.noUnit')).join('、') });
          renderChart();
          return;
        }
        sel = [...sel, { id: p.id, unit: p.unit ?? '', colour: freeColour(sel) }];
      } else {
        // One series stays: an empty chart tells nothing.
        if (sel.length <= 1) { box.checked = true; return; }
        sel = sel.filter((x) => x.id !== p.id);
      }
      pickNote = '';
      loadHistory();
    });
    const note = retentionNote();
    return [
      picker,
      h('p', { class: 'chart-pick-note error-text', role: 'status', hidden: !pickNote, text: pickNote }),
      h('div', { class: 'row' },
        h('label', null, t('chart.hours'), h('select', { name: 'hours', value: hours, onchange: (ev) => { hours = Number(ev.target.value); loadHistory(); } },
          RANGES.map((n) => h('option', { value: n, text: n > 24 ? t('chart.d', { n: n / 24 }) : t('chart.h', { n }) }))))),
      h('div', { id: 'chart', class: 'chart' }),
      h('p', { class: 'muted chart-note', 'data-note': 'retention', hidden: !note, text: note }),
      h('div', { id: 'chart-axes', class: 'sr-only' }),
    ];
  }

  /** Under the chart when the range asked is longer than the raw store keeps. */
  function retentionNote() {
    const r = hist?.retentionHours;
    if (typeof r !== 'number') return '';
    if (r === 0) return t('chart.retentionNone', { key: RETENTION_KEY });
    return hours > r ? t('chart.retention', { n: r, key: RETENTION_KEY }) : '';
  }

  /** The chart card again (picker, range, chart, notes), then the chart drawn into it. */
  function renderChart() {
    const card = root.querySelector('#chart-card');
    if (!card) return;
    chart?.destroy();
    chart = null;
    card.replaceChildren(...[chartSection()].flat());
    drawChart();
  }

  /** The tick labels of every axis as text (uPlot draws them on a canvas): for screen readers,
   * and for tests, which read what a technician sees. */
  function writeAxes() {
    const box = root.querySelector('#chart-axes');
    if (!box) return;
    const scales = unitScales(hist?.series.map((x) => ({ unit: x.unit })) ?? []);
    const unitOf = (key) => [...scales].find(([, k]) => k === key)?.[0];
    const name = (key) => (key === 'x' ? t('chart.axisTime') : `${t(key === 'y' ? 'chart.axisLeft' : 'chart.axisRight')} (${unitOf(key) || t('chart.noUnit')})`);
    box.replaceChildren(...['x', 'y', 'y2'].filter((k) => ticks[k]).map((k) =>
      h('p', { 'data-axis': k }, `${name(k)}: `, ticks[k].filter(Boolean).flatMap((l, i) => [i ? ', ' : '', h('span', { class: 'tick', text: l })]))));
  }

  function drawChart() {
    chart?.destroy();
    chart = null;
    ticks = {};
    const el = root.querySelector('#chart');
    if (!el) return;
    el.replaceChildren();
    writeAxes();
    const uPlot = globalThis.uPlot;
    if (typeof uPlot !== 'function') { el.textContent = t('chart.unavailable'); return; }
    if (histError) { el.textContent = histError; return; }
    if (!hist) { el.textContent = t('app.loading'); return; }
    if (!hist.series.some((x) => x.points.length)) { el.textContent = t('chart.empty'); return; }
    const scaleOf = unitScales(hist.series.map((x) => ({ unit: x.unit })));
    // An axis gets whole-number ticks when every series on it holds whole numbers (from the
    // profile: a counter, an ADC count), whatever a bucket mean comes to.
    const whole = (key) => hist.series.filter((x) => scaleOf.get(x.unit) === key).every((x) => x.integer);
    const keep = (key, labels) => { ticks[key] = labels; return labels; };
    const yAxis = (key) => ({
      scale: key,
      side: key === 'y' ? 3 : 1,
      size: 56,
      ...(key === 'y2' ? { grid: { show: false } } : {}),
      ...(whole(key) ? { incrs: INTEGER_INCRS } : {}),
      values: (u, splits, ai, space, incr) => keep(key, valueLabels(splits, incr)),
    });
    const keys = [...new Set(scaleOf.values())];
    chart = new uPlot({
      width: Math.max(260, el.clientWidth),
      height: CHART_H,
      scales: {
        // The whole range asked, not just the span of the data: 7 days with one day kept shows so.
        x: { time: true, range: () => [hist.from / 1000, hist.to / 1000] },
        ...Object.fromEntries(keys.map((k) => [k, whole(k) ? { range: (u, min, max) => integerRange(min, max) } : {}])),
      },
      series: [
        { label: t('col.time'), value: (u, v) => (v == null ? '—' : fmtTime(v * 1000)) },
        ...hist.series.map((x) => {
          const p = dev.points.find((q) => q.id === x.point);
          return {
            label: `${label(p?.name, x.point)}${x.unit ? ` (${x.unit})` : ''}`,
            scale: scaleOf.get(x.unit),
            stroke: sel.find((q) => q.id === x.point)?.colour ?? COLOURS[0],
            width: 2,
            // Series of other points leave nulls at this one's missing times: not gaps.
            spanGaps: true,
            // uPlot's default: dots only where points are sparse (a fresh box, a slow poll),
            // so that a lone bucket still shows.
            value: (u, v) => (v == null ? '—' : fmtNumber(v)),
          };
        }),
      ],
      axes: [
        { scale: 'x', space: 50, incrs: timeIncrs(hours), values: (u, splits, ai, space, incr) => keep('x', timeLabels(splits, incr)) },
        ...keys.map(yAxis),
      ],
      hooks: { draw: [() => writeAxes()] },
    }, alignSeries(hist.series), el);
  }

  async function loadHistory() {
    hist = null;
    histError = '';
    renderChart();
    const want = `${sel.map((x) => x.id).join(',')}|${hours}`;
    // No series chosen yet: the route answers the profile's main point.
    const q = [...sel.map((x) => `point=${encodeURIComponent(x.id)}`), `hours=${hours}`].join('&');
    try {
      const r = await api('GET', `${path}/history?${q}`);
      if (want !== `${sel.map((x) => x.id).join(',')}|${hours}`) return;
      const series = Array.isArray(r?.series) ? r.series.map((x) => ({ ...x, points: Array.isArray(x.points) ? x.points.slice() : [] })) : [];
      if (!sel.length) sel = series.map((x, i) => ({ id: x.point, unit: x.unit ?? '', colour: COLOURS[i % COLOURS.length] }));
      hist = { from: r.from, to: r.to, bucketMs: r.bucketMs, retentionHours: r.retentionHours, series };
    } catch (e) {
      if (e.status === 401) return;
      histError = errText(e);
    }
    renderChart();
  }

  function tryReadResult() {
    if (tr.busy) return h('p', { class: 'muted', text: t('try.reading') });
    if (tr.error) return h('p', { class: 'banner error', text: tr.error });
    const r = tr.result;
    if (!r) return null;
    if (r.error) return h('p', { class: 'banner error', text: t('try.error', { msg: serverText(r.error, r.msg) }) });
    if (Array.isArray(r.bits)) {
      const rows = [];
      for (let i = 0; i < r.bits.length; i += 16) rows.push([String(tr.reqStart + i), ...r.bits.slice(i, i + 16).map((b) => String(Number(b)))]);
      return table([t('try.address'), ...Array.from({ length: Math.min(16, r.bits.length) }, (_, i) => `+${i}`)], rows, { class: 'bits num' });
    }
    const dec = Array.isArray(r.decoded) ? r.decoded : (r.words ?? []).map((_, i) => ({ offset: i }));
    if (!dec.length) return h('p', { class: 'muted', text: t('try.empty') });
    const all = TYPES.map((ty) => [ty, ORDERS.filter((o) => dec.some((x) => x[ty] && o in x[ty]))]).filter(([, os]) => os.length);
    // On a phone the full table is 2,500 px wide: first the types a register usually holds, with
    // float32 in the byte order whose values look most like measurements; the rest on demand.
    const cols = tr.allTypes ? all : likelyColumns(dec, all);
    const head = h('thead', null,
      h('tr', null, [t('try.address'), t('try.hex')].map((s) => h('th', { rowspan: 2, scope: 'col', text: s })),
        tr.allTypes ? h('th', { rowspan: 2, scope: 'col', text: t('try.offset') }) : null,
        cols.map(([ty, os]) => h('th', { colspan: os.length, scope: 'colgroup', class: 'group', text: ty }))),
      h('tr', null, cols.flatMap(([, os]) => os.map((o) => h('th', { scope: 'col', text: o })))));
    const body = h('tbody', null, dec.map((x, i) => {
      const off = x.offset ?? i;
      return h('tr', null,
        h('td', { text: tr.reqStart + off }),
        h('td', { class: 'mono', text: hexText(r.hex?.[off]) ?? hexWord(r.words?.[off]) }),
        tr.allTypes ? h('td', { text: off }) : null,
        cols.flatMap(([ty, os]) => os.map((o) => h('td', { text: fmtDecoded(x[ty]?.[o]) }))));
    }));
    const toggle = h('button', { type: 'button', class: 'link', 'data-action': 'try-all-types', text: t(tr.allTypes ? 'try.fewerTypes' : 'try.allTypes') });
    toggle.addEventListener('click', () => {
      tr.allTypes = !tr.allTypes;
      root.querySelector('#try-read-result')?.replaceChildren(tryReadResult() ?? '');
    });
    return h('div', null, h('div', { class: 'table-wrap' }, h('table', { class: `decoded num${tr.allTypes ? '' : ' compact'}` }, head, body)), toggle);
  }

  function tryReadSection() {
    const max = tr.register === 'coil' || tr.register === 'discrete' ? 2000 : 125;
    const result = h('div', { id: 'try-read-result' }, tryReadResult());
    const form = h('form', { id: 'try-read-form', class: 'row', novalidate: true },
      h('label', null, t('try.register'), h('select', { name: 'register', value: tr.register }, REGISTERS.map((r) => h('option', { value: r, text: t(`reg.${r}`) })))),
      h('label', null, t('try.start'), h('input', { name: 'start', type: 'number', inputmode: 'numeric', min: 0, max: 65535, value: tr.start })),
      h('label', null, t('try.count'), h('input', { name: 'count', type: 'number', inputmode: 'numeric', min: 1, max, value: tr.count })),
      h('button', { type: 'submit', class: 'primary', 'data-action': 'try-read', text: t('try.submit') }));
    form.addEventListener('change', () => {
      tr.register = form.elements.register.value;
      tr.start = form.elements.start.value;
      tr.count = form.elements.count.value;
      form.elements.count.max = tr.register === 'coil' || tr.register === 'discrete' ? 2000 : 125;
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      form.dispatchEvent(new Event('change'));
      const body = { register: tr.register, start: Number(tr.start), count: Number(tr.count) };
      Object.assign(tr, { busy: true, error: '', result: null, reqStart: body.start });
      result.replaceChildren(tryReadResult() ?? '');
      form.querySelector('button').disabled = true;
      try { tr.result = await api('POST', `${path}/read`, body); } catch (e) { tr.error = errText(e); }
      tr.busy = false;
      form.querySelector('button').disabled = false;
      result.replaceChildren(tryReadResult() ?? '');
    });
    return [h('p', { class: 'hint', text: t('try.hint') }), form, result];
  }

  function writeForm(p) {
    const name = label(p.name, p.id);
    const msg = h('span', { class: `write-result ${writeMsg[p.id]?.ok ? 'ok-text' : 'error-text'}`, role: 'status', text: writeMsg[p.id]?.text ?? '' });
    const input = isBool(p)
      ? h('select', { name: 'value' }, h('option', { value: 'true', text: t('bool.on') }), h('option', { value: 'false', text: t('bool.off') }))
      : h('input', { name: 'value', type: 'number', step: 'any', inputmode: 'decimal', required: true });
    const form = h('form', { class: 'write-form row', 'data-write-point': p.id, novalidate: true },
      h('label', null, `${name}${p.unit ? ` (${p.unit})` : ''}`, input),
      h('button', { type: 'submit', class: 'danger', 'data-action': 'write', text: t('write.submit') }), msg);
    const show = (ok, text) => { writeMsg[p.id] = { ok, text }; msg.textContent = text; msg.className = `write-result ${ok ? 'ok-text' : 'error-text'}`; };
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      let value;
      if (isBool(p)) value = input.value === 'true';
      else {
        value = Number(input.value);
        if (input.value.trim() === '' || !Number.isFinite(value)) return show(false, t('write.invalid'));
      }
      const shown = typeof value === 'boolean' ? t(value ? 'bool.on' : 'bool.off') : `${value}${p.unit ? ` ${p.unit}` : ''}`;
      if (!(await confirmDialog(t('write.confirm', { device: dev.name ?? id, point: name, value: shown })))) return;
      try {
        await api('POST', `${path}/write`, { point: p.id, value, confirm: true });
        show(true, `${t('write.ok')} · ${fmtTime(Date.now())}`);
      } catch (e) { show(false, errText(e)); }
    });
    return form;
  }

  function render() {
    chart?.destroy();
    chart = null;
    if (!dev) {
      root.replaceChildren(h('a', { href: '#/', class: 'back', text: t('nav.back') }), h('p', { class: error ? 'banner error' : 'muted', text: error || t('app.loading') }));
      return;
    }
    const writable = dev.points.filter((p) => p.writable);
    const card = (key, ...content) => h('section', { class: 'card' }, h('h2', { text: t(key) }), content);
    root.replaceChildren(h('section', { class: 'device-page', 'data-device': id },
      h('a', { href: '#/', class: 'back', text: t('nav.back') }),
      h('div', { class: 'page-head' },
        h('h1', { text: dev.name ? `${dev.name} (${id})` : id }),
        h('span', { id: 'device-state' }, stateBadge(dev.online)),
        h('span', { class: 'muted', text: [(dev.facilityName ? label(dev.facilityName, dev.facility) : dev.facility && facilityName(dev.facility)), profileText(dev.profile) && `${t('dev.profile')}: ${profileText(dev.profile)}`].filter(Boolean).join(' · ') })),
      card('live.title', liveTable()),
      card('chart.title', h('div', { id: 'chart-card' }, chartSection())),
      writable.length ? card('write.title', writable.map(writeForm)) : null,
      card('try.title', tryReadSection()),
      card('counters.title', h('h3', { text: t('counters.bus') }), kvTable(dev.bus, 'bus'), h('h3', { text: t('counters.device') }), kvTable(dev.stats, 'stats'))));
    drawChart();
  }

  const onResize = () => { const el = root.querySelector('#chart'); if (chart && el) chart.setSize({ width: Math.max(260, el.clientWidth), height: CHART_H }); };
  window.addEventListener('resize', onResize);

  api('GET', path).then((d) => {
    dev = normalize(d ?? {});
    render();
    if (dev.points.some(chartable)) loadHistory();
  }, (e) => {
    if (e.status === 401) return;
    error = e.status === 404 ? t('err.notFound') : errText(e);
    render();
  });
  render();

  return {
    render,
    destroy() { chart?.destroy(); window.removeEventListener('resize', onResize); },
    onReading(r) {
      if (!dev || r.device !== id) return;
      const p = dev.points.find((x) => x.id === r.point);
      const last = { ts: r.ts, value: r.value, unit: r.unit, quality: r.quality, ...(r.withheld ? { withheld: r.withheld } : {}) };
      if (p) p.last = last;
      const cell = patchReading(root, r);
      if (cell) {
        const row = cell.closest('tr');
        row.querySelector('.quality').textContent = r.withheld ? '—' : qualityText(r.quality);
        row.querySelector('.ts').replaceChildren(...tsNodes(r.ts));
      }
      const s = hist?.series.find((x) => x.point === r.point);
      if (s && typeof r.value === 'number' && r.quality === 'good') {
        // The range follows the box's clock (readings are stamped by it), not this browser's.
        hist.to = Math.max(hist.to, r.ts);
        hist.from = hist.to - hours * 3600e3;
        addReading(s, r.ts, r.value, hist.bucketMs, hist.from);
        for (const x of hist.series) dropBefore(x, hist.from);
        if (chart) chart.setData(alignSeries(hist.series));
        else drawChart();
      }
    },
    onOverview(o) {
      const d = o?.facilities?.flatMap((f) => f.devices ?? []).find((x) => x.id === id);
      if (!dev || !d || d.online === dev.online) return;
      dev.online = d.online;
      root.querySelector('#device-state')?.replaceChildren(stateBadge(d.online));
    },
  };
}
