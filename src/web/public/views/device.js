// One device: live values (patched by `reading` events), a uPlot history chart, bus and device
// counters, the try-read panel with every byte order, and confirmed writes of writable points.
import { t, label, codeText, serverText } from '../i18n.js';
import { api, errText } from '../api.js';
import { h, table, fmtTime, fmtNumber, qualityText, stateBadge, confirmDialog } from '../dom.js';
import { valueNodes, patchReading, facilityName } from './overview.js';

const TYPES = ['int16', 'uint16', 'int32', 'uint32', 'float32', 'float64'];
const ORDERS = ['ABCD', 'CDAB', 'BADC', 'DCBA'];
const REGISTERS = ['holding', 'input', 'coil', 'discrete'];
const HOURS = [1, 6, 24];
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

function fmtDecoded(v) {
  if (typeof v !== 'number') return v == null ? '—' : String(v);
  if (Number.isInteger(v) || !Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-4 || a >= 1e9) ? v.toExponential(4) : String(Number(v.toPrecision(7)));
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
  let chartPoint = null;
  let hours = 6;
  let hist = null;
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

  function chartSection() {
    const pts = dev.points.filter(chartable);
    if (!pts.length) return h('p', { class: 'muted', text: t('chart.none') });
    if (!pts.some((p) => p.id === chartPoint)) chartPoint = pts[0].id;
    const onChange = (ev) => { if (ev.target.name === 'chart-point') chartPoint = ev.target.value; else hours = Number(ev.target.value); loadHistory(); };
    return [
      h('div', { class: 'row' },
        h('label', null, t('chart.point'), h('select', { name: 'chart-point', value: chartPoint, onchange: onChange }, pts.map((p) => h('option', { value: p.id, text: `${label(p.name, p.id)}${p.unit ? ` (${p.unit})` : ''}` })))),
        h('label', null, t('chart.hours'), h('select', { name: 'hours', value: hours, onchange: onChange }, HOURS.map((n) => h('option', { value: n, text: t('chart.h', { n }) }))))),
      h('div', { id: 'chart', class: 'chart' }),
    ];
  }

  function drawChart() {
    chart?.destroy();
    chart = null;
    const el = root.querySelector('#chart');
    if (!el) return;
    el.replaceChildren();
    const uPlot = globalThis.uPlot;
    if (typeof uPlot !== 'function') { el.textContent = t('chart.unavailable'); return; }
    if (!hist) { el.textContent = t('app.loading'); return; }
    if (!hist.length) { el.textContent = t('chart.empty'); return; }
    const p = dev.points.find((x) => x.id === chartPoint);
    chart = new uPlot({
      width: Math.max(260, el.clientWidth),
      height: CHART_H,
      scales: { x: { time: true } },
      series: [
        { label: t('col.time'), value: (u, v) => (v == null ? '—' : fmtTime(v * 1000)) },
        { label: `${label(p?.name, chartPoint)}${p?.unit ? ` (${p.unit})` : ''}`, stroke: '#1565c0', width: 2, points: { show: false } },
      ],
      axes: [{ values: (u, splits) => splits.map((s) => fmtTime(s * 1000).slice(11, 16)) }, { size: 56 }],
    }, toData(), el);
  }
  const toData = () => [hist.map((x) => x[0] / 1000), hist.map((x) => (x[1] == null ? null : Number(x[1])))];

  async function loadHistory() {
    hist = null;
    drawChart();
    const want = `${chartPoint}|${hours}`;
    try {
      const r = await api('GET', `${path}/history?point=${encodeURIComponent(chartPoint)}&hours=${hours}`);
      if (want !== `${chartPoint}|${hours}`) return;
      hist = Array.isArray(r?.points) ? r.points : [];
    } catch (e) {
      if (e.status === 401) return;
      hist = [];
      const el = root.querySelector('#chart');
      if (el) el.textContent = errText(e);
      return;
    }
    drawChart();
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
        h('span', { class: 'muted', text: [dev.facility && facilityName(dev.facility), profileText(dev.profile) && `${t('dev.profile')}: ${profileText(dev.profile)}`].filter(Boolean).join(' · ') })),
      card('live.title', liveTable()),
      card('chart.title', chartSection()),
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
      if (chart && hist && r.point === chartPoint && typeof r.value === 'number') {
        const cutoff = Date.now() - hours * 3600e3;
        hist.push([r.ts, r.value]);
        while (hist.length && hist[0][0] < cutoff) hist.shift();
        chart.setData(toData());
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
