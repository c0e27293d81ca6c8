// systemd/install.sh into a throwaway root, twice: the layout is right and the second run keeps
// the technician's config and site profiles.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/peers.js';

const SCRIPT = path.resolve('systemd/install.sh');

function install(root: string) {
  const r = spawnSync('bash', [SCRIPT, '--root', root, '--no-npm'], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

/** Members of a group in an /etc/group file, or null when the group is absent. */
function members(groupFile: string, group: string): string[] | null {
  const line = fs
    .readFileSync(groupFile, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${group}:`));
  if (line === undefined) return null;
  const list = line.split(':')[3] ?? '';
  return list === '' ? [] : list.split(',');
}

describe('systemd/install.sh', () => {
  beforeAll(() => {
    if (!fs.existsSync(path.resolve('dist/src/cli.js'))) {
      throw new Error('dist/src/cli.js is missing: build first (npm test runs tsc; or npm run build)');
    }
  });

  it('lays out the files in a throwaway root, twice, and keeps an edited config', () => {
    const root = tmpDir('cgw-root-');
    fs.mkdirSync(path.join(root, 'etc'));
    // Just enough for systemd-sysusers to extend: root, and dialout without gpio.
    fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
    fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\ndialout:x:20:\n');

    const first = install(root);
    expect(first.status, first.out).toBe(0);

    const expected = [
      'opt/community-gateway/dist/src/cli.js',
      'opt/community-gateway/package.json',
      'opt/community-gateway/package-lock.json',
      'opt/community-gateway/drivers',
      'opt/community-gateway/config/example-field.yaml',
      'etc/community-gateway/config.yaml',
      'etc/systemd/system/community-gateway.service',
      'etc/udev/rules.d/99-community-gateway-serial.rules',
      'usr/lib/sysusers.d/community-gateway.conf',
      'var/lib/community-gateway',
      'usr/local/bin/community-gateway',
    ];
    for (const f of expected) expect(fs.existsSync(path.join(root, f)), `${f} after the first run\n${first.out}`).toBe(true);
    expect(fs.readFileSync(path.join(root, 'etc/systemd/system/community-gateway.service'), 'utf8')).toBe(
      fs.readFileSync('systemd/community-gateway.service', 'utf8'),
    );
    expect(fs.readFileSync(path.join(root, 'etc/community-gateway/config.yaml'), 'utf8')).toBe(
      fs.readFileSync('config/example-field.yaml', 'utf8'),
    );
    // The installed package.json has no "prepare" (npm ci --omit=dev has no tsc to run it).
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'opt/community-gateway/package.json'), 'utf8')) as {
      name: string;
      scripts: Record<string, string>;
    };
    expect(pkg.name).toBe('community-gateway');
    expect(pkg.scripts.prepare).toBeUndefined();
    expect(fs.statSync(path.join(root, 'etc/community-gateway')).mode & 0o777).toBe(0o750);
    expect(fs.statSync(path.join(root, 'var/lib/community-gateway')).mode & 0o777).toBe(0o700);
    // The site profile folder, made empty.
    const siteDrivers = path.join(root, 'etc/community-gateway/drivers');
    expect(fs.readdirSync(siteDrivers)).toEqual([]);
    // Group-writable: the daemon stores the page's uploads and a remote bundle's profiles there.
    expect(fs.statSync(siteDrivers).mode & 0o777).toBe(0o770);
    expect(first.out).toMatch(/created\s+\/etc\/community-gateway\/drivers\//);

    // The user and its groups, in the throwaway root's own files.
    const passwd = fs.readFileSync(path.join(root, 'etc/passwd'), 'utf8');
    const user = passwd.split('\n').find((l) => l.startsWith('community-gateway:'));
    expect(user, passwd).toBeDefined();
    const [, , uid, gid] = user!.split(':');
    const groupFile = path.join(root, 'etc/group');
    expect(members(groupFile, 'dialout')).toEqual(['community-gateway']);
    expect(members(groupFile, 'gpio')).toEqual(['community-gateway']);
    expect(members(groupFile, 'community-gateway')).toEqual([]);
    expect(fs.readFileSync(groupFile, 'utf8')).toMatch(/^dialout:x:20:/m); // the existing gid is kept
    if (process.getuid?.() === 0) {
      // As root, the service user owns its config and state (numeric ids of the target root).
      for (const d of ['etc/community-gateway', 'etc/community-gateway/config.yaml', 'var/lib/community-gateway']) {
        const st = fs.statSync(path.join(root, d));
        expect(`${st.uid}:${st.gid}`, d).toBe(`${uid}:${gid}`);
      }
      expect(fs.statSync(path.join(root, 'opt/community-gateway/dist/src/cli.js')).uid).toBe(0);
      // Root owns the site profile folder; the service's group reads and writes it.
      const st = fs.statSync(siteDrivers);
      expect(`${st.uid}:${st.gid}`).toBe(`0:${gid}`);
    }

    // The technician edits the config; the second run must keep it and change nothing else.
    const edited = `${fs.readFileSync(path.join(root, 'etc/community-gateway/config.yaml'), 'utf8')}# edited on site\n`;
    fs.writeFileSync(path.join(root, 'etc/community-gateway/config.yaml'), edited);
    // ... adds a site profile, and opens the folder up in their own way: both are kept.
    const siteProfile = fs.readFileSync('test/fixtures/site-drivers/acme-cr10.yaml', 'utf8');
    fs.writeFileSync(path.join(siteDrivers, 'acme-cr10.yaml'), siteProfile, { mode: 0o640 });
    fs.chmodSync(siteDrivers, 0o755);
    const passwdBefore = passwd;
    const groupBefore = fs.readFileSync(groupFile, 'utf8');

    const second = install(root);
    expect(second.status, second.out).toBe(0);
    for (const f of expected) expect(fs.existsSync(path.join(root, f)), `${f} after the second run`).toBe(true);
    expect(fs.readFileSync(path.join(root, 'etc/community-gateway/config.yaml'), 'utf8')).toBe(edited);
    expect(fs.readdirSync(siteDrivers)).toEqual(['acme-cr10.yaml']);
    expect(fs.readFileSync(path.join(siteDrivers, 'acme-cr10.yaml'), 'utf8')).toBe(siteProfile);
    expect(fs.statSync(path.join(siteDrivers, 'acme-cr10.yaml')).mode & 0o777).toBe(0o640);
    expect(fs.statSync(siteDrivers).mode & 0o777).toBe(0o755);
    expect(second.out).toMatch(/kept\s+\/etc\/community-gateway\/drivers\/ \(site profiles: never touched\)/);
    expect(fs.readFileSync(path.join(root, 'etc/passwd'), 'utf8')).toBe(passwdBefore);
    expect(fs.readFileSync(groupFile, 'utf8')).toBe(groupBefore);
    expect(second.out).toMatch(/kept\s+\/etc\/community-gateway\/config\.yaml/);
    expect(second.out).toMatch(/unchanged\s+\/etc\/systemd\/system\/community-gateway\.service/);
    expect(second.out).toMatch(/unchanged\s+\/etc\/udev\/rules\.d\/99-community-gateway-serial\.rules/);
    expect(second.out).toMatch(/unchanged\s+\/usr\/lib\/sysusers\.d\/community-gateway\.conf/);
    expect(second.out).not.toMatch(/sysusers\s+Creating/);

    if (process.getuid?.() === 0) {
      // A folder as an older install.sh made it (root:<group> 0750, read-only for the daemon)
      // gets the group's write bit; its files stay as they are.
      fs.chmodSync(siteDrivers, 0o750);
      const third = install(root);
      expect(third.status, third.out).toBe(0);
      expect(fs.statSync(siteDrivers).mode & 0o777).toBe(0o770);
      expect(third.out).toMatch(/kept\s+\/etc\/community-gateway\/drivers\/ \(site profiles: files untouched; the service may now store profiles there: 0770\)/);
      expect(fs.readFileSync(path.join(siteDrivers, 'acme-cr10.yaml'), 'utf8')).toBe(siteProfile);
    }
  });

  it('refuses a source without dist/ with a clear message', () => {
    const source = tmpDir('cgw-src-');
    fs.writeFileSync(path.join(source, 'package.json'), '{"name":"community-gateway"}\n');
    const root = tmpDir('cgw-root-');
    const r = spawnSync('bash', [SCRIPT, '--root', root, '--source', source, '--no-npm'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/npm ci && npm run build/);
    expect(fs.existsSync(path.join(root, 'opt'))).toBe(false);
  });
});
