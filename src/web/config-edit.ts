// Config editing for the web page: the common fields as a flat form keyed by config path,
// merged into the YAML document with its comments kept; and validation errors split into path,
// message and line so the page can show each next to its field. Which changes can be applied
// in place is a config concern: src/config/apply-mode.ts.
import { parseDocument } from 'yaml';
import type { SiteConfig } from '../config/site-schema.js';

export interface FieldError {
  path: string;
  message: string;
  line?: number;
}

/** "devices[2].unitId: must be 1..247 (line 14)" -> {path, message, line}. */
export function splitError(e: string): FieldError {
  const m = /^(.+?): (.*?)(?: \(line (\d+)\))?$/s.exec(e);
  if (!m) return { path: '', message: e };
  return { path: m[1]!, message: m[2]!, ...(m[3] ? { line: Number(m[3]) } : {}) };
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
