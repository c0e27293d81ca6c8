// Site tools: scan a bus and add a found unit as a device in one step, import devices from a
// CSV file, upload a site profile. Devices are added through POST /api/devices/import: a dry
// run first (the start-up checks on the config with the devices added, and the diff), the
// diff confirmed, then the apply, as on the config page. The server parses and checks
// everything; the page only shows what it answers.
import { t, label, serverText } from '../i18n.js';
import { api, errText } from '../api.js';
import { h, table, confirmDialog } from '../dom.js';
import { facilityOptions, setFacilityTypes } from '../facilities.js';

const CSV_HEADER = 'id,name,facility,profile,bus,unitId,pollMs';
const POLL_MS = 1000;

export function mountTools(root) {
  let buses = [];
  let profiles = new Map();
  let notLoaded = [];
  let siteDir = null;
  let loadError = '';
  let destroyed = false;

  const scan = { bus: '', units: '1-247', timeoutMs: '', state: null, error: '', timer: null, busy: false };
  /** Units added from this page since the scan ("bus/unit" -> device id): the scan's result
   * names the devices configured when it ran. */
  const added = new Map();
  /** The "add as device" form of one found unit: {unitId, draft, errors, result, busy}. */
  let adding = null;
  let facilities = []; // GET /api/profiles: the config's facilities
  const imp = { text: '', fileName: '', errors: [], result: null, busy: false };
  const up = { text: '', fileName: '', replace: false, result: null, busy: false };

  async function load() {
    try {
      const [status, p] = await Promise.all([api('GET', '/api/status'), api('GET', '/api/profiles')]);
      buses = (status?.buses ?? []).map((b) => ({ id: b.id, type: b.type, state: b.state }));
      profiles = new Map((p?.profiles ?? []).map((x) => [x.id, x]));
      notLoaded = p?.notLoaded ?? [];
      siteDir = p?.siteDir ?? null;
      facilities = p?.facilities ?? [];
      setFacilityTypes(p?.facilityTypes);
      if (!scan.bus && buses.length) scan.bus = buses[0].id;
      if (scan.bus) await pollScan(false);
    } catch (e) {
      if (e.status !== 401) loadError = errText(e);
    }
    render();
  }

  // ---- scan ---------------------------------------------------------------------------

  function schedule() {
    clearTimeout(scan.timer);
    scan.timer = destroyed ? null : setTimeout(() => pollScan(true), 700);
  }

  async function pollScan(again) {
    try {
      scan.state = await api('GET', `/api/buses/${encodeURIComponent(scan.bus)}/scan`);
      scan.error = '';
    } catch (e) {
      if (e.status === 401) return;
      // 404: no scan of this bus since the gateway started.
      scan.state = null;
      if (e.status !== 404) scan.error = errText(e);
    }
    if (scan.state?.state === 'running') schedule();
    if (again) render();
  }

  async function startScan() {
    scan.busy = true;
    scan.error = '';
    adding = null;
    render();
    try {
      // The wait per unit: empty is the server's default (100 ms); a slow converter needs more.
      const body = { ...(scan.units.trim() ? { units: scan.units.trim() } : {}), ...(String(scan.timeoutMs).trim() ? { timeoutMs: Number(scan.timeoutMs) } : {}) };
      const r = await api('POST', `/api/buses/${encodeURIComponent(scan.bus)}/scan`, body);
      scan.state = r?.scan ?? null;
      schedule();
    } catch (e) {
      if (e.status !== 401) scan.error = errText(e);
    }
    scan.busy = false;
    render();
  }

  async function cancelScan() {
    try {
      const r = await api('DELETE', `/api/buses/${encodeURIComponent(scan.bus)}/scan`);
      scan.state = r?.scan ?? scan.state;
    } catch (e) {
      if (e.status !== 401 && e.status !== 409) scan.error = errText(e);
    }
    render();
  }

  function scanSection() {
    const s = scan.state;
    const running = s?.state === 'running';
    const p = s?.progress;
    const busSel = h('select', { id: 'scan-bus', name: 'bus', value: scan.bus, disabled: running,
      onchange: (ev) => { scan.bus = ev.target.value; scan.state = null; adding = null; pollScan(true); } },
    buses.map((b) => h('option', { value: b.id, text: `${b.id} (${b.type ?? ''})` })));
    const units = h('input', { id: 'scan-units', name: 'units', type: 'text', value: scan.units, autocomplete: 'off', spellcheck: 'false', inputmode: 'numeric', placeholder: '1-247', disabled: running,
      oninput: (ev) => { scan.units = ev.target.value; } });
    const wait = h('input', { id: 'scan-timeout', name: 'timeoutMs', type: 'number', min: 20, max: 5000, step: 10, value: scan.timeoutMs, placeholder: '100', inputmode: 'numeric', disabled: running,
      oninput: (ev) => { scan.timeoutMs = ev.target.value; } });
    return h('section', { class: 'card', id: 'scan' },
      h('h2', { text: t('tools.scan') }),
      h('p', { class: 'muted small', text: t('tools.scanHint') }),
      buses.length ? null : h('p', { class: 'banner warn', text: t('tools.noBuses') }),
      h('div', { class: 'row' },
        h('label', { for: 'scan-bus', text: t('tools.bus') }, busSel),
        h('label', { for: 'scan-units', text: t('tools.units') }, units),
        h('label', { for: 'scan-timeout', text: t('tools.scanTimeout') }, wait)),
      h('div', { class: 'actions tools-actions' },
        h('button', { type: 'button', class: 'primary', 'data-action': 'scan-start', disabled: running || scan.busy || !buses.length, text: t('tools.scanStart'), onclick: startScan }),
        running ? h('button', { type: 'button', 'data-action': 'scan-cancel', text: t('tools.scanCancel'), onclick: cancelScan }) : null),
      scan.error ? h('p', { class: 'banner error', role: 'alert', id: 'scan-error', text: scan.error }) : null,
      s ? h('div', { id: 'scan-state', 'data-state': s.state },
        h('p', { class: 'scan-progress-text', text: t(`tools.scanState.${s.state}`, { done: p?.done ?? 0, total: p?.total ?? 0, found: p?.found ?? 0 }) + (s.result?.stopped && s.result.stopped !== 'cancelled' ? ` · ${s.result.stopped}` : '') }),
        h('progress', { class: 'scan-progress', max: p?.total || 1, value: p?.done ?? 0 }),
        s.result ? scanResult(s.result) : null) : null);
  }

  function scanResult(r) {
    if (!r.units?.length) return h('p', { class: 'muted', id: 'scan-none', text: t('tools.scanNone') });
    const rows = r.units.map((u0) => {
      const u = { ...u0, device: u0.device ?? added.get(`${scan.bus}/${u0.unitId}`) };
      const fits = (u.profiles ?? []).filter((f) => f.fits);
      const misfits = (u.profiles ?? []).filter((f) => !f.fits);
      const ident = u.identification ? Object.values(u.identification).join(' · ') : u.answered === 'damaged' ? t('tools.damaged', { reply: u.reply }) : t('tools.noIdent');
      return h('tr', { 'data-unit': u.unitId },
        h('td', { class: 'num', text: String(u.unitId) }),
        h('td', null, h('div', { text: ident }), u.device ? h('div', { class: 'muted small', text: t('tools.configured', { device: u.device }) }) : null),
        h('td', null,
          fits.length ? h('ol', { class: 'fits' }, fits.map((f) => h('li', { 'data-profile': f.id, text: `${f.id}${f.source === 'site' ? ` (${t('tools.site')})` : ''}` }))) : h('span', { class: 'muted', text: t('tools.noFit') }),
          misfits.length ? h('details', { class: 'misfits' }, h('summary', { text: t('tools.whyNot', { n: misfits.length }) }),
            h('ul', null, misfits.map((f) => h('li', { class: 'small', text: `${f.id}: ${serverText(f.reason ?? '', f.reasonMsg)}` })))) : null,
          // In the profiles cell, not a column of its own: a fourth column would be off a phone's screen.
          u.device || !fits.length || u.answered !== 'yes' ? null
            : h('button', { type: 'button', class: 'small', 'data-action': 'add-unit', 'data-unit': u.unitId, text: t('tools.addDevice'), onclick: () => openAdd(u, fits) })));
    });
    return h('div', { id: 'scan-result' },
      table([t('tools.col.unit'), t('tools.col.ident'), t('tools.col.profiles')], rows, { class: 'scan-units' }),
      adding ? addForm() : null);
  }

  function openAdd(u, fits) {
    const best = fits[0].id;
    const p = profiles.get(best);
    adding = {
      unitId: u.unitId, fits: fits.map((f) => f.id), errors: {}, result: null, busy: false,
      draft: {
        id: `${best}-${u.unitId}`.slice(0, 63),
        name: p ? `${label(p.name, p.model)} ${u.unitId}` : '',
        facility: p?.facilities?.[0] ?? 'canteen',
        profile: best,
        pollMs: String(POLL_MS),
      },
    };
    render();
    root.querySelector('#add-form')?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  function addForm() {
    const a = adding;
    const field = (name, key, ctl) => h('div', { class: 'field' }, h('label', { for: `add-${name}`, text: t(key) }), ctl,
      h('div', { class: 'field-error', 'data-error-for': name, role: 'alert', text: a.errors[name] ?? '' }));
    const input = (name, attrs = {}) => h('input', { id: `add-${name}`, name, type: 'text', value: a.draft[name], autocomplete: 'off', spellcheck: 'false', 'aria-invalid': a.errors[name] ? 'true' : null, oninput: (ev) => { a.draft[name] = ev.target.value; }, ...attrs });
    const select = (name, options) => h('select', { id: `add-${name}`, name, value: a.draft[name], onchange: (ev) => { a.draft[name] = ev.target.value; } }, options);
    return h('form', { id: 'add-form', class: 'add-form', novalidate: true, onsubmit: (ev) => ev.preventDefault() },
      h('h3', { text: t('tools.addTitle', { unit: a.unitId, bus: scan.bus }) }),
      field('id', 'tools.f.id', input('id')),
      field('name', 'tools.f.name', input('name')),
      field('facility', 'tools.f.facility', select('facility', facilityOptions(facilities).map((o) => h('option', { value: o.value, text: o.text })))),
      field('profile', 'tools.f.profile', select('profile', a.fits.map((id) => h('option', { value: id, text: profileText(id) })))),
      field('pollMs', 'cfg.pollMs', input('pollMs', { inputmode: 'numeric' })),
      a.result ? h('div', { id: 'add-result', class: `banner ${a.result.kind}`, role: 'status', text: a.result.text }) : null,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', 'data-action': 'add-apply', disabled: a.busy || Boolean(a.done), text: a.busy ? t('cfg.working') : t('tools.addApply'), onclick: addApply }),
        h('button', { type: 'button', 'data-action': 'add-close', text: t('cfg.close'), onclick: () => { adding = null; render(); } })));
  }

  const profileText = (id) => {
    const p = profiles.get(id);
    return p ? `${id} · ${p.manufacturer ?? ''} ${p.model ?? ''}`.trim() : id;
  };

  async function addApply() {
    const a = adding;
    const device = { ...a.draft, bus: scan.bus, unitId: a.unitId };
    for (const k of Object.keys(device)) if (typeof device[k] === 'string') device[k] = device[k].trim();
    if (!device.name) delete device.name;
    if (!device.pollMs) delete device.pollMs;
    a.busy = true;
    a.errors = {};
    a.result = null;
    render();
    try {
      const ok = await importFlow({ devices: [device] }, (errs) => {
        for (const e of errs) {
          const k = e.column && e.column in a.draft ? e.column : null;
          if (k) a.errors[k] = a.errors[k] ? `${a.errors[k]}; ${serverText(e.message, e.msg)}` : serverText(e.message, e.msg);
        }
        const rest = errs.filter((e) => !(e.column && e.column in a.draft));
        a.result = { kind: 'error', text: [t('cfg.notApplied'), ...rest.map((e) => (e.column ? `${e.column}: ${serverText(e.message, e.msg)}` : serverText(e.message, e.msg)))].join(' · ') };
      });
      if (ok) {
        a.result = { kind: 'ok', text: t('tools.added', { id: device.id, version: ok.version ?? '—', mode: modeText(ok.applied) }) };
        a.done = device.id;
        added.set(`${scan.bus}/${a.unitId}`, device.id);
      } else if (ok === null && !a.result) a.result = { kind: '', text: t('cfg.cancelled') };
    } catch (e) {
      if (e.status !== 401) a.result = { kind: 'error', text: errText(e) };
    }
    a.busy = false;
    render();
    if (a.done) await pollScan(true); // the unit now shows its device
  }

  // ---- import (shared apply path) -------------------------------------------------------

  const modeText = (m) => (['none', 'reload', 'restart'].includes(m) ? t(`cfg.mode.${m}`) : String(m ?? ''));

  /** Dry run, diff confirmed, apply. Returns the apply's answer, false on errors (given to
   * onErrors), null when cancelled. */
  async function importFlow(body, onErrors, { checkOnly = false } = {}) {
    let dry;
    try {
      dry = await api('POST', '/api/devices/import', { ...body, dryRun: true });
    } catch (e) {
      if (!Array.isArray(e.body?.errors)) throw e;
      onErrors(e.body.errors);
      return false;
    }
    if (checkOnly) return dry;
    if (!(await confirmDialog(t('tools.importConfirm', { n: dry?.devices?.length ?? 0 }), diffView(dry)))) return null;
    try {
      const r = await api('POST', '/api/devices/import', body);
      if (r?.ok === false) { onErrors(r.errors ?? [{ row: null, column: null, message: r.error ?? '' }]); return false; }
      return r;
    } catch (e) {
      if (!Array.isArray(e.body?.errors)) throw e;
      onErrors(e.body.errors);
      return false;
    }
  }

  async function runImport(checkOnly) {
    imp.busy = true;
    imp.errors = [];
    imp.result = null;
    render();
    try {
      const r = await importFlow({ csv: imp.text }, (errs) => {
        imp.errors = errs;
        imp.result = { kind: 'error', text: t('tools.importRefused', { n: errs.length }) };
      }, { checkOnly });
      if (r && checkOnly) imp.result = { kind: 'ok', text: t('tools.importCheckOk', { n: r.devices?.length ?? 0 }) };
      else if (r) imp.result = { kind: 'ok', text: t('tools.imported', { n: r.devices?.length ?? 0, version: r.version ?? '—', mode: modeText(r.applied) }) };
      else if (r === null) imp.result = { kind: '', text: t('cfg.cancelled') };
    } catch (e) {
      if (e.status !== 401) imp.result = { kind: 'error', text: errText(e) };
    }
    imp.busy = false;
    render();
    root.querySelector('#import-result')?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  async function readFile(ev, into) {
    const f = ev.target.files?.[0];
    if (!f) return;
    into.fileName = f.name;
    into.text = await f.text();
    into.result = null;
    if (into === imp) imp.errors = [];
    render();
  }

  function importSection() {
    const errorsTable = imp.errors.length
      ? table([t('tools.col.row'), t('tools.col.column'), t('tools.col.problem')],
        imp.errors.map((e) => h('tr', { 'data-row': e.row ?? '', 'data-column': e.column ?? '' },
          h('td', { class: 'num', text: e.row == null ? t('tools.wholeFile') : String(e.row) }),
          h('td', { class: 'mono', text: e.column ?? '—' }),
          h('td', { text: serverText(e.message, e.msg) }))), { class: 'import-errors', id: 'import-errors' })
      : null;
    return h('section', { class: 'card', id: 'import' },
      h('h2', { text: t('tools.import') }),
      h('p', { class: 'muted small', text: t('tools.importHint') }),
      h('pre', { class: 'code csv-header', text: CSV_HEADER }),
      h('div', { class: 'field' }, h('label', { for: 'import-file', text: t('tools.csvFile') }),
        h('input', { id: 'import-file', name: 'csv-file', type: 'file', accept: '.csv,text/csv', onchange: (ev) => readFile(ev, imp) })),
      imp.fileName ? h('p', { class: 'muted small', text: t('tools.fileRead', { name: imp.fileName, bytes: new Blob([imp.text]).size }) }) : null,
      imp.result ? h('div', { id: 'import-result', class: `banner ${imp.result.kind}`, role: 'status', 'aria-live': 'polite', text: imp.result.text }) : null,
      errorsTable,
      h('div', { class: 'actions' },
        h('button', { type: 'button', 'data-action': 'import-check', disabled: imp.busy || !imp.text, text: t('cfg.check'), onclick: () => runImport(true) }),
        h('button', { type: 'button', class: 'primary', 'data-action': 'import-apply', disabled: imp.busy || !imp.text, text: imp.busy ? t('cfg.working') : t('tools.importApply'), onclick: () => runImport(false) })));
  }

  // ---- site profile upload ---------------------------------------------------------------

  async function upload() {
    up.busy = true;
    up.result = null;
    render();
    try {
      const r = await api('POST', '/api/profiles', up.replace ? { yaml: up.text, replace: true } : { yaml: up.text });
      up.result = { kind: 'ok', text: t(r?.replaced ? 'tools.uploadReplaced' : 'tools.uploaded', { id: r?.id ?? '', file: r?.file ?? '' }), restart: true };
      const p = await api('GET', '/api/profiles');
      notLoaded = p?.notLoaded ?? notLoaded;
    } catch (e) {
      if (e.status !== 401) {
        const list = Array.isArray(e.body?.errors) ? e.body.errors.map((x, i) => serverText(x, e.body.errorMsgs?.[i])) : [];
        up.result = { kind: 'error', text: e.body?.reason === 'exists' ? t('tools.uploadExists') : list.length ? t('tools.uploadRefused') : errText(e), list };
      }
    }
    up.busy = false;
    render();
  }

  function uploadSection() {
    return h('section', { class: 'card', id: 'upload' },
      h('h2', { text: t('tools.upload') }),
      h('p', { class: 'muted small', text: t('tools.uploadHint', { dir: siteDir ?? '—' }) }),
      notLoaded.length ? h('p', { class: 'banner warn', id: 'profiles-waiting', text: t('tools.notLoaded', { ids: notLoaded.join(', ') }) }) : null,
      h('div', { class: 'field' }, h('label', { for: 'profile-file', text: t('tools.yamlFile') }),
        h('input', { id: 'profile-file', name: 'profile-file', type: 'file', accept: '.yaml,.yml,application/yaml,text/yaml', onchange: (ev) => readFile(ev, up) })),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'replace', checked: up.replace, onchange: (ev) => { up.replace = ev.target.checked; } }), ` ${t('tools.replace')}`),
      up.result ? h('div', { id: 'upload-result', class: `banner ${up.result.kind}`, role: 'status', 'aria-live': 'polite' },
        h('strong', { text: up.result.text }),
        up.result.restart ? h('p', { id: 'restart-needed', text: t('tools.restartNeeded') }) : null,
        up.result.list?.length ? h('ul', null, up.result.list.map((s) => h('li', { class: 'mono small', text: s }))) : null) : null,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', 'data-action': 'upload', disabled: up.busy || !up.text, text: up.busy ? t('cfg.working') : t('tools.uploadButton'), onclick: upload })));
  }

  /** The server's diff (running -> with the devices added), as the config page shows it. */
  function diffView(d) {
    const summary = d?.identical ? t('diff.identical') : d?.tooLarge ? t('diff.tooLarge') : t('diff.summary', { added: d?.added ?? 0, removed: d?.removed ?? 0 });
    const lines = typeof d?.unified === 'string' && d.unified ? d.unified.replace(/\n$/, '').split('\n') : [];
    return h('div', { id: 'config-diff', class: 'diff' }, h('p', { class: 'diff-summary', text: summary }),
      lines.length ? h('pre', { class: 'code diff-lines' }, lines.map((l) => h('span', { class: l.startsWith('@@') ? 'hunk' : l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : 'ctx', text: `${l}\n` }))) : null);
  }

  function render() {
    if (destroyed) return;
    root.replaceChildren(h('div', { class: 'tools-page' },
      h('h1', { text: t('tools.title') }),
      loadError ? h('p', { class: 'banner error', text: loadError }) : null,
      scanSection(), importSection(), uploadSection()));
  }

  render();
  load();
  return {
    render,
    destroy() {
      destroyed = true;
      clearTimeout(scan.timer);
    },
  };
}
