// The site profiles a remote bundle carries: checked as site profile files, the profile set the
// config is validated against, and what is written and taken back (files on disk).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadProfileSet } from '../../src/config/profiles.js';
import { configHash } from '../../src/remote/bundle.js';
import { bundleProfiles, installProfiles } from '../../src/remote/bundle-profiles.js';
import { PROFILE_FILE_MODE } from '../../src/store/profile-files.js';
import { tmpDir } from '../helpers/peers.js';

const CR10 = fs.readFileSync('test/fixtures/site-drivers/acme-cr10.yaml', 'utf8');
const SHIPPED = fs.readFileSync('drivers/r4dcb08.yaml', 'utf8');

/** A config file in a fresh folder, its (empty) site profile folder, and the set loaded from it. */
function siteAt() {
  const dir = tmpDir('cgw-bprof-');
  const configFile = path.join(dir, 'site.yaml');
  const siteDir = path.join(dir, 'drivers');
  return { configFile, siteDir, running: () => loadProfileSet({ configFile }) };
}

describe('site profiles in a bundle', () => {
  it('a new profile: no error, a set with it as a site profile, one change (new file), its sha256', () => {
    const s = siteAt();
    const r = bundleProfiles({ 'acme-cr10.yaml': CR10 }, s.running(), s.siteDir);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.set.get('acme-cr10')?.model).toBe('CR-10 cold-room controller');
    expect(r.set.origins.get('acme-cr10')).toEqual({ source: 'site', file: path.join(s.siteDir, 'acme-cr10.yaml') });
    // The shipped ones are still there, with their origins.
    expect(r.set.origins.get('r4dcb08')?.source).toBe('shipped');
    expect(r.changes).toEqual([{ name: 'acme-cr10.yaml', id: 'acme-cr10', text: CR10, previous: null }]);
    expect(r.summary).toEqual({ 'acme-cr10.yaml': configHash(CR10) });
    // Checked only: nothing written.
    expect(fs.existsSync(s.siteDir)).toBe(false);
  });

  it('refuses, each problem under profiles.<file>: a file name that is not the id, .yml, a shipped id, a built-in id, a broken profile, something not a plain file in its place', () => {
    const s = siteAt();
    const running = s.running();
    const errs = (texts: Record<string, string>) => {
      const r = bundleProfiles(texts, running, s.siteDir);
      expect(r.ok).toBe(false);
      return r.ok ? [] : r.errors;
    };
    expect(errs({ 'acme-x.yaml': CR10 })).toEqual([{ path: 'profiles.acme-x.yaml', message: 'id: "acme-cr10" must equal the file name "acme-x"' }]);
    expect(errs({ 'acme-cr10.yml': CR10 })[0]!.message).toMatch(/file name: must be "acme-cr10\.yaml"/);
    expect(errs({ 'r4dcb08.yaml': SHIPPED })[0]!.message).toMatch(/is the id of the shipped profile .*r4dcb08\.yaml/);
    expect(errs({ 'gpio-contact.yaml': CR10.replace('id: acme-cr10', 'id: gpio-contact') })[0]!.message).toMatch(/built-in profile of GPIO inputs/);
    const broken = errs({ 'acme-cr10.yaml': CR10.replace('address: 1', 'address: 0') });
    expect(broken.length).toBeGreaterThan(0);
    expect(broken.every((e) => e.path === 'profiles.acme-cr10.yaml')).toBe(true);
    // Every problem of every file, not the first one only.
    expect(errs({ 'acme-x.yaml': CR10, 'acme-cr10.yml': CR10 }).map((e) => e.path)).toEqual(['profiles.acme-cr10.yml', 'profiles.acme-x.yaml']);
    fs.mkdirSync(s.siteDir);
    fs.symlinkSync('/etc/passwd', path.join(s.siteDir, 'acme-cr10.yaml'));
    expect(errs({ 'acme-cr10.yaml': CR10 })[0]!.message).toMatch(/is not a plain file .*left as it is/);
    // No site profile folder (the config sits in the package): said so.
    const none = bundleProfiles({ 'acme-cr10.yaml': CR10 }, running, null);
    expect(none.ok ? [] : none.errors).toEqual([{ path: 'profiles', message: expect.stringMatching(/no site profile folder/) }]);
  });

  it('a file stored and loaded with the same text is no change; stored but not loaded yet (an upload since the start) is one', () => {
    const s = siteAt();
    fs.mkdirSync(s.siteDir);
    fs.writeFileSync(path.join(s.siteDir, 'acme-cr10.yaml'), CR10);
    const loaded = bundleProfiles({ 'acme-cr10.yaml': CR10 }, s.running(), s.siteDir);
    expect(loaded.ok && loaded.changes).toEqual([]);
    // The running set from before the file was there.
    const before = loadProfileSet({ configFile: path.join(tmpDir('cgw-bprof-'), 'site.yaml') });
    const stored = bundleProfiles({ 'acme-cr10.yaml': CR10 }, before, s.siteDir);
    expect(stored.ok && stored.changes).toEqual([{ name: 'acme-cr10.yaml', id: 'acme-cr10', text: CR10, previous: CR10 }]);
    // Another text for a loaded file: a change that remembers the old text.
    const edited = CR10.replace('Cold-room controller (test)', 'Cold-room controller rev B');
    const changed = bundleProfiles({ 'acme-cr10.yaml': edited }, s.running(), s.siteDir);
    expect(changed.ok && changed.changes).toEqual([{ name: 'acme-cr10.yaml', id: 'acme-cr10', text: edited, previous: CR10 }]);
  });

  it('installs the changed files (mode 0640, no staging folder left) and the undo puts back what was there: the old text, no new file', () => {
    const s = siteAt();
    fs.mkdirSync(s.siteDir);
    const other = CR10.replaceAll('acme-cr10', 'acme-cr20');
    fs.writeFileSync(path.join(s.siteDir, 'acme-cr20.yaml'), other);
    const edited = other.replace('Cold-room controller (test)', 'Cold-room controller rev B');
    const r = bundleProfiles({ 'acme-cr10.yaml': CR10, 'acme-cr20.yaml': edited }, s.running(), s.siteDir);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.changes.map((c) => [c.name, c.previous === null])).toEqual([
      ['acme-cr10.yaml', true],
      ['acme-cr20.yaml', false],
    ]);
    const undo = installProfiles(s.siteDir, r.changes);
    expect(fs.readFileSync(path.join(s.siteDir, 'acme-cr10.yaml'), 'utf8')).toBe(CR10);
    expect(fs.readFileSync(path.join(s.siteDir, 'acme-cr20.yaml'), 'utf8')).toBe(edited);
    expect(fs.statSync(path.join(s.siteDir, 'acme-cr10.yaml')).mode & 0o777).toBe(PROFILE_FILE_MODE);
    expect(fs.readdirSync(s.siteDir).sort()).toEqual(['acme-cr10.yaml', 'acme-cr20.yaml']);
    // What is stored loads as the set the config was checked against.
    expect(s.running().ids('site').sort()).toEqual(['acme-cr10', 'acme-cr20']);
    undo();
    expect(fs.readdirSync(s.siteDir)).toEqual(['acme-cr20.yaml']);
    expect(fs.readFileSync(path.join(s.siteDir, 'acme-cr20.yaml'), 'utf8')).toBe(other);
  });
});
