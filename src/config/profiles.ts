// Loads and checks every device profile in drivers/. Schema first, then the invariants a
// schema cannot express per field: unique point ids, no overlapping points, no point in a hole.
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { pointSpan, ProfileSchema, type Profile } from './profile-schema.js';
import { formatIssues, yamlErrors } from './issues.js';

export class ProfileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}:\n  ${problems.join('\n  ')}`);
  }
}

export function parseProfile(text: string, file: string): Profile {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true });
  if (doc.errors.length) throw new ProfileError(file, yamlErrors(doc));
  const parsed = ProfileSchema.safeParse(doc.toJS(), { reportInput: true });
  if (!parsed.success) throw new ProfileError(file, formatIssues(parsed.error, doc, lc));
  const problems = profileInvariants(parsed.data);
  const base = path.basename(file).replace(/\.ya?ml$/, '');
  if (file.endsWith('.yaml') && base !== parsed.data.id) problems.push(`id: "${parsed.data.id}" must equal the file name "${base}"`);
  if (problems.length) throw new ProfileError(file, problems);
  return parsed.data;
}

export function profileInvariants(p: Profile): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  p.points.forEach((pt, i) => {
    if (seen.has(pt.id)) problems.push(`points[${i}].id: "${pt.id}" is used twice`);
    seen.add(pt.id);
  });
  for (let i = 0; i < p.points.length; i++) {
    const a = p.points[i]!;
    const sa = pointSpan(a);
    for (let j = i + 1; j < p.points.length; j++) {
      const b = p.points[j]!;
      if (a.register !== b.register) continue;
      const sb = pointSpan(b);
      if (sa.from > sb.to || sb.from > sa.to) continue;
      const sharedBits = a.type === 'bit' && b.type === 'bit' && sa.from === sb.from && a.bit !== b.bit;
      if (!sharedBits) problems.push(`points[${j}] "${b.id}" overlaps points[${i}] "${a.id}" (${a.register} ${sb.from}..${sb.to})`);
    }
    p.holes.forEach((h, k) => {
      if (h.register === a.register && h.from <= sa.to && h.to >= sa.from) problems.push(`points[${i}] "${a.id}" lies in holes[${k}]`);
    });
    if (a.writable && (a.register === 'input' || a.register === 'discrete')) {
      problems.push(`points[${i}].writable: ${a.register} registers are read-only in Modbus`);
    }
  }
  if (p.events) {
    const byId = new Map(p.points.map((x) => [x.id, x]));
    const t = byId.get(p.events.trigger);
    if (!t) problems.push(`events.trigger: no point "${p.events.trigger}"`);
    else if (t.kind !== 'counter') problems.push(`events.trigger: "${t.id}" must be a counter`);
    if (p.events.subject !== undefined) {
      const s = byId.get(p.events.subject);
      if (!s) problems.push(`events.subject: no point "${p.events.subject}"`);
      else if (s.privacy !== 'identifier') problems.push(`events.subject: "${s.id}" must be an identifier point`);
    }
    p.events.values.forEach((v, i) => {
      const x = byId.get(v);
      if (!x) problems.push(`events.values[${i}]: no point "${v}"`);
      else if (x.privacy !== 'personal') problems.push(`events.values[${i}]: "${v}" must be a personal point`);
    });
  }
  p.points.forEach((pt, i) => {
    if (pt.bands && pt.privacy !== 'personal') problems.push(`points[${i}].bands: only personal points are banded`);
    if (pt.id === 'availability') problems.push(`points[${i}].id: "availability" is reserved for the device's availability topic`);
  });
  return problems;
}

/** Loads every *.yaml in `dir`. Throws one error listing every bad file. */
export function loadProfiles(dir: string): Map<string, Profile> {
  const out = new Map<string, Profile>();
  const errors: string[] = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.yaml')).sort()) {
    const file = path.join(dir, f);
    try {
      const p = parseProfile(fs.readFileSync(file, 'utf8'), file);
      out.set(p.id, p);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length) throw new Error(`invalid device profiles:\n${errors.join('\n')}`);
  return out;
}
