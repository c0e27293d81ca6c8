// The entry forms of the config page: devices, buses and alarm rules listed, each added, edited
// or removed one at a time. A save sends {edit} (one entry) through the same validate -> diff ->
// confirm -> apply as the other tabs, so the server's start-up checks judge it; an error comes
// back with its config path (devices[3].unitId) and is shown at that field. "Read now" reads an
// unsaved device once through its running bus, before anything is saved.
import { t, label, serverText } from '../i18n.js';
import { api, errText } from '../api.js';
import { h, confirmDialog, fmtNumber } from '../dom.js';
import { facilityOptions, setFacilityTypes } from '../facilities.js';

const BAUDS = [1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200];
/** Field defaults of a new entry (the schema's defaults, so the form shows what will run). */
const NEW = {
  devices: { id: '', name: '', facility: 'canteen', profile: '', bus: '', unitId: '', pollMs: '1000' },
  buses: { id: '', type: 'modbus-rtu', host: '', port: '502', timeoutMs: '', path: '', baudRate: '9600', parity: 'none', dataBits: '8', stopBits: '1' },
  alarms: { id: '', device: '', point: '', condition: 'above', threshold: '', severity: 'warning', forSeconds: '0' },
};
/** Which form field an error path names: alarms' above/below/equals are the threshold field. */
const FIELD_OF = { above: 'threshold', below: 'threshold', equals: 'threshold' };

