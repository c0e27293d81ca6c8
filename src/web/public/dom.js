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
  return liveBadge(s, t(online === true ? 'state.online' : online === false ? 'state.offline' : 'state.unknown'), { 'data-state': s });
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

// ---- Live state going stale (app.js marks it when the event stream drops) ----

let stale = false;
export const isStale = () => stale;

/** A badge showing live state. Its plain label is kept in data-live-label so that markStale can
 * say "not current" and take it back in place, without the view re-rendering. */
export function liveBadge(cls, label, attrs = {}) {
  return h('span', { ...attrs, class: `badge ${cls}`, 'data-live-label': label, text: stale ? t('stale.badge', { state: label }) : label });
}

/** Every live badge on the page says whether it is current; the root's `stale` class greys the values (app.css). */
export function markStale(on, since = null) {
  stale = on;
  const root = document.documentElement;
  root.classList.toggle('stale', on);
  if (on && since != null) root.dataset.staleSince = String(since);
  else if (!on) delete root.dataset.staleSince;
  for (const b of document.querySelectorAll('[data-live-label]')) {
    b.textContent = on ? t('stale.badge', { state: b.dataset.liveLabel }) : b.dataset.liveLabel;
  }
}

// ---- The YAML editor: a textarea with a gutter of line numbers ----

/** Offset of the start of each line of `text` (line 1 first). */
export function lineStarts(text) {
  const out = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) out.push(i + 1);
  return out;
}

/** Styles the mirror copies so a line breaks in it where it breaks in the textarea. */
const MIRROR_STYLE = ['fontFamily', 'fontSize', 'fontWeight', 'fontStyle', 'lineHeight', 'letterSpacing', 'wordSpacing', 'tabSize', 'textIndent', 'textTransform',
  'paddingLeft', 'paddingRight', 'fontFeatureSettings', 'fontVariantLigatures', 'whiteSpace', 'overflowWrap', 'wordBreak', 'lineBreak', 'hyphens'];

/**
 * The textarea stays the editor (form value, tests, screen readers, the phone's own text
 * handling); beside it a gutter numbers the logical lines. With soft wrap (narrow screens) a
 * line can take several rows, so each number's height is measured on a hidden mirror that
 * holds the same lines at the textarea's width. The gutter follows the textarea's scroll.
 * `wrapQuery`: where the text wraps (a media query); elsewhere it scrolls sideways.
 */
export function codeEditor({ value = '', attrs = {}, oninput, wrapQuery = '(max-width: 719px)' } = {}) {
  const ta = h('textarea', { ...attrs, class: `code ${attrs.class ?? ''}`.trim(), spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off', value });
  const numbers = h('div', { class: 'code-gutter-lines' });
  const gutter = h('div', { class: 'code-gutter', 'aria-hidden': 'true' }, numbers);
  const mirror = h('div', { class: 'code-mirror', 'aria-hidden': 'true' });
  const el = h('div', { class: 'code-editor' }, gutter, ta, mirror);
  const mq = window.matchMedia ? window.matchMedia(wrapQuery) : null;
  let marks = new Set();
  let current = 0;
  let heights = [];
  let frame = 0;
  let scroll = { top: 0, left: 0 };

  const lines = () => ta.value.split('\n');
  function applyWrap() {
    const wrap = mq?.matches ?? false;
    ta.setAttribute('wrap', wrap ? 'soft' : 'off');
    el.classList.toggle('wrap', wrap);
  }

  /** Rebuild the numbers: one per logical line, as tall as that line is in the textarea. */
  function layout() {
    frame = 0;
    if (!ta.isConnected) return;
    const ls = lines();
    const cs = getComputedStyle(ta);
    for (const k of MIRROR_STYLE) mirror.style[k] = cs[k];
    mirror.style.width = `${ta.clientWidth}px`; // inside the border, without the scrollbar: the text's own box plus padding
    while (mirror.childElementCount > ls.length) mirror.lastElementChild.remove();
    while (mirror.childElementCount < ls.length) mirror.append(document.createElement('div'));
    // An empty line still takes a row; a zero-width space gives it one.
    ls.forEach((l, i) => { const d = mirror.children[i]; const s = l || '\u200b'; if (d.textContent !== s) d.textContent = s; });
    heights = [...mirror.children].map((d) => d.getBoundingClientRect().height);
    while (numbers.childElementCount > ls.length) numbers.lastElementChild.remove();
    while (numbers.childElementCount < ls.length) numbers.append(h('div', { class: 'ln', text: String(numbers.childElementCount + 1) }));
    heights.forEach((px, i) => {
      const n = numbers.children[i];
      n.style.height = `${px}px`;
      n.classList.toggle('err', marks.has(i + 1));
      n.classList.toggle('current', current === i + 1);
    });
    gutter.style.setProperty('--digits', String(String(ls.length).length));
    numbers.style.top = cs.paddingTop;
    follow();
  }
  const schedule = () => { if (!frame) frame = requestAnimationFrame(layout); };
  function follow() {
    numbers.style.transform = `translateY(${-ta.scrollTop}px)`;
    if (ta.isConnected) scroll = { top: ta.scrollTop, left: ta.scrollLeft };
  }

  ta.addEventListener('input', (ev) => {
    // The numbers marked for errors may have moved with the edit: the next check marks them again.
    if (marks.size || current) { marks = new Set(); current = 0; }
    layout(); // at once, so the numbers never lag a new line
    oninput?.(ev);
  });
  ta.addEventListener('scroll', follow);
  const onWrap = () => { applyWrap(); schedule(); };
  mq?.addEventListener?.('change', onWrap);
  const ro = typeof ResizeObserver === 'function' ? new ResizeObserver(schedule) : null;
  ro?.observe(ta);
  document.fonts?.ready?.then(schedule);
  applyWrap();

  return {
    el,
    textarea: ta,
    /** After the view put the editor (back) into the page: measure, and keep the old scroll. */
    attached() {
      ta.scrollTop = scroll.top;
      ta.scrollLeft = scroll.left;
      layout();
    },
    setValue(v) { if (ta.value !== v) { ta.value = v; schedule(); } },
    /** Line numbers to mark as holding an error (1-based). */
    setMarks(list) { marks = new Set(list); current = marks.has(current) ? current : 0; schedule(); },
    /** Select line n, scroll it into view, focus the textarea and mark its number. */
    jumpTo(n) {
      const starts = lineStarts(ta.value);
      const i = Math.min(Math.max(1, n), starts.length) - 1;
      const start = starts[i];
      const end = i + 1 < starts.length ? starts[i + 1] - 1 : ta.value.length;
      current = i + 1;
      layout();
      ta.focus({ preventScroll: true });
      ta.setSelectionRange(start, end, 'forward');
      // Line i's top inside the text: the rows above it, as measured. A third down the box, so the lines before it show too.
      const top = heights.slice(0, i).reduce((a, b) => a + b, 0);
      ta.scrollTop = Math.max(0, top - ta.clientHeight / 3);
      ta.scrollLeft = 0;
      follow();
      el.scrollIntoView({ block: 'nearest' });
    },
    refresh: schedule,
    /** The view is leaving: let go of the media query and the resize watch. */
    destroy() { mq?.removeEventListener?.('change', onWrap); ro?.disconnect(); if (frame) cancelAnimationFrame(frame); },
  };
}
