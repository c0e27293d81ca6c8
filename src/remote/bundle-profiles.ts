// The site profiles a config bundle carries (docs/UPLINK.md "Remote configuration: the
// gateway"): each checked as the daemon loads a site profile (checkProfileText: schema,
// invariants, file name = id + ".yaml", no shipped or built-in id), then the profile set the
// bundle's config is validated against: the running one with these added or replaced. A
// bundle adds or replaces site profiles; it never removes one.
import path from 'node:path';
import type { Profile } from '../config/profile-schema.js';
import { checkProfileText, facilityTypesOf, profileOrigin, ProfileError, ProfileSet } from '../config/profiles.js';
import { DRIVERS_DIR } from '../config/paths.js';
import { configHash } from './bundle.js';
import { existingFile, removeProfileFiles, writeProfileFiles } from '../store/profile-files.js';

/** One profile file the bundle writes: new, or replacing `previous`. */
export interface ProfileChange {
  name: string;
  id: string;
  text: string;
  /** The text of the file it replaces; null for a new file. */
  previous: string | null;
}

export type BundleProfiles =
  | { ok: true; set: ProfileSet; changes: ProfileChange[]; summary: Record<string, string> }
  | { ok: false; errors: { path: string; message: string }[] };

/**
 * `texts`: file name -> text, as the bundle has them. `running`: the profiles the gateway runs
 * with. `siteDir`: its site profile folder (null when the config sits in the package: none).
 * A file whose text is the one stored and loaded already is no change.
 */
export function bundleProfiles(texts: Readonly<Record<string, string>>, running: ReadonlyMap<string, Profile>, siteDir: string | null, shippedDir = DRIVERS_DIR): BundleProfiles {
  const names = Object.keys(texts).sort();
  if (siteDir === null) {
    return { ok: false, errors: [{ path: 'profiles', message: 'this gateway runs on a config inside its package folder: it has no site profile folder to install profiles into' }] };
  }
  const errors: { path: string; message: string }[] = [];
  const set = new ProfileSet(siteDir, facilityTypesOf(running));
  for (const [id, p] of running) {
    set.set(id, p);
    const o = profileOrigin(running, id);
    if (o) set.origins.set(id, o);
  }
  const changes: ProfileChange[] = [];
  const summary: Record<string, string> = {};
  for (const name of names) {
    const text = texts[name]!;
    const file = path.join(siteDir, name);
    let profile: Profile;
    try {
      profile = checkProfileText(text, file, shippedDir, set.facilityTypes).profile;
    } catch (err) {
      if (!(err instanceof ProfileError)) throw err;
      for (const m of err.problems) errors.push({ path: `profiles.${name}`, message: m });
      continue;
    }
    const existing = existingFile(file);
    if (existing.kind === 'other') {
      errors.push({ path: `profiles.${name}`, message: `${file} exists and is not a plain file (a link or a folder): it is left as it is` });
      continue;
    }
    summary[name] = configHash(text);
    set.set(profile.id, profile);
    set.origins.set(profile.id, { source: 'site', file });
    const stored = existing.kind === 'file' ? existing.text : null;
    const loaded = profileOrigin(running, profile.id)?.file === file || (!(running instanceof ProfileSet) && running.has(profile.id));
    if (stored !== text || !loaded) changes.push({ name, id: profile.id, text, previous: stored });
  }
  return errors.length ? { ok: false, errors } : { ok: true, set, changes, summary };
}

/** Writes the changed files; the function returned puts back what was there before. */
export function installProfiles(siteDir: string, changes: readonly ProfileChange[]): () => void {
  writeProfileFiles(siteDir, changes.map((c) => ({ name: c.name, text: c.text })));
  return () => {
    writeProfileFiles(siteDir, changes.filter((c) => c.previous !== null).map((c) => ({ name: c.name, text: c.previous! })));
    removeProfileFiles(siteDir, changes.filter((c) => c.previous === null).map((c) => c.name));
  };
}
