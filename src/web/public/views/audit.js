// Audit log: the latest 200 entries, newest first.
import { t, tOr } from '../i18n.js';
import { api, errText } from '../api.js';
import { h, table, fmtTime } from '../dom.js';

const KNOWN = new Set(['ts', 'time', 'user', 'ip', 'address', 'action', 'detail']);
const when = (e) => e.ts ?? e.time;
const stamp = (e) => { const v = when(e); const d = new Date(typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v); return d.getTime() || 0; };

export function mountAudit(root) {
  let entries = null;
  let error = '';
  function render() {
    const head = h('div', { class: 'page-head' }, h('h1', { text: t('audit.title') }),
      h('button', { type: 'button', class: 'small', 'data-action': 'refresh', text: t('audit.refresh'), onclick: load }));
    if (!entries) {
      root.replaceChildren(head, h('p', { class: error ? 'banner error' : 'muted', text: error || t('app.loading') }));
      return;
    }
    root.replaceChildren(head, entries.length
      ? h('section', { class: 'card' }, table([t('col.time'), t('col.user'), t('col.ip'), t('col.action'), t('col.detail')], entries.map((e) => {
        const rest = Object.fromEntries(Object.entries(e).filter(([k]) => !KNOWN.has(k)));
        const detail = e.detail ?? (Object.keys(rest).length ? rest : null);
        const action = String(e.action ?? '');
        return [h('td', { class: 'nowrap', text: fmtTime(when(e)) }), e.user ?? '—', e.ip ?? e.address ?? '—',
          h('td', { 'data-audit-action': action, text: action ? `${tOr(`audit.action.${action}`, action)} (${action})` : '—' }),
          h('td', null, h('code', { class: 'detail', text: detail == null ? '' : typeof detail === 'string' ? detail : JSON.stringify(detail) }))];
      }), { class: 'audit' }))
      : h('p', { class: 'muted', text: t('audit.empty') }));
  }
  async function load() {
    try {
      const r = await api('GET', '/api/audit?limit=200');
      entries = [...(r?.entries ?? [])].sort((a, b) => stamp(b) - stamp(a));
      error = '';
    } catch (e) {
      if (e.status === 401) return;
      error = errText(e);
    }
    render();
  }
  load();
  render();
  return { render };
}
