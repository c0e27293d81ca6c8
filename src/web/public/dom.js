// Small DOM helpers. Data only ever reaches the page through text nodes and attributes.
import { t } from './i18n.js';

/** h('a', {href, class, text, onclick}, ...children). Strings become text nodes; null/false are skipped. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'value') value = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  if (value !== undefined) el.value = String(value); // after the children, so a <select> has its options
  return el;
}

/** A table inside a horizontally scrolling wrapper. head: labels or nodes; rows: arrays of cells or <tr>s. */
export function table(head, rows, attrs) {
  return h('div', { class: 'table-wrap' },
    h('table', attrs ?? {},
      h('thead', null, h('tr', null, head.map((c) => (c instanceof Node ? c : h('th', { scope: 'col', text: c }))))),
      h('tbody', null, rows.map((r) => (r instanceof Node ? r : h('tr', null, r.map((c) => (c instanceof Node && c.tagName === 'TD' ? c : h('td', null, c)))))))));
}

const pad = (n) => String(n).padStart(2, '0');
/** Local time as YYYY-MM-DD HH:mm:ss (ms timestamps, ISO strings or numeric strings). */
export function fmtTime(ts) {
  if (ts == null || ts === '' || ts === 0) return '—';
  const d = new Date(typeof ts === 'string' && /^\d+$/.test(ts) ? Number(ts) : ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtNumber(v) {
  if (typeof v !== 'number') return v == null ? '—' : String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) || Math.abs(v) >= 1e5) return String(Math.round(v * 10) / 10);
  return String(Number(v.toPrecision(6)));
}

/** The value of one reading {value, unit, quality, withheld?} as text (without the unit). */
export function fmtValue(r) {
  if (!r) return '—';
  if (r.withheld) return t('value.private');
  if (typeof r.value === 'boolean') return t(r.value ? 'bool.on' : 'bool.off');
  return fmtNumber(r.value);
}

export function fmtEta(s) {
  if (typeof s !== 'number' || !Number.isFinite(s) || s < 0) return '';
  if (s < 60) return t('eta.s', { n: Math.max(1, Math.round(s)) });
  if (s < 3600) return t('eta.min', { n: Math.round(s / 60) });
  return t('eta.h', { n: Math.round(s / 360) / 10 });
}

export const qualityText = (q) => (q ? (t(`q.${q}`) === `q.${q}` ? q : t(`q.${q}`)) : '—');

/** Online / offline badge: colour plus a text label and a shape, so it reads without colour. */
export function stateBadge(online) {
  const s = online === true ? 'ok' : online === false ? 'bad' : 'unknown';
  return h('span', { class: `badge ${s}`, 'data-state': s, text: t(online === true ? 'state.online' : online === false ? 'state.offline' : 'state.unknown') });
}

/** Styled in-page confirmation (<dialog> in index.html). Resolves true on confirm. `extra`:
 * nodes shown under the message (the diff before an apply or a rollback, a note field). */
export function confirmDialog(message, extra = null) {
  const dlg = document.getElementById('confirm-dialog');
  if (!dlg || typeof dlg.showModal !== 'function') return Promise.resolve(window.confirm(message));
  dlg.querySelector('.dialog-title').textContent = t('dialog.title');
  dlg.querySelector('.dialog-message').textContent = message;
  dlg.querySelector('.dialog-extra')?.replaceChildren(...(extra ? [extra].flat() : []));
  dlg.querySelector('[data-action="confirm"]').textContent = t('dialog.ok');
  dlg.querySelector('[data-action="cancel"]').textContent = t('dialog.cancel');
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.showModal();
    dlg.querySelector('[data-action="cancel"]').focus();
  });
}
