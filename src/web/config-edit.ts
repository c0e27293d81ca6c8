// Config editing for the web page: the common fields as a flat form keyed by config path,
// merged into the YAML document with its comments kept; and validation errors split into path,
// message and line so the page can show each next to its field. Which changes can be applied
// in place is a config concern: src/config/apply-mode.ts.
import { isMap, isSeq, parseDocument } from 'yaml';
import type { SiteConfig } from '../config/site-schema.js';
import { identify, type Coded } from '../messages/identify.js';
import type { ConfigEditT } from './api-schemas.js';

export interface FieldError {
  path: string;
  message: string;
  /** The message's catalogue code and parameters (src/messages/), for the page's language. */
  msg: Coded;
  line?: number;
}

/** A path and message from elsewhere (a fixed field, a secret) with its catalogue code. */
export function fieldError(e: { path: string; message: string; line?: number }): FieldError {
  return { ...e, msg: identify(e.message) };
}

/** "devices[2].unitId: must be 1..247 (line 14)" -> {path, message, line}. */
export function splitError(e: string): FieldError {
  const m = /^(.+?): (.*?)(?: \(line (\d+)\))?$/s.exec(e);
  if (!m) return { path: '', message: e, msg: identify(e) };
  return { path: m[1]!, message: m[2]!, msg: identify(m[2]!), ...(m[3] ? { line: Number(m[3]) } : {}) };
}

/** The form's fields with their current values (ids are shown, not edited). */
export function formOf(c: SiteConfig): Record<string, string | number | null> {
  const out: Record<string, string | number | null> = {
    'site.name': c.site.name ?? null,
    'uplink.url': c.uplink.url,
    'uplink.windowSeconds': c.uplink.windowSeconds,
    'privacy.k': c.privacy.k,
    'log.level': c.log?.level ?? 'info',
  };
  c.devices.forEach((d, i) => {
    out[`devices[${i}].id`] = d.id;
    out[`devices[${i}].pollMs`] = d.pollMs;
    out[`devices[${i}].name`] = d.name ?? null;
  });
  return out;
}

const NUMERIC = /\.(windowSeconds|k|pollMs)$/;

function pathOf(key: string): (string | number)[] {
  return key.split('.').flatMap((part) => {
    const m = /^(\w+)\[(\d+)\]$/.exec(part);
    return m ? [m[1]!, Number(m[2])] : [part];
  });
}

/** `text` with the form's fields set. A number typed into a text box arrives as a string and
 * is set as a number; an empty optional field is removed. Everything else in the file,
 * comments included, stays as it was. */
export function mergeForm(text: string, form: Record<string, string | number | null>): string {
  const doc = parseDocument(text);
  for (const [key, raw] of Object.entries(form)) {
    const path = pathOf(key);
    if (raw === null || raw === '') {
      doc.deleteIn(path);
      continue;
    }
    const value = NUMERIC.test(key) && typeof raw === 'string' && /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
    if (path[0] === 'devices' && !doc.hasIn(path.slice(0, 2))) continue; // no such device: ignore, never create one
    doc.setIn(path, value);
  }
  return doc.toString();
}

/** An edit that names no existing entry (the page's list is out of date). */
export class EditError extends Error {}

type Cell = string | number | boolean | null | undefined;

/** Fields typed as numbers in the schema: a digit string from a text box becomes a number (a
 * non-number stays text, so the config check names the field and what was typed). */
const NUMBERS: Record<ConfigEditT['section'], Set<string>> = {
  devices: new Set(['unitId', 'pollMs']),
  buses: new Set(['port', 'timeoutMs', 'baudRate', 'dataBits', 'stopBits']),
  alarms: new Set(['forSeconds']),
};
/** Keys of one bus type that must go when a bus changes type (strict schema: unknown keys fail). */
const BUS_KEYS: Record<string, string[]> = {
  'modbus-tcp': ['host', 'port', 'maxInFlight'],
  'modbus-rtu': ['path', 'baudRate', 'parity', 'dataBits', 'stopBits'],
};

function typed(v: Cell, numeric: boolean): string | number | boolean | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'string') return v;
  const s = v.trim();
  if (s === '') return undefined;
  return numeric && /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : s;
}

