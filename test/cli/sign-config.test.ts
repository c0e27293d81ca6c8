// `community-gateway sign-config` as the platform runs it (the built CLI): the bundle it prints
// verifies, names the right base, carries the site profiles, and a config that would not load
// on the gateway is not signed.
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cli } from '../helpers/cli.js';
import { tmpDir } from '../helpers/peers.js';
import { TEXT } from '../helpers/config-text.js';
import { Bundle, configHash, generateKeyPair, keyIdOf, verifySignature } from '../../src/remote/bundle.js';

beforeAll(assertBuilt);

const FIXTURE = path.resolve('test/fixtures/site-drivers/acme-cr10.yaml');

/** A signing machine's folder: the key (0600), the new config, the running one. */
function setup(configText = TEXT) {
  const dir = tmpDir('cgw-sign-');
  const key = generateKeyPair();
  const keyFile = path.join(dir, 'platform.pem');
  fs.writeFileSync(keyFile, key.privatePem, { mode: 0o600 });
  const config = path.join(dir, 'site.yaml');
  fs.writeFileSync(config, configText);
  const running = path.join(dir, 'running.yaml');
  const runningText = `${TEXT}# changed on site: the running file differs from the new one\n`;
  fs.writeFileSync(running, runningText);
  return { dir, key, keyFile, config, running, runningText };
}

const sign = (args: string[]) => cli(['sign-config', ...args]);