/** `ctx`: { cfg() (the loaded GET /api/config), reload(), render(), diffView(d) }. */
export function createEntries(ctx) {
  let profiles = null; // GET /api/profiles
  let facilities = []; // GET /api/profiles: the config's facilities
  let ports = null; // GET /api/serial-ports
  let editor = null; // { section, index?, draft, errors: {field: msg}, others: [], result, readNow }
  let busy = false;

  let loading = null;
  /** The pickers' lists, fetched once (a failure is shown in the open form, not retried in a loop). */
  function loadPickers() {
    if ((profiles && ports) || loading) return;
    loading = Promise.all([api('GET', '/api/profiles'), api('GET', '/api/serial-ports')]).then(
      ([p, s]) => { profiles = p?.profiles ?? []; ports = s?.ports ?? []; facilities = p?.facilities ?? []; setFacilityTypes(p?.facilityTypes); },
      (e) => {
        profiles = profiles ?? [];
        ports = ports ?? [];
        if (e.status !== 401 && editor) editor.result = { kind: 'error', text: errText(e) };
      },
    ).finally(() => { loading = null; ctx.render(); });
  }

  const entries = (section) => ctx.cfg()?.entries?.[section] ?? [];
  const profileOf = (id) => profiles?.find((p) => p.id === id);

  function open(section, index) {
    const base = index === undefined ? NEW[section] : entries(section)[index];
    const draft = {};
    for (const k of Object.keys(NEW[section])) draft[k] = base?.[k] == null ? '' : String(base[k]);
    editor = { section, index, draft, errors: {}, others: [], result: null, readNow: null };
    ctx.render();
    loadPickers();
  }

  /** The draft as the API's edit value: on a change only what differs from the entry is sent,
   * so fields the form does not show (and untouched ones) stay as the file has them. */
  function valueOf() {
    const { section, index, draft } = editor;
    const was = index === undefined ? null : entries(section)[index];
    const typeChanged = section === 'buses' && was && was.type !== draft.type;
    const out = {};
    for (const [k, v] of Object.entries(draft)) {
      if (section === 'buses' && !shownBusField(draft.type, k)) continue;
      const always = (section === 'alarms' && (k === 'condition' || k === 'threshold')) || (typeChanged && k !== 'id');
      if (was && !always && String(was[k] ?? '') === v) continue;
      out[k] = v.trim() === '' ? null : v.trim();
    }
    return out;
  }

  const shownBusField = (type, k) => ['id', 'type', 'timeoutMs'].includes(k) || (type === 'modbus-tcp' ? ['host', 'port'] : ['path', 'baudRate', 'parity', 'dataBits', 'stopBits']).includes(k);

  /** Server errors at their fields: "devices[2].unitId" -> unitId of the open entry. */
  function place(errors) {
    const { section } = editor;
    const i = editor.index ?? entries(section).length;
    const prefix = `${section}[${i}]`;
    editor.errors = {};
    editor.others = [];
    for (const e of errors) {
      let field = null;
      if (e.path === prefix) field = section === 'alarms' ? 'condition' : null;
      else if (e.path?.startsWith(`${prefix}.`)) {
        const k = e.path.slice(prefix.length + 1).split(/[.[]/)[0];
        field = FIELD_OF[k] ?? k;
        if (!(field in editor.draft)) field = null;
      }
      const text = serverText(e.message, e.msg && { ...e.msg, path: undefined });
      if (field) editor.errors[field] = editor.errors[field] ? `${editor.errors[field]}；${text}` : text;
      else editor.others.push([e.line ? t('cfg.line', { n: e.line }) : null, e.path, text].filter(Boolean).join(' · '));
    }
  }

  async function save(remove = false, section = editor?.section, index = editor?.index) {
    const edit = remove ? { section, index, value: null } : { section, ...(index === undefined ? {} : { index }), value: valueOf() };
    busy = true;
    if (editor) editor.result = null;
    ctx.render();
    try {
      const v = await api('POST', '/api/config/validate', { edit });
      if (v?.ok === false || v?.errors?.length) {
        const errors = v.errors ?? [];
        if (editor) { place(errors); editor.result = { kind: 'error', text: t('cfg.checkFailed', { n: errors.length }) }; }
        // A removal from the list (no form open): why it cannot go, e.g. devices still on the bus.
        else ctx.flash({ kind: 'error', text: t('cfg.notApplied'), list: errors.map((e) => `${e.path} · ${serverText(e.message, e.msg && { ...e.msg, path: undefined })}`) });
        return;
      }
      const diff = await api('POST', '/api/config/diff', { edit });
      const ask = remove ? t('ent.removeConfirm', { id: entries(section)[index]?.id ?? index }) : t('cfg.applyConfirm');
      if (!(await confirmDialog(ask, ctx.diffView(diff)))) {
        if (editor) editor.result = { kind: '', text: t('cfg.cancelled') };
        return;
      }
      const note = editor?.note?.trim();
      const r = await api('POST', '/api/config', { edit, ...(note ? { note } : {}) });
      editor = null;
      await ctx.reload();
      ctx.flash({ kind: 'ok', text: t('cfg.applied', { version: r?.version ?? '—', mode: t(`cfg.mode.${r?.applied}`) }) });
    } catch (e) {
      if (e.status === 401) return;
      if (Array.isArray(e.body?.errors) && editor) { place(e.body.errors); editor.result = { kind: 'error', text: t('cfg.notApplied') }; } else if (editor) editor.result = { kind: 'error', text: errText(e) };
      else ctx.flash({ kind: 'error', text: errText(e) });
    } finally {
      busy = false;
      ctx.render();
    }
  }

  async function readNow() {
    const d = editor.draft;
    const unitId = Number(d.unitId);
    editor.readNow = { busy: true };
    ctx.render();
    try {
      const r = await api('POST', '/api/devices/read-now', { bus: d.bus, unitId: Number.isInteger(unitId) ? unitId : -1, profile: d.profile });
      editor.readNow = r?.error ? { error: serverText(r.error, r.msg) } : { points: r?.points ?? [] };
    } catch (e) {
      if (e.status === 401) return;
      editor.readNow = { error: e.body?.error ? e.message : errText(e) };
    }
    ctx.render();
  }

  // ---- rendering ----

  function input(k, attrs = {}) {
    const id = `ent-${k}`;
    const value = editor.draft[k] ?? '';
    const on = (ev) => {
      editor.draft[k] = ev.target.value;
      // A changed field's old error no longer applies (the next check says again if it does).
      if (editor.errors[k]) {
        delete editor.errors[k];
        ev.target.removeAttribute('aria-invalid');
        const el = ev.target.closest('.field')?.querySelector('.field-error');
        if (el) el.textContent = '';
      }
      if (attrs.rerender) ctx.render();
    };
    const common = { id, name: k, 'aria-invalid': editor.errors[k] ? 'true' : null, 'aria-describedby': `${id}-error` };
    const ctl = attrs.options
      ? h('select', { ...common, value, onchange: on }, attrs.options.map((o) => (o instanceof Node ? o : h('option', { value: o.value ?? o, text: o.text ?? o }))))
      : h('input', { ...common, type: 'text', inputmode: attrs.numeric ? 'decimal' : null, value, oninput: on, autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off', list: attrs.list ?? null });
    return h('div', { class: 'field' }, h('label', { for: id, text: t(`ent.${editor.section}.${k}`) }), ctl,
      attrs.hint ? h('div', { class: 'muted small', text: attrs.hint }) : null,
      h('div', { class: 'field-error', id: `${id}-error`, 'data-error-for': k, role: 'alert', text: editor.errors[k] ?? '' }));
  }

  function profileOptions() {
    const opts = [h('option', { value: '', text: t('ent.pick') })];
    for (const source of ['site', 'shipped']) {
      const list = (profiles ?? []).filter((p) => p.source === source);
      if (list.length) opts.push(h('optgroup', { label: t(`ent.source.${source}`) }, list.map((p) => h('option', { value: p.id, text: `${label(p.name, p.id)} · ${p.manufacturer}` }))));
    }
    const cur = editor.draft.profile;
    if (cur && !profileOf(cur) && profiles) opts.push(h('option', { value: cur, text: cur }));
    return opts;
  }

  function profileCard() {
    const p = profileOf(editor.draft.profile);
    if (!p) return null;
    return h('div', { class: 'profile-card', id: 'profile-card' },
      h('div', null, h('strong', { text: p.model }), ' · ', p.manufacturer, ' · ', h('span', { class: 'badge', text: t(`ent.source.${p.source}`) })),
      h('div', { class: 'muted small', text: `${t('ent.points', { n: p.points.length })}：${p.points.slice(0, 8).map((x) => label(x.name, x.id)).join('、')}${p.points.length > 8 ? '…' : ''}` }),
      h('div', { class: 'muted small', text: `${t('ent.transports')}：${p.transports.join(', ')}` }));
  }

  function readNowView() {
    const r = editor.readNow;
    if (!r) return null;
    if (r.busy) return h('p', { class: 'muted', id: 'read-now-result', text: t('cfg.working') });
    if (r.error) return h('p', { class: 'banner error', id: 'read-now-result', role: 'alert', text: r.error });
    return h('div', { id: 'read-now-result', class: 'read-now' },
      h('dl', { class: 'readings' }, r.points.map((p) => h('div', { class: 'reading', 'data-point': p.id },
        h('dt', { text: label(p.name, p.id) }),
        h('dd', { class: p.error ? 'q-bad' : null, text: p.error ? serverText(p.error, p.msg) : p.withheld ? t('ent.withheld') : `${typeof p.value === 'boolean' ? (p.value ? t('ent.on') : t('ent.off')) : fmtNumber(p.value)}${p.unit ? ` ${p.unit}` : ''}` })))));
  }

  function deviceForm() {
    const buses = entries('buses');
    return [
      h('div', { class: 'fields' },
        input('id'), input('name'),
        input('facility', { options: facilityOptions(facilities) }),
        input('profile', { options: profileOptions(), rerender: true }),
        input('bus', { options: [{ value: '', text: t('ent.pick') }, ...buses.map((b) => ({ value: b.id, text: `${b.id} (${b.type === 'modbus-tcp' ? `${b.host}:${b.port}` : b.path})` }))], rerender: true }),
        input('unitId', { numeric: true }), input('pollMs', { numeric: true })),
      profileCard(),
      h('div', { class: 'actions' }, h('button', { type: 'button', 'data-action': 'read-now', disabled: busy || !editor.draft.profile || !editor.draft.bus, onclick: readNow, text: t('ent.readNow') })),
      readNowView(),
    ];
  }

  function busForm() {
    const d = editor.draft;
    const tcp = d.type === 'modbus-tcp';
    const found = ports ?? [];
    return [
      h('datalist', { id: 'serial-ports' }, found.map((p) => h('option', { value: p.path, text: p.target ? `→ ${p.target}` : '' }))),
      h('div', { class: 'fields' },
        input('id'),
        input('type', { options: [{ value: 'modbus-rtu', text: t('ent.rtu') }, { value: 'modbus-tcp', text: t('ent.tcp') }], rerender: true }),
        ...(tcp
          ? [input('host'), input('port', { numeric: true })]
          : [
            input('path', { list: 'serial-ports', hint: found.length ? t('ent.portsFound', { list: found.slice(0, 4).map((p) => p.path).join('、') }) : t('ent.noPorts') }),
            input('baudRate', { options: BAUDS.map(String) }),
            input('parity', { options: ['none', 'even', 'odd'].map((p) => ({ value: p, text: t(`ent.parity.${p}`) })) }),
            input('dataBits', { options: ['8', '7'] }), input('stopBits', { options: ['1', '2'] }),
          ]),
        input('timeoutMs', { numeric: true, hint: t('ent.timeoutHint') })),
    ];
  }

  function alarmForm() {
    const d = editor.draft;
    const dev = entries('devices').find((x) => x.id === d.device);
    // Public points only: the server refuses an alarm on a personal or identifier point.
    const points = (profileOf(dev?.profile)?.points ?? []).filter((p) => p.privacy === 'public');
    const boolean = ['bool', 'bit'].includes(points.find((p) => p.id === d.point)?.type);
    // An on/off point takes only "equals" (the check refuses above/below on it).
    if (boolean && d.condition !== 'equals') { d.condition = 'equals'; d.threshold = ''; }
    return h('div', { class: 'fields' },
      input('id'),
      input('device', { options: [{ value: '', text: t('ent.pick') }, ...entries('devices').map((x) => ({ value: x.id, text: x.name ? `${x.name} (${x.id})` : x.id }))], rerender: true }),
      input('point', { options: [{ value: '', text: t('ent.pick') }, ...points.map((p) => ({ value: p.id, text: `${label(p.name, p.id)}${p.unit ? ` (${p.unit})` : ''}` })), ...(d.point && !points.some((p) => p.id === d.point) ? [{ value: d.point, text: d.point }] : [])], rerender: true }),
      input('condition', { options: (boolean ? ['equals'] : ['above', 'below', 'equals']).map((c) => ({ value: c, text: t(`ent.cond.${c}`) })), rerender: true }),
      d.condition === 'equals' ? input('threshold', { options: [{ value: '', text: t('ent.pick') }, { value: 'true', text: t('ent.on') }, { value: 'false', text: t('ent.off') }] }) : input('threshold', { numeric: true }),
      input('severity', { options: ['warning', 'critical'].map((s) => ({ value: s, text: t(`ent.sev.${s}`) })) }),
      input('forSeconds', { numeric: true }));
  }

  function editorView() {
    const s = editor.section;
    const title = editor.index === undefined ? t(`ent.${s}.add`) : t('ent.editing', { id: entries(s)[editor.index]?.id ?? '' });
    const body = s === 'devices' ? deviceForm() : s === 'buses' ? busForm() : alarmForm();
    const form = h('form', { id: `entry-form-${s}`, class: 'entry-form card', novalidate: true, 'data-section': s },
      h('h3', { text: title }), body,
      h('div', { class: 'field' }, h('label', { for: 'ent-note', text: t('cfg.note') }),
        h('input', { id: 'ent-note', name: 'note', type: 'text', maxlength: 200, value: editor.note ?? '', oninput: (ev) => { editor.note = ev.target.value; } })),
      editor.result ? h('div', { id: 'entry-result', class: `banner ${editor.result.kind}`, role: 'status' }, h('strong', { text: editor.result.text }),
        editor.others.length ? h('ul', null, editor.others.map((x) => h('li', { text: x }))) : null) : null,
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', 'data-action': 'save-entry', disabled: busy, 'aria-busy': busy ? 'true' : null, text: busy ? t('cfg.working') : t('ent.save'), onclick: () => save() }),
        h('button', { type: 'button', 'data-action': 'cancel-entry', disabled: busy, text: t('dialog.cancel'), onclick: () => { editor = null; ctx.render(); } })));
    form.addEventListener('submit', (ev) => ev.preventDefault());
    return form;
  }

  function summary(s, e) {
    if (s === 'devices') return `${e.name ? `${e.name} · ` : ''}${e.profile} · ${e.bus} #${e.unitId} · ${e.pollMs} ms`;
    if (s === 'buses') return e.type === 'modbus-tcp' ? `TCP ${e.host}:${e.port}` : `RTU ${e.path} · ${e.baudRate} ${String(e.parity)[0].toUpperCase()}${e.dataBits}${e.stopBits}`;
    return `${e.device}.${e.point} ${t(`ent.cond.${e.condition}`)} ${e.threshold} · ${t(`ent.sev.${e.severity}`)}`;
  }

  /** The tab for `section`: its entries, then the open form (or an add button). */
  function view(section) {
    if (!profiles) loadPickers();
    const list = entries(section);
    return h('div', { class: 'entries', 'data-entries': section },
      list.length
        ? h('ul', { class: 'entry-list' }, list.map((e, i) => h('li', { class: 'entry', 'data-entry': e.id },
          h('div', { class: 'entry-text' }, h('strong', { text: e.id }), h('span', { class: 'muted small', text: summary(section, e) })),
          h('div', { class: 'actions' },
            h('button', { type: 'button', class: 'small', 'data-action': 'edit-entry', disabled: busy, text: t('ent.edit'), onclick: () => open(section, i) }),
            h('button', { type: 'button', class: 'small danger', 'data-action': 'remove-entry', disabled: busy, text: t('ent.remove'), onclick: () => save(true, section, i) })))))
        : h('p', { class: 'muted', text: t('ent.none') }),
      editor?.section === section ? editorView() : h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', 'data-action': 'add-entry', disabled: busy, text: t(`ent.${section}.add`), onclick: () => open(section) })));
  }

  return { view, close: () => { editor = null; } };
}
