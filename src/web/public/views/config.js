// Configuration: a "common settings" form keyed by config path and a raw YAML tab; check,
// apply (with errors shown at their field or line), versions with view and rollback. Before an
// apply and before a rollback the server's diff of the running config against the text about
// to run (redacted) is shown in the confirmation; the running version is marked. Devices, buses
// and alarm rules have their own tabs with one form per entry (config-entries.js).
import { t, serverText } from '../i18n.js';
import { api, errText } from '../api.js';
import { h, table, fmtTime, confirmDialog, codeEditor } from '../dom.js';
import { createEntries } from './config-entries.js';

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
/** A check error's own text in the page language with its code (the path is shown apart). */
const errText1 = (e) => serverText(e.message, e.msg && { ...e.msg, path: undefined });
const errLine = (e) => [e.line ? t('cfg.line', { n: e.line }) : null, e.path, errText1(e)].filter(Boolean).join(' · ');
/** A version's note: the system's own notes in the page language with their code (noteMsg),
 * a note the technician typed as typed. */
const noteText = (v) => (v.noteMsg ? serverText(v.note, v.noteMsg) : v.note ?? '');
const userText = (u) => (u === 'system' ? t('ver.system') : u || '—');
const modeText = (m) => (['none', 'reload', 'restart'].includes(m) ? t(`cfg.mode.${m}`) : String(m ?? ''));
const ENTRY_TABS = ['devices', 'buses', 'alarms'];

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
  const entries = createEntries({
    cfg: () => cfg,
    reload: () => reload(),
    render: () => render(),
    diffView: (d) => diffView(d),
    flash: (r) => { result = r; },
  });

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
      if (!inBanner && tab === 'form' && paths.has(e.path)) fieldErrors[e.path] = fieldErrors[e.path] ? `${fieldErrors[e.path]}; ${errText1(e)}` : errText1(e);
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
    const diffBody = { ...body };
    if (action === 'apply' && note.trim()) body.note = note.trim();
    run(async () => {
      try {
        const r0 = await api('POST', '/api/config/validate', diffBody);
        const errors = r0?.errors ?? [];
        if (r0?.ok === false || errors.length) {
          showErrors(errors, action === 'apply' ? t('cfg.notApplied') : t('cfg.checkFailed', { n: errors.length }));
          return;
        }
        if (action === 'check') {
          result = { kind: 'ok', text: t('cfg.checkOk') };
          return;
        }
        // What the apply changes, confirmed with the diff in view.
        const diff = await api('POST', '/api/config/diff', diffBody);
        if (!(await confirmDialog(t('cfg.applyConfirm'), diffView(diff)))) {
          result = { kind: '', text: t('cfg.cancelled') };
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
    let diff;
    try {
      diff = await api('GET', `/api/config/versions/${encodeURIComponent(v.id)}/diff`);
    } catch (e) {
      if (e.status !== 401) { result = { kind: 'error', text: errText(e) }; render(); }
      return;
    }
    const noteInput = h('input', { id: 'rollback-note', name: 'rollback-note', type: 'text', maxlength: 200, autocomplete: 'off',
      onkeydown: (ev) => { if (ev.key === 'Enter') ev.preventDefault(); } });
    const extra = [diffView(diff), h('div', { class: 'field' }, h('label', { for: 'rollback-note', text: t('cfg.note') }), noteInput)];
    if (!(await confirmDialog(t('cfg.rollbackConfirm', { version: v.id }), extra))) return;
    const rollbackNote = noteInput.value.trim();
    run(async () => {
      try {
        const r = await api('POST', '/api/config/rollback', rollbackNote ? { version: v.id, note: rollbackNote } : { version: v.id });
        if (r?.ok === false) throw Object.assign(new Error(r.error ?? 'rollback failed'), { body: r });
        await reload();
        result = { kind: 'ok', text: t('cfg.rolledBack', { from: r?.rollbackOf ?? v.id, version: r?.version ?? '—', mode: modeText(r?.applied) }) };
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

  // One editor for the page's life: a render puts the same element back, with its scroll.
  let editor = null;
  function yamlTab() {
    editor ??= codeEditor({ value: yaml, attrs: { name: 'yaml', id: 'yaml-text', rows: 24, 'aria-label': 'YAML' }, oninput: (ev) => { yaml = ev.target.value; } });
    editor.setValue(yaml);
    const lines = yamlErrors.map((e) => e.line).filter((n) => Number.isInteger(n) && n > 0);
    editor.setMarks(lines);
    // An error that names a line is a button to it: caret, selection, scroll, marked number.
    const item = (e) => h('li', null, lines.includes(e.line)
      ? h('button', { type: 'button', class: 'link err-line', 'data-line': e.line, title: t('editor.jump', { n: e.line }), onclick: () => editor.jumpTo(e.line), text: errLine(e) })
      : errLine(e));
    return [
      yamlErrors.length ? h('ul', { id: 'yaml-errors', class: 'banner error', role: 'alert' }, yamlErrors.map(item)) : null,
      editor.el,
    ];
  }

  function versions() {
    const list = cfg.versions ?? [];
    const rows = list.map((v) => h('tr', { 'data-version-row': v.id, 'data-running': v.running ? 'true' : null, class: v.running ? 'running' : null },
      h('td', null, h('span', { class: 'version-id', text: String(v.id) }), v.running ? h('span', { class: 'badge ok', 'data-running-badge': '', text: t('cfg.running') }) : null),
      h('td', { text: fmtTime(v.ts) }),
      h('td', { text: userText(v.user) }),
      h('td', { class: 'version-note', title: v.note || null, text: noteText(v) }),
      h('td', null, h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'small', 'data-action': 'view-version', 'data-version': v.id, text: t('cfg.view'), onclick: () => view(v), disabled: busy }),
        // The running version has nothing to roll back to.
        v.running ? null : h('button', { type: 'button', class: 'small danger', 'data-action': 'rollback', 'data-version': v.id, text: t('cfg.rollback'), onclick: () => rollback(v), disabled: busy })))));
    const section = h('section', { class: 'card', id: 'versions' }, h('h2', { text: t('cfg.versions') }),
      list.length && !list.some((v) => v.running) ? h('p', { class: 'banner warn', id: 'not-a-version', text: t('cfg.runningNotKept') }) : null,
      list.length
        ? table([t('col.id'), t('col.time'), t('col.user'), t('col.note'), t('col.actions')], rows, { class: 'versions' })
        : h('p', { class: 'muted', text: t('cfg.noVersions') }));
    if (versionView) {
      section.append(h('div', { id: 'version-view' },
        h('div', { class: 'row' }, h('h3', { text: t('cfg.versionText', { id: versionView.id }) }),
          h('button', { type: 'button', class: 'small', text: t('cfg.close'), onclick: () => { versionView = null; render(); } })),
        h('pre', { id: 'version-text', class: 'code', text: versionView.text })));
    }
    return section;
  }

  /** The server's diff (running -> new) as lines coloured by kind, with a summary. */
  function diffView(d) {
    let summary;
    if (d?.identical) summary = t('diff.identical');
    else if (d?.secretsChanged) summary = t('diff.secretOnly');
    else if (d?.tooLarge) summary = t('diff.tooLarge');
    else if (d?.unparsable) summary = t('diff.unparsable');
    else summary = t('diff.summary', { added: d?.added ?? 0, removed: d?.removed ?? 0 });
    const from = d?.from?.running;
    const head = h('p', { class: 'muted small diff-head', text: `${from == null ? t('diff.fromRunning') : t('diff.fromVersion', { v: from })} → ${d?.to?.version == null ? t('diff.toNew') : t('diff.toVersion', { v: d.to.version })}` });
    const lines = typeof d?.unified === 'string' && d.unified ? d.unified.replace(/\n$/, '').split('\n') : [];
    return h('div', { id: 'config-diff', class: 'diff' }, head, h('p', { class: 'diff-summary', text: summary }),
      lines.length ? h('pre', { class: 'code diff-lines' }, lines.map((l) => h('span', { class: l.startsWith('@@') ? 'hunk' : l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : l.startsWith('\\') ? 'meta' : 'ctx', text: `${l}\n` }))) : null);
  }

  function render() {
    if (!cfg) {
      root.replaceChildren(h('p', { class: loadError ? 'banner error' : 'muted', text: loadError || t('app.loading') }));
      return;
    }
    const tabBtn = (id, key) => h('button', { type: 'button', role: 'tab', class: 'tab', 'data-tab': id, 'aria-selected': String(tab === id), text: t(key), onclick: () => { if (tab !== id) { entries.close(); result = null; } tab = id; render(); } });
    const entryTab = ENTRY_TABS.includes(tab);
    const banner = h('div', { id: 'config-result', class: `banner ${result?.kind ?? ''}`, role: 'status', 'aria-live': 'polite', hidden: !result },
      result ? h('strong', { text: result.text }) : null,
      result?.list?.length ? h('ul', null, result.list.map((s) => h('li', { text: s }))) : null);
    root.replaceChildren(h('div', { class: 'config-page' },
      h('h1', { text: t('cfg.title') }),
      cfg.file ? h('p', { class: 'muted', text: t('cfg.file', { file: cfg.file }) }) : null,
      typeof cfg.running === 'number' ? h('p', { class: 'muted', id: 'running-version', text: t('cfg.current', { v: cfg.running }) }) : null,
      h('section', { class: 'card' },
        h('div', { class: 'tabs', role: 'tablist' }, tabBtn('form', 'cfg.tab.form'), ENTRY_TABS.map((s) => tabBtn(s, `cfg.tab.${s}`)), tabBtn('yaml', 'cfg.tab.yaml')),
        h('p', { class: 'muted small', text: t('cfg.tabHint') }),
        entryTab ? banner : null,
        tab === 'form' ? formTab() : entryTab ? entries.view(tab) : yamlTab(),
        entryTab ? null : h('div', { class: 'field' }, h('label', { for: 'cfg-note', text: t('cfg.note') }),
          h('input', { id: 'cfg-note', name: 'note', type: 'text', maxlength: 200, value: note, oninput: (ev) => { note = ev.target.value; } })),
        entryTab ? null : banner,
        entryTab ? null : h('div', { class: 'actions' },
          h('button', { type: 'button', 'data-action': 'check', disabled: busy, 'aria-busy': busy ? 'true' : null, text: busy ? t('cfg.working') : t('cfg.check'), onclick: () => submit('check') }),
          h('button', { type: 'button', class: 'primary', 'data-action': 'apply', disabled: busy, 'aria-busy': busy ? 'true' : null, text: busy ? t('cfg.working') : t('cfg.apply'), onclick: () => submit('apply') }))),
      versions()));
    if (tab === 'yaml') editor?.attached();
  }

  api('GET', '/api/config').then((d) => { setData(d); render(); }, (e) => { if (e.status !== 401) { loadError = errText(e); render(); } });
  render();
  return { render, destroy: () => editor?.destroy() };
}