/** The entry as config keys: alarms' condition + threshold become above/below/equals (only when
 * either is sent; a threshold alone keeps the rule's condition, `current`). */
function entryOf(e: ConfigEditT, current?: string): Record<string, string | number | boolean | undefined> {
  const v = e.value as Record<string, Cell>;
  const out: Record<string, string | number | boolean | undefined> = {};
  for (const [k, raw] of Object.entries(v)) {
    if (e.section === 'alarms' && (k === 'condition' || k === 'threshold')) continue;
    out[k] = typed(raw, NUMBERS[e.section].has(k));
  }
  if (e.section === 'alarms' && (v.condition !== undefined || v.threshold !== undefined)) {
    const cond = (v.condition as string | undefined) ?? current ?? 'above';
    const th = v.threshold;
    for (const c of ['above', 'below', 'equals']) out[c] = undefined;
    // equals is on/off; above/below a number (the check refuses a threshold that is neither).
    out[cond] = cond === 'equals' ? (th === 'true' || th === true ? true : th === 'false' || th === false ? false : typed(th, false)) : typed(th, true);
  }
  return out;
}

/** `text` with one entry of devices, buses or alarms added, changed or removed; the rest of
 * the file, comments included, as it was. On a change only the form's fields are touched
 * (a device's privacy overrides or maxGap stay); a field left empty is removed, so its default
 * applies. The result still goes through the config checks before anything runs. */
export function mergeEdit(text: string, e: ConfigEditT): string {
  const doc = parseDocument(text);
  const seq = doc.get(e.section);
  const length = isSeq(seq) ? seq.items.length : 0;
  if (e.index !== undefined && e.index >= length) throw new EditError(`no ${e.section}[${e.index}]: the config has ${length}; reload the page`);
  if (e.value === null) {
    doc.deleteIn([e.section, e.index!]);
    return text_(doc);
  }
  const current = e.index === undefined ? undefined : ['above', 'below', 'equals'].find((c) => doc.hasIn([e.section, e.index!, c]));
  const entry = entryOf(e, current);
  if (e.index === undefined) {
    const clean = Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== undefined));
    const node = doc.createNode(clean);
    if (isSeq(seq)) {
      // Written like its neighbours: one flow-map line each, if that is how the file has them.
      const last = seq.items[seq.items.length - 1];
      if (isMap(last) && last.flow) node.flow = true;
      seq.add(node);
    } else doc.set(e.section, doc.createNode([clean]));
    return text_(doc);
  }
  const type = entry.type;
  for (const [k, v] of Object.entries(entry)) {
    const path = [e.section, e.index, k];
    if (v === undefined) doc.deleteIn(path);
    else doc.setIn(path, v);
  }
  // A bus that changes type loses the other type's keys (also ones the form does not show).
  if (e.section === 'buses' && typeof type === 'string') {
    for (const [t, keys] of Object.entries(BUS_KEYS)) if (t !== type) for (const k of keys) doc.deleteIn([e.section, e.index, k]);
  }
  return text_(doc);
}

/** No line folding: a long flow-map line stays one line, as the technician wrote it. */
function text_(doc: ReturnType<typeof parseDocument>): string {
  return doc.toString({ lineWidth: 0 });
}

/** Devices, buses and alarm rules as the entry forms show them (from the running config). */
export function entriesOf(c: SiteConfig) {
  return {
    devices: c.devices.map((d) => ({ id: d.id, name: d.name ?? null, facility: d.facility, profile: d.profile, bus: d.bus, unitId: d.unitId, pollMs: d.pollMs })),
    buses: c.buses.map((b) =>
      b.type === 'modbus-tcp'
        ? { id: b.id, type: b.type, host: b.host, port: b.port, timeoutMs: b.timeoutMs }
        : { id: b.id, type: b.type, path: b.path, baudRate: b.baudRate, parity: b.parity, dataBits: b.dataBits, stopBits: b.stopBits, timeoutMs: b.timeoutMs },
    ),
    alarms: c.alarms.map((a) => {
      const condition = a.equals !== undefined ? 'equals' : a.below !== undefined ? 'below' : 'above';
      return { id: a.id, device: a.device, point: a.point, condition, threshold: a.equals ?? a.below ?? a.above ?? null, severity: a.severity, forSeconds: a.forSeconds };
    }),
  };
}
