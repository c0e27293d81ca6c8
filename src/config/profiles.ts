// Loads and checks every device profile: the shipped ones (the package's drivers/) and the
// site's own (drivers/ beside the config file). Schema first, then the invariants a schema
// cannot express per field: unique point ids, no overlapping points, no point in a hole.
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { pointSpan, ProfileSchema, type Profile } from './profile-schema.js';
import { formatIssues, yamlErrors } from './issues.js';
import { DRIVERS_DIR } from './paths.js';
import { GPIO_POINT } from './gpio-profile.js';
import { FACILITY_TYPES_FILE, loadFacilityTypes, type FacilityTypeSet } from './facility-types.js';

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
  const errors: string[] = [];
  const out = new Map(readProfileDir(dir, errors).map(({ profile }) => [profile.id, profile]));
  if (errors.length) throw new Error(`invalid device profiles:\n${errors.join('\n')}`);
  return out;
}

export type ProfileSource = 'shipped' | 'site';

/** Where a loaded profile came from. */
export interface ProfileOrigin {
  source: ProfileSource;
  file: string;
}

/** The profiles a gateway runs with: id -> profile, as device code reads them, and beside it
 * where each came from (kept out of Profile, which is what a profile file says). */
export class ProfileSet extends Map<string, Profile> {
  readonly origins = new Map<string, ProfileOrigin>();

  constructor(
    /** The site profile folder looked in (it need not exist); null when there is none. */
    readonly siteDir: string | null,
    /** The facility types of the same folders (drivers/facility-types.yaml): a profile's
     * `facilities` and a config's facilities are checked against them. */
    readonly facilityTypes: FacilityTypeSet,
  ) {
    super();
  }

  ids(source: ProfileSource): string[] {
    return [...this.origins].filter(([, o]) => o.source === source).map(([id]) => id);
  }
}

let shippedTypes: FacilityTypeSet | null = null;

/** The facility types that go with `profiles`: those loaded with them (loadProfileSet), else
 * the shipped ones (a plain Map, as tests build). */
export function facilityTypesOf(profiles: ReadonlyMap<string, Profile>): FacilityTypeSet {
  if (profiles instanceof ProfileSet) return profiles.facilityTypes;
  shippedTypes ??= loadFacilityTypes(DRIVERS_DIR, null);
  return shippedTypes;
}

/** Where profile `id` came from, when `profiles` was loaded by loadProfileSet (a plain Map, as
 * tests build, knows no origins). */
export function profileOrigin(profiles: ReadonlyMap<string, Profile>, id: string): ProfileOrigin | undefined {
  return profiles instanceof ProfileSet ? profiles.origins.get(id) : undefined;
}

/** The site profile folder of a config file: drivers/ beside it (/etc/community-gateway/drivers
 * for the installed service). */
export function siteProfileDir(configFile: string): string {
  return path.join(path.dirname(path.resolve(configFile)), 'drivers');
}

/** The shipped profiles and, with `configFile`, the site profiles beside it, checked alike. A
 * site profile may not take a shipped id (no precedence: one id, one register map). Throws one
 * error listing every bad file. Every command and the daemon load profiles through here. */
export function loadProfileSet(opts: { configFile?: string; shippedDir?: string } = {}): ProfileSet {
  const shippedDir = opts.shippedDir ?? DRIVERS_DIR;
  const wanted = opts.configFile === undefined ? null : siteProfileDir(opts.configFile);
  // A config file in the package root would make the shipped folder its own site folder.
  const siteDir = wanted !== null && samePath(wanted, shippedDir) ? null : wanted;
  const errors: string[] = [];
  let types: FacilityTypeSet;
  try {
    types = loadFacilityTypes(shippedDir, siteDir);
  } catch (err) {
    // Profiles cannot be checked without the types they name.
    throw new Error(`invalid facility types:\n${(err as Error).message}`);
  }
  const set = new ProfileSet(siteDir, types);
  for (const { profile, file } of readProfileDir(shippedDir, errors)) {
    set.set(profile.id, profile);
    set.origins.set(profile.id, { source: 'shipped', file });
  }
  if (siteDir !== null) {
    for (const { profile, file } of readSiteDir(siteDir, errors)) {
      const clash = clashProblem(profile.id, set.origins.get(profile.id)?.file ?? shippedFileOf(profile.id, shippedDir));
      if (clash) {
        errors.push(new ProfileError(file, [clash]).message);
        continue;
      }
      set.set(profile.id, profile);
      set.origins.set(profile.id, { source: 'site', file });
    }
  }
  for (const [id, profile] of set) {
    const problems = facilityProblems(profile, types);
    if (problems.length) errors.push(new ProfileError(set.origins.get(id)!.file, problems).message);
  }
  if (errors.length) throw new Error(`invalid device profiles:\n${errors.join('\n')}`);
  return set;
}

