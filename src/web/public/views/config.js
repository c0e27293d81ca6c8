// Configuration: a "common settings" form keyed by config path and a raw YAML tab; check,
// apply (with errors shown at their field or line), versions with view and rollback.
import { t } from '../i18n.js';
import { api, errText } from '../api.js';
import { h, table, fmtTime, confirmDialog } from '../dom.js';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];
const COMMON = [
  { path: 'site.name', key: 'cfg.siteName' },
  { path: 'uplink.url', key: 'cfg.uplinkUrl', inputmode: 'url' },
  { path: 'uplink.windowSeconds', key: 'cfg.windowSeconds', number: true },
  { path: 'privacy.k', key: 'cfg.privacyK', number: true },
  { path: 'log.level', key: 'cfg.logLevel', options: LEVELS },
];
const DEVICE_FIELDS = [{ name: 'name', key: 'cfg.deviceName' }, { name: 'pollMs', key: 'cfg.pollMs', number: true }];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const errLine = (e) => [e.line ? t('cfg.line', { n: e.line }) : null, e.path, e.message].filter(Boolean).join(' · ');
const modeText = (m) => (['none', 'reload', 'restart'].includes(m) ? t(`cfg.mode.${m}`) : String(m ?? ''));

export function mountConfig(root) {
  let cfg = null;
  let loadError = '';
  let tab = 'form';
  let draft = {};
  let yaml = '';
  let note = '';
  let result = null; // {kind: 'ok'|'error', text, list?}
  let fieldErrors = {};
  let yamlErrors = [];
  let versionView = null;
  let busy = false;

  function devices() {
    const idx = new Set();
    for (const k of Object.keys(cfg?.form ?? {})) {
      const m = /^devices\[(\d+)\]\./.exec(k);
      if (m) idx.add(Number(m[1]));
    }
    return [...idx].sort((a, b) => a - b).map((i) => ({
      i, id: cfg.form[`devices[${i}].id`] ?? `#${i}`,
      fields: DEVICE_FIELDS.map((f) => ({ ...f, path: `devices[${i}].${f.name}` })),
    }));
  }
  const editable = () => [...COMMON, ...devices().flatMap((d) => d.fields)];

  function setData(d) {
    cfg = d ?? {};
    draft = {};
    for (const f of editable()) draft[f.path] = cfg.form?.[f.path] == null ? '' : String(cfg.form[f.path]);
    yaml = cfg.text ?? '';
  }

  /** The editable fields as {form} for the API, or local errors (numbers) to show first. */
  function collectForm() {
    const form = {};
    const errs = {};
    for (const f of editable()) {
      const raw = (draft[f.path] ?? '').trim();
      if (raw === '') {
        const had = cfg.form?.[f.path] != null && cfg.form[f.path] !== '';
        if (had && f.number) errs[f.path] = t('cfg.needNumber');
        else if (had) form[f.path] = null; // cleared: the server removes the key (its default applies)
        continue;
      }
      if (!f.number) form[f.path] = raw;
      else if (Number.isFinite(Number(raw))) form[f.path] = Number(raw);
      else errs[f.path] = t('cfg.needNumber');
    }
    return { form, errs };
  }

  function showErrors(errors, headline, inBanner = false) {
    const paths = new Set(editable().map((f) => f.path));
    fieldErrors = {};
    yamlErrors = [];
    const list = [];
    for (const e of errors) {
      if (!inBanner && tab === 'form' && paths.has(e.path)) fieldErrors[e.path] = fieldErrors[e.path] ? `${fieldErrors[e.path]}; ${e.message}` : e.message;
      else if (!inBanner && tab === 'yaml') yamlErrors.push(e);
      else list.push(errLine(e));
    }
    result = { kind: 'error', text: headline, list };
  }

  async function reload() {
    for (let i = 0; i < 10; i++) {
      try { setData(await api('GET', '/api/config')); return; } catch (e) { if (e.status !== 0) return; await sleep(1000); }
    }
  }

  async function run(fn) {
    busy = true;
    result = null;
    render();
    try { await fn(); } catch (e) { if (e.status !== 401) result = { kind: 'error', text: errText(e) }; }
    busy = false;
    render();
    root.querySelector('#config-result:not([hidden])')?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  function submit(action) {
    fieldErrors = {};
    yamlErrors = [];
    let body;
    if (tab === 'form') {
      const { form, errs } = collectForm();
      if (Object.keys(errs).length) {
        fieldErrors = errs;
        result = { kind: 'error', text: t('cfg.checkFailed', { n: Object.keys(errs).length }) };
        render();
        return;
      }
      body = { form };
    } else body = { text: yaml };
    if (action === 'apply' && note.trim()) body.note = note.trim();
    run(async () => {
      try {
        if (action === 'check') {
          const r = await api('POST', '/api/config/validate', body);
          const errors = r?.errors ?? [];
          if (r?.ok !== false && !errors.length) result = { kind: 'ok', text: t('cfg.checkOk') };
          else showErrors(errors, t('cfg.checkFailed', { n: errors.length }));
          return;
        }
        const r = await api('POST', '/api/config', body);
        if (r?.ok === false) {
          showErrors(r.errors ?? [], t('cfg.notApplied'));
          if (r.error) result.list.unshift(String(r.error));
          return;
        }
        note = '';
        await reload();
        result = { kind: 'ok', text: t('cfg.applied', { version: r?.version ?? '—', mode: modeText(r?.applied) }) };
      } catch (e) {
        if (!Array.isArray(e.body?.errors)) throw e;
        showErrors(e.body.errors, action === 'apply' ? t('cfg.notApplied') : t('cfg.checkFailed', { n: e.body.errors.length }));
      }
    });
  }

  async function rollback(v) {
    if (!(await confirmDialog(t('cfg.rollbackConfirm', { version: v.id })))) return;
    run(async () => {
      try {
        const r = await api('POST', '/api/config/rollback', { version: v.id });
        if (r?.ok === false) throw Object.assign(new Error(r.error ?? 'rollback failed'), { body: r });
        await reload();
        result = { kind: 'ok', text: t('cfg.rolledBack', { version: r?.version ?? '—', mode: modeText(r?.applied) }) };
      } catch (e) {
        if (!Array.isArray(e.body?.errors)) throw e;
        showErrors(e.body.errors, t('cfg.notApplied'), true);
      }
    });
  }

  async function view(v) {
    try {
      const r = await api('GET', `/api/config/versions/${encodeURIComponent(v.id)}`);
      versionView = { id: r?.id ?? v.id, text: r?.text ?? '' };
    } catch (e) {
      if (e.status === 401) return;
      versionView = { id: v.id, text: errText(e) };
    }
    render();
    root.querySelector('#version-view')?.scrollIntoView({ block: 'start', behavior: 'smooth' });
  }

  function field(f) {
    const id = `f-${f.path.replace(/\W/g, '_')}`;
    const on = (ev) => { draft[f.path] = ev.target.value; };
    const value = draft[f.path] ?? '';
    const ctl = f.options
      ? h('select', { id, name: f.path, value, onchange: on }, h('option', { value: '', text: t('cfg.default') }), f.options.map((o) => h('option', { value: o, text: o })))
      : h('input', { id, name: f.path, type: f.number ? 'number' : 'text', inputmode: f.number ? 'numeric' : f.inputmode, value, oninput: on, autocomplete: 'off', spellcheck: 'false', 'aria-invalid': fieldErrors[f.path] ? 'true' : null });
    return h('div', { class: 'field' }, h('label', { for: id, text: t(f.key) }), ctl,
      h('div', { class: 'field-error', 'data-error-for': f.path, role: 'alert', text: fieldErrors[f.path] ?? '' }));
  }

  function formTab() {
    const form = h('form', { id: 'config-form', novalidate: true },
      h('div', { class: 'fields' }, COMMON.map(field)),
      h('h3', { text: t('cfg.devices') }),
      devices().map((d) => h('fieldset', { class: 'device-fields', 'data-device-index': d.i },
        h('legend', { text: d.id }), h('div', { class: 'fields' }, d.fields.map(field)))));
    form.addEventListener('submit', (ev) => ev.preventDefault());
    return form;
  }

  function yamlTab() {
    return [
      yamlErrors.length ? h('ul', { id: 'yaml-errors', class: 'banner error', role: 'alert' }, yamlErrors.map((e) => h('li', { text: errLine(e) }))) : null,
      h('textarea', { name: 'yaml', class: 'code', rows: 24, wrap: 'off', spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off', 'aria-label': 'YAML', value: yaml, oninput: (ev) => { yaml = ev.target.value; } }),
    ];
  }

  function versions() {
    const list = cfg.versions ?? [];
    const section = h('section', { class: 'card', id: 'versions' }, h('h2', { text: t('cfg.versions') }),
      list.length
        ? table([t('col.id'), t('col.time'), t('col.user'), t('col.note'), t('col.actions')], list.map((v) => [
          String(v.id), fmtTime(v.ts), v.user ?? '—', v.note ?? '',
          h('div', { class: 'actions' },
            h('button', { type: 'button', class: 'small', 'data-action': 'view-version', 'data-version': v.id, text: t('cfg.view'), onclick: () => view(v), disabled: busy }),
            h('button', { type: 'button', class: 'small danger', 'data-action': 'rollback', 'data-version': v.id, text: t('cfg.rollback'), onclick: () => rollback(v), disabled: busy })),
        ]), { class: 'versions' })
        : h('p', { class: 'muted', text: t('cfg.noVersions') }));
    if (versionView) {
      section.append(h('div', { id: 'version-view' },
        h('div', { class: 'row' }, h('h3', { text: t('cfg.versionText', { id: versionView.id }) }),
          h('button', { type: 'button', class: 'small', text: t('cfg.close'), onclick: () => { versionView = null; render(); } })),
        h('pre', { id: 'version-text', class: 'code', text: versionView.text })));
    }
    return section;
  }

  function render() {
    if (!cfg) {
      root.replaceChildren(h('p', { class: loadError ? 'banner error' : 'muted', text: loadError || t('app.loading') }));
      return;
    }
    const tabBtn = (id, key) => h('button', { type: 'button', role: 'tab', class: 'tab', 'data-tab': id, 'aria-selected': String(tab === id), text: t(key), onclick: () => { tab = id; render(); } });
    const banner = h('div', { id: 'config-result', class: `banner ${result?.kind ?? ''}`, role: 'status', 'aria-live': 'polite', hidden: !result },
      result ? h('strong', { text: result.text }) : null,
      result?.list?.length ? h('ul', null, result.list.map((s) => h('li', { text: s }))) : null);
    root.replaceChildren(h('div', { class: 'config-page' },
      h('h1', { text: t('cfg.title') }),
      cfg.file ? h('p', { class: 'muted', text: t('cfg.file', { file: cfg.file }) }) : null,
      typeof cfg.current === 'string' || typeof cfg.current === 'number' ? h('p', { class: 'muted', text: t('cfg.current', { v: cfg.current }) }) : null,
      h('section', { class: 'card' },
        h('div', { class: 'tabs', role: 'tablist' }, tabBtn('form', 'cfg.tab.form'), tabBtn('yaml', 'cfg.tab.yaml')),
        h('p', { class: 'muted small', text: t('cfg.tabHint') }),
        tab === 'form' ? formTab() : yamlTab(),
        h('div', { class: 'field' }, h('label', { for: 'cfg-note', text: t('cfg.note') }),
          h('input', { id: 'cfg-note', name: 'note', type: 'text', maxlength: 200, value: note, oninput: (ev) => { note = ev.target.value; } })),
        banner,
        h('div', { class: 'actions' },
          h('button', { type: 'button', 'data-action': 'check', disabled: busy, 'aria-busy': busy ? 'true' : null, text: busy ? t('cfg.working') : t('cfg.check'), onclick: () => submit('check') }),
          h('button', { type: 'button', class: 'primary', 'data-action': 'apply', disabled: busy, 'aria-busy': busy ? 'true' : null, text: busy ? t('cfg.working') : t('cfg.apply'), onclick: () => submit('apply') }))),
      versions()));
  }

  api('GET', '/api/config').then((d) => { setData(d); render(); }, (e) => { if (e.status !== 401) { loadError = errText(e); render(); } });
  render();
  return { render };
}
