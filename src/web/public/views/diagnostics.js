// Diagnostics: the uplink's state with "reconnect now", restart, the diagnostic bundle to
// download, and the daemon's last log records (in-memory ring on the box, level filter).
// Restart and reconnect are commands: confirmed here, nonce-protected and audited by the server.
import { t, serverText } from '../i18n.js';
import { api, errText } from '../api.js';
import { h, fmtTime, confirmDialog } from '../dom.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
/** Fields every record has: shown as the line's columns, not repeated in its details. */
const BASE_FIELDS = new Set(['level', 'levelName', 'time', 'pid', 'hostname', 'svc', 'msg']);

function logLine(r) {
  const extra = Object.fromEntries(Object.entries(r).filter(([k]) => !BASE_FIELDS.has(k)));
  const lvl = r.levelName ?? String(r.level);
  return h('li', { class: `log-line lvl-${lvl}`, 'data-level': lvl },
    h('span', { class: 'log-time', text: fmtTime(r.time) }),
    h('span', { class: `badge log-level ${r.level >= 50 ? 'bad' : r.level >= 40 ? 'warn' : ''}`, text: lvl }),
    h('span', { class: 'log-msg', text: r.msg ?? '' }),
    Object.keys(extra).length ? h('code', { class: 'log-extra', text: JSON.stringify(extra) }) : null);
}

export function mountDiagnostics(root) {
  let level = 'info';
  let logs = null;
  let logsError = '';
  let uplink = null;
  /** The answer to the last command, shown under the buttons. */
  let note = null;
  let busy = false;

  async function loadLogs() {
    try {
      logs = await api('GET', `/api/logs?level=${encodeURIComponent(level)}`);
      logsError = '';
    } catch (e) {
      if (e.status === 401) return;
      logsError = errText(e);
    }
    render();
  }

  async function command(confirmKey, path, done) {
    if (busy || !(await confirmDialog(t(confirmKey)))) return;
    busy = true;
    note = null;
    render();
    try {
      const r = await api('POST', path, {});
      note = { ok: true, text: done(r) };
    } catch (e) {
      if (e.status === 401) return;
      note = { ok: false, text: errText(e) };
    } finally {
      busy = false;
    }
    render();
  }

  function actions() {
    const connected = uplink?.state === 'connected';
    return h('section', { class: 'card diag-actions', id: 'diag-actions' },
      h('h2', { text: t('diag.actions') }),
      h('div', { class: 'diag-row' },
        h('span', { class: 'strip-label', text: t('uplink.title') }),
        uplink ? h('span', { id: 'diag-uplink-state', class: `badge ${connected ? 'ok' : 'bad'}`, 'data-state': uplink.state ?? '', text: connected ? t('uplink.connected') : t('uplink.disconnected') }) : null,
        uplink && !connected && uplink.lastError ? h('span', { class: 'muted', text: t('uplink.lastError', { msg: serverText(uplink.lastError, uplink.lastErrorMsg) }) }) : null),
      h('div', { class: 'diag-buttons' },
        h('button', { type: 'button', 'data-action': 'reconnect-uplink', disabled: busy || connected, text: t('diag.reconnect'),
          onclick: () => command('diag.reconnectConfirm', '/api/uplink/reconnect', (r) => (r.state === 'connected' ? t('diag.alreadyConnected') : t('diag.reconnecting'))) }),
        h('button', { type: 'button', class: 'danger', 'data-action': 'restart', disabled: busy, text: t('diag.restart'),
          onclick: () => command('diag.restartConfirm', '/api/system/restart', () => t('diag.restarting')) }),
        h('a', { class: 'button', id: 'diag-bundle', href: '/api/diagnostics/bundle', download: '', text: t('diag.bundle') })),
      h('p', { class: 'muted', text: t('diag.restartNote') }),
      h('p', { class: 'muted', text: t('diag.bundleNote') }),
      note ? h('p', { id: 'diag-result', class: note.ok ? 'banner ok' : 'banner error', role: 'status', text: note.text }) : null,
      h('p', { class: 'muted' }, t('diag.passwordHint'), ' ', h('a', { href: '#/account', text: t('nav.account') })));
  }

  function logCard() {
    const records = logs?.records ?? [];
    return h('section', { class: 'card diag-logs', id: 'diag-logs' },
      h('h2', { text: t('diag.logs') }),
      h('div', { class: 'diag-row' },
        h('label', { for: 'log-level', text: t('diag.level') }),
        h('select', { id: 'log-level', value: level, onchange: (ev) => { level = ev.target.value; loadLogs(); } },
          LOG_LEVELS.map((l) => h('option', { value: l, text: t(`diag.lvl.${l}`) }))),
        h('button', { type: 'button', class: 'small', 'data-action': 'refresh-logs', text: t('diag.refresh'), onclick: loadLogs })),
      logsError ? h('p', { class: 'banner error', text: logsError }) : null,
      logs ? h('p', { class: 'muted', id: 'log-count', text: t('diag.logCount', { n: records.length, cap: logs.capacity }) }) : h('p', { class: 'muted', text: t('app.loading') }),
      records.length ? h('ol', { class: 'log-lines', id: 'log-lines' }, [...records].reverse().map(logLine)) : null);
  }

  function render() {
    root.replaceChildren(h('div', { class: 'diagnostics' }, h('h1', { text: t('diag.title') }), actions(), logCard()));
  }

  render();
  loadLogs();
  api('GET', '/api/overview').then((o) => { uplink = o?.uplink ?? null; render(); }, () => {});
  return {
    render,
    onOverview(o) {
      const next = o?.uplink ?? null;
      if (JSON.stringify(next) === JSON.stringify(uplink)) return;
      uplink = next;
      render();
    },
  };
}