describe('sign-config', () => {
  it('prints a bundle that verifies against the key, for the gateway and version given, based on the running file', () => {
    const s = setup();
    const before = Date.now();
    const r = sign(['--key', s.keyFile, '--gateway', 'gw-t', '--version', '5', '--base-file', s.running, '--note', 'fridge alarm at 6 °C', s.config]);
    expect(r.status, r.stderr).toBe(0);
    const b = Bundle.parse(JSON.parse(r.stdout));
    expect(verifySignature(b, [generateKeyPair().publicText, s.key.publicText])).toEqual({ ok: true, key: s.key.publicText });
    expect(verifySignature(b, [generateKeyPair().publicText])).toEqual({ ok: false, reason: 'unknown-key' });
    expect(b).toMatchObject({ gatewayId: 'gw-t', version: 5, override: false, note: 'fridge alarm at 6 °C', config: TEXT, profiles: {}, keyId: keyIdOf(s.key.publicText) });
    // The base is the hash of the running file, as the gateway computes it of the config it runs.
    expect(b.base).toBe(configHash(s.runningText));
    expect(b.base).not.toBe(configHash(TEXT));
    // Default expiry: 24 h after issue.
    expect(Date.parse(b.issuedAt)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(Date.parse(b.expiresAt) - Date.parse(b.issuedAt)).toBe(24 * 3600 * 1000);
    // One summary line on stderr (after the warning that the config has no remote section).
    expect(r.stderr).toMatch(/warning: .*site\.yaml has no remote section/);
    expect(r.stderr).toMatch(new RegExp(`^signed: gateway gw-t, version 5, keyId ${b.keyId}, expires ${b.expiresAt}, base sha256:[0-9a-f]{12}… \\(${s.running.replace(/[.]/g, '\\.')}\\), 0 profile\\(s\\), \\d+ bytes$`, 'm'));
  });

  it('refuses to sign a config that would not load, naming every problem with its line; nothing written', () => {
    const bad = TEXT.replace('unitId: 1', 'unitId: 999').replace('profile: r4dcb08', 'profile: no-such-model');
    const s = setup(bad);
    const out = path.join(s.dir, 'bundle.json');
    const r = sign(['--key', s.keyFile, '--gateway', 'gw-t', '--version', '5', '--base-file', s.running, '--out', out, s.config]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/site\.yaml: invalid configuration, not signed:/);
    expect(r.stderr).toMatch(/devices\[0\]\.unitId: .*\(line 9\)/);
    expect(r.stderr).toMatch(/devices\[0\]\.profile: .*no-such-model.*\(line 9\)/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('with --base-file, refuses a change the running gateway cannot make (storage.path), as the gateway would', () => {
    const s = setup(TEXT.replace('storage: { path: ./data/t.db }', 'storage: { path: ./data/moved.db }'));
    const r = sign(['--key', s.keyFile, '--gateway', 'gw-t', '--version', '5', '--base-file', s.running, s.config]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/changes what a running gateway cannot change, not signed:\n\s+storage\.path: cannot be changed while the gateway runs/);
    expect(r.stdout).toBe('');
    // Without the running file it cannot be compared here: signed (the gateway refuses it as invalid).
    expect(sign(['--key', s.keyFile, '--gateway', 'gw-t', '--version', '5', '--override', s.config]).status).toBe(0);
  });

  it('refuses a config whose site.gatewayId is not the gateway the bundle is for', () => {
    const s = setup();
    const r = sign(['--key', s.keyFile, '--gateway', 'gw-other', '--version', '1', '--override', s.config]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/site\.gatewayId is "gw-t", the bundle is for --gateway gw-other/);
    expect(r.stdout).toBe('');
  });

  it('site profiles go into the bundle by file name, and the config is checked with them', () => {
    const withSite = TEXT.replace('profile: r4dcb08', 'profile: acme-cr10');
    const s = setup(withSite);
    const args = ['--key', s.keyFile, '--gateway', 'gw-t', '--version', '2', '--override', s.config];
    // Without the profile the config does not load (unknown profile): refused.
    const without = sign(args);
    expect(without.status).toBe(1);
    expect(without.stderr).toMatch(/acme-cr10/);
    const r = sign([...args, FIXTURE]);
    expect(r.status, r.stderr).toBe(0);
    const b = Bundle.parse(JSON.parse(r.stdout));
    expect(b.profiles).toEqual({ 'acme-cr10.yaml': fs.readFileSync(FIXTURE, 'utf8') });
    expect(b.base).toBeNull();
    expect(b.override).toBe(true);
    expect(verifySignature(b, [s.key.publicText]).ok).toBe(true);
    expect(r.stderr).toMatch(/base none, override, 1 profile\(s\)/);
    // Gateways install the profiles a bundle carries: no warning about them any more.
    expect(r.stderr).not.toMatch(/site profiles/);
    // A bad profile file is refused with its own problems.
    const broken = path.join(s.dir, 'acme-cr10.yaml');
    fs.writeFileSync(broken, fs.readFileSync(FIXTURE, 'utf8').replace(/^id: .*$/m, 'id: acme-other'));
    const bad = sign([...args, broken]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/id: "acme-other" must equal the file name "acme-cr10"/);
  });

  it('a site profile found in drivers/ beside CONFIG but not given is checked with, and warned about', () => {
    const s = setup(TEXT.replace('profile: r4dcb08', 'profile: acme-cr10'));
    fs.mkdirSync(path.join(s.dir, 'drivers'));
    fs.copyFileSync(FIXTURE, path.join(s.dir, 'drivers', 'acme-cr10.yaml'));
    const r = sign(['--key', s.keyFile, '--gateway', 'gw-t', '--version', '2', '--override', s.config]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: site profile acme-cr10 \(.*drivers\/acme-cr10\.yaml\) is used but not in the bundle/);
    expect(Bundle.parse(JSON.parse(r.stdout)).profiles).toEqual({});
    // Given on the command line: in the bundle, no warning.
    const given = sign(['--key', s.keyFile, '--gateway', 'gw-t', '--version', '2', '--override', s.config, path.join(s.dir, 'drivers', 'acme-cr10.yaml')]);
    expect(given.status, given.stderr).toBe(0);
    expect(given.stderr).not.toMatch(/not in the bundle/);
    expect(Object.keys(Bundle.parse(JSON.parse(given.stdout)).profiles)).toEqual(['acme-cr10.yaml']);
  });

  it('--out writes the bundle 0600; --expires takes an ISO time; --base a hash', () => {
    const s = setup();
    const out = path.join(s.dir, 'bundle.json');
    const base = configHash('anything\n');
    const expires = new Date(Date.now() + 3 * 86400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const r = sign(['--key', s.keyFile, '--gateway', 'gw-t', '--version', '9', '--base', base, '--expires', expires, '--out', out, s.config]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    const b = Bundle.parse(JSON.parse(fs.readFileSync(out, 'utf8')));
    expect(b).toMatchObject({ version: 9, base, expiresAt: expires });
    expect(verifySignature(b, [s.key.publicText]).ok).toBe(true);
    expect(r.stderr).toMatch(new RegExp(`-> ${out.replace(/[.]/g, '\\.')}$`, 'm'));
  });

  it('TLS files of the box missing on the signing machine are warnings, not refusals', () => {
    const text = TEXT.replace('uplink: { url: mqtt://127.0.0.1:1884 }', 'uplink: { url: mqtts://platform.example:8883, caFile: /etc/community-gateway/no-such-ca.pem }');
    const s = setup(text);
    const r = sign(['--key', s.keyFile, '--gateway', 'gw-t', '--version', '3', '--override', s.config]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: .*uplink\.caFile: file not found: \/etc\/community-gateway\/no-such-ca\.pem.*on this machine/);
    expect(Bundle.parse(JSON.parse(r.stdout)).config).toBe(text);
  });

  it('bad arguments: exit 2, naming the option', () => {
    const s = setup();
    const cases: [string[], RegExp][] = [
      [['--key', s.keyFile, '--gateway', 'gw-t', '--version', '1', s.config], /--base-file: the config the bundle replaces is needed/],
      [['--key', s.keyFile, '--gateway', 'gw-t', '--version', '0', '--override', s.config], /--version: must be a whole number >= 1/],
      [['--key', s.keyFile, '--gateway', 'gw-t', '--version', '1', '--override'], /FILE: CONFIG\.yaml is required/],
      [['--key', s.keyFile, '--gateway', 'gw-t', '--version', '1', '--override', '--expires', 'tomorrow', s.config], /--expires: must be a duration/],
      [['--key', s.keyFile, '--gateway', 'gw-t', '--version', '1', '--base', 'sha1:x', s.config], /--base: must be "sha256:"/],
      [['--gateway', 'gw-t', '--version', '1', '--override', s.config], /--key: is required/],
    ];
    for (const [args, msg] of cases) {
      const r = sign(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(msg);
      expect(r.stdout).toBe('');
    }
    // A key file that is no key: refused (exit 1) naming the file.
    fs.writeFileSync(path.join(s.dir, 'junk.pem'), 'not a key\n');
    const junk = sign(['--key', path.join(s.dir, 'junk.pem'), '--gateway', 'gw-t', '--version', '1', '--override', s.config]);
    expect(junk.status).toBe(1);
    expect(junk.stderr).toMatch(/--key .*junk\.pem: not a private key/);
  });
});
