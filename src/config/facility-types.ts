// Facility types as data: drivers/facility-types.yaml (shipped) and, beside a site's config,
// drivers/facility-types.yaml with the site's own types. Checked once here, at load; config,
// profiles, the page and the evaluation read the loaded set.
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { formatIssues, yamlErrors } from './issues.js';

/** The one file name in drivers/ that is not a device profile. */
export const FACILITY_TYPES_FILE = 'facility-types.yaml';

/** What the operation evaluation can report for a type (src/platform/report, docs/EVALUATION.md). */
export const INDICATORS = ['availability', 'alarms', 'meals', 'cold-chain', 'personal-measures', 'air-quality', 'disinfection-hours'] as const;
export type Indicator = (typeof INDICATORS)[number];

/** A type id is a local topic level and the `facility` of uplink items. */
export const FACILITY_TYPE_ID = /^[a-z][a-z0-9-]{0,31}$/;

const Label = z.strictObject({ zh: z.string().min(1), en: z.string().min(1) });

export const FacilityTypeSchema = z.strictObject({
  id: z.string().regex(FACILITY_TYPE_ID, 'must be 1..32 lower-case letters, digits or "-", starting with a letter (it becomes an MQTT topic level)'),
  code: z.string().regex(/^\d{2}$/, 'must be two digits, e.g. "03"'),
  name: Label,
  indicators: z
    .array(z.enum(INDICATORS, { error: `must be one of ${INDICATORS.join(', ')}` }))
    .min(1)
    .refine((a) => new Set(a).size === a.length, 'lists an indicator twice'),
  description: z.string().optional(),
});
export type FacilityType = z.infer<typeof FacilityTypeSchema>;

const FileSchema = z.strictObject({ types: z.array(FacilityTypeSchema).min(1) });

export type FacilityTypeSource = 'shipped' | 'site';

export class FacilityTypeError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}:\n  ${problems.join('\n  ')}`);
  }
}

/** The facility types a gateway runs with, in file order (shipped first). */
export class FacilityTypeSet {
  private readonly byId = new Map<string, FacilityType & { source: FacilityTypeSource }>();

  add(t: FacilityType, source: FacilityTypeSource): void {
    this.byId.set(t.id, { ...t, source });
  }

  get(id: string): (FacilityType & { source: FacilityTypeSource }) | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  all(): (FacilityType & { source: FacilityTypeSource })[] {
    return [...this.byId.values()];
  }
}

/** Shipped codes are 01-49; a site's own 50-99, so a type shipped later never takes a site's code. */
const SITE_CODES = 50;

/** Parses one facility-types file; `source` decides which codes it may use. */
export function parseFacilityTypes(text: string, file: string, source: FacilityTypeSource): FacilityType[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) throw new FacilityTypeError(file, yamlErrors(doc));
  const parsed = FileSchema.safeParse(doc.toJS() ?? {}, { reportInput: true });
  if (!parsed.success) throw new FacilityTypeError(file, formatIssues(parsed.error, doc, lc));
  const problems: string[] = [];
  const ids = new Set<string>();
  const codes = new Set<string>();
  parsed.data.types.forEach((t, i) => {
    if (ids.has(t.id)) problems.push(`types[${i}].id: "${t.id}" is used twice`);
    if (codes.has(t.code)) problems.push(`types[${i}].code: "${t.code}" is used twice`);
    ids.add(t.id);
    codes.add(t.code);
    const n = Number(t.code);
    if (source === 'site' && n < SITE_CODES) problems.push(`types[${i}].code: "${t.code}": a site's own types use codes ${SITE_CODES}-99 (01-49 are shipped)`);
    if (source === 'shipped' && n >= SITE_CODES) problems.push(`types[${i}].code: "${t.code}": shipped types use codes 01-49`);
  });
  if (problems.length) throw new FacilityTypeError(file, problems);
  return parsed.data.types;
}

/** The shipped types from `shippedDir`, then the site's from `siteDir` (which need not exist).
 * A site type may not take a shipped id: one id, one meaning across the province.
 * Throws one FacilityTypeError listing every problem. */
export function loadFacilityTypes(shippedDir: string, siteDir: string | null): FacilityTypeSet {
  const set = new FacilityTypeSet();
  const shippedFile = path.join(shippedDir, FACILITY_TYPES_FILE);
  for (const t of parseFacilityTypes(fs.readFileSync(shippedFile, 'utf8'), shippedFile, 'shipped')) set.add(t, 'shipped');
  if (siteDir === null) return set;
  const siteFile = path.join(siteDir, FACILITY_TYPES_FILE);
  let text: string;
  try {
    text = fs.readFileSync(siteFile, 'utf8');
  } catch (err) {
    // No file, or no folder (the profile loader names a "drivers" that is not one).
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return set;
    throw new FacilityTypeError(siteFile, [`cannot read: ${(err as Error).message}`]);
  }
  const problems: string[] = [];
  // Codes cannot clash: parseFacilityTypes keeps the two sources to their own ranges.
  parseFacilityTypes(text, siteFile, 'site').forEach((t, i) => {
    if (set.has(t.id)) problems.push(`types[${i}].id: "${t.id}" is a shipped facility type (${shippedFile}): a site type needs an id of its own`);
    else set.add(t, 'site');
  });
  if (problems.length) throw new FacilityTypeError(siteFile, problems);
  return set;
}