/** A profile's `facilities` must name known facility types. */
export function facilityProblems(profile: Profile, types: FacilityTypeSet): string[] {
  return profile.facilities.flatMap((f, i) => (types.has(f) ? [] : [`facilities[${i}]: no facility type "${f}" (${types.ids().join(', ')})`]));
}

/** Checks one profile file as loadProfileSet would load it from a site folder, clash with the
 * shipped ids included (the shipped file itself is no clash). Throws a ProfileError. */
export function checkProfileFile(file: string, shippedDir = DRIVERS_DIR, types?: FacilityTypeSet): { profile: Profile; origin: ProfileOrigin } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ProfileError(file, [`cannot read: ${(err as Error).message}`]);
  }
  return checkProfileText(text, file, shippedDir, types);
}

/** Checks a profile's text as if it were stored as `file` (an upload, a remote bundle): what is
 * checked here is what is written there, so the file loads at the next start. Throws a ProfileError. */
export function checkProfileText(text: string, file: string, shippedDir = DRIVERS_DIR, types?: FacilityTypeSet): { profile: Profile; origin: ProfileOrigin } {
  if (path.basename(file) === FACILITY_TYPES_FILE) throw new ProfileError(file, [`file name: ${FACILITY_TYPES_FILE} holds the facility types, not a device profile`]);
  const profile = parseProfile(text, file);
  // The types it will load with: the shipped ones and those of the folder it is stored in.
  const dir = path.dirname(file);
  let known = types;
  try {
    known ??= loadFacilityTypes(shippedDir, samePath(dir, shippedDir) ? null : dir);
  } catch (err) {
    throw new ProfileError(file, [`the facility types beside it cannot be read: ${(err as Error).message}`]);
  }
  const unknown = facilityProblems(profile, known);
  if (unknown.length) throw new ProfileError(file, unknown);
  if (!file.endsWith('.yaml')) throw new ProfileError(file, [`file name: must be "${profile.id}.yaml" (only *.yaml files are loaded)`]);
  const shipped = shippedFileOf(profile.id, shippedDir);
  if (shipped && samePath(shipped, file)) return { profile, origin: { source: 'shipped', file } };
  const clash = clashProblem(profile.id, shipped);
  if (clash) throw new ProfileError(file, [clash]);
  return { profile, origin: { source: 'site', file } };
}

/** The built-in profiles of GPIO inputs (src/config/gpio-profile.ts) are shipped ids too. */
const BUILT_IN = new Set(Object.keys(GPIO_POINT).map((k) => `gpio-${k}`));

function clashProblem(id: string, shippedFile: string | undefined): string | null {
  if (shippedFile) return `id: "${id}" is the id of the shipped profile ${shippedFile}: a site profile cannot replace a shipped one; give it an id (and file name) of its own`;
  if (BUILT_IN.has(id)) return `id: "${id}" is the built-in profile of GPIO inputs: give the site profile an id (and file name) of its own`;
  return null;
}

/** The shipped file that holds `id`, if any (a shipped profile's id is its file name). */
function shippedFileOf(id: string, shippedDir: string): string | undefined {
  const f = path.join(shippedDir, `${id}.yaml`);
  return fs.existsSync(f) ? f : undefined;
}

interface LoadedFile {
  profile: Profile;
  file: string;
}

function readProfileDir(dir: string, errors: string[], names = fs.readdirSync(dir)): LoadedFile[] {
  const out: LoadedFile[] = [];
  for (const f of names.filter((n) => n.endsWith('.yaml') && n !== FACILITY_TYPES_FILE).sort()) {
    const file = path.join(dir, f);
    try {
      out.push({ profile: parseProfile(fs.readFileSync(file, 'utf8'), file), file });
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  return out;
}

/** A missing site folder is no error (no site profiles); an unreadable one is. A *.yml file
 * there is refused rather than silently skipped: the technician meant it as a profile. Files
 * whose names start with a dot (editor locks, backups) are skipped. */
function readSiteDir(dir: string, errors: string[]): LoadedFile[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return [];
    errors.push(`${dir}: cannot read the site profile folder (${e.code === 'ENOTDIR' ? 'not a folder' : e.message})`);
    return [];
  }
  for (const n of names.filter((x) => x.endsWith('.yml')).sort()) {
    errors.push(new ProfileError(path.join(dir, n), [`file name: only *.yaml files are loaded: rename it to ${n.replace(/\.yml$/, '.yaml')}`]).message);
  }
  return readProfileDir(dir, errors, names);
}

function samePath(a: string, b: string): boolean {
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  return real(a) === real(b);
}
