// `community-gateway keygen` as the platform operator runs it (the built CLI).
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { assertBuilt, cli } from '../helpers/cli.js';
import { tmpDir } from '../helpers/peers.js';
import { keyIdOf, publicKeyOf, publicKeyText } from '../../src/remote/bundle.js';

beforeAll(assertBuilt);

/** The line keygen prints for the site config: `remote: { trustedKeys: ["ed25519:..."] }  # keyId <id>`. */
function printed(stdout: string): { key: string; keyId: string } {
  const m = /^remote: \{ trustedKeys: \["(ed25519:[^"]+)"\] \}  # keyId ([0-9a-f]{16})\n$/.exec(stdout);
  if (!m) throw new Error(`unexpected keygen output: ${stdout}`);
  return { key: m[1]!, keyId: m[2]! };
}

describe('keygen --out FILE', () => {
  it('writes a 0600 PKCS#8 Ed25519 key and prints its public key line and keyId for the site config', () => {
    const out = path.join(tmpDir('cgw-keygen-'), 'platform.pem');
    const r = cli(['keygen', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    const pem = fs.readFileSync(out, 'utf8');
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const priv = crypto.createPrivateKey(pem);
    expect(priv.asymmetricKeyType).toBe('ed25519');
    const { key, keyId } = printed(r.stdout);
    // The printed key is the public half of the written one, and parses as the gateway parses it.
    expect(publicKeyOf(key).asymmetricKeyType).toBe('ed25519');
    expect(key).toBe(publicKeyText(crypto.createPublicKey(priv)));
    expect(keyId).toBe(keyIdOf(key));
    expect(fs.readdirSync(path.dirname(out))).toEqual(['platform.pem']);
  });

  it('refuses to overwrite an existing file (exit 1, file unchanged) unless --force', () => {
    const out = path.join(tmpDir('cgw-keygen-'), 'platform.pem');
    expect(cli(['keygen', '--out', out]).status).toBe(0);
    const first = fs.readFileSync(out, 'utf8');
    const again = cli(['keygen', '--out', out]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/platform\.pem exists: not replaced .*--force/);
    expect(again.stdout).toBe('');
    expect(fs.readFileSync(out, 'utf8')).toBe(first);
    fs.chmodSync(out, 0o644);
    const forced = cli(['keygen', '--out', out, '--force']);
    expect(forced.status, forced.stderr).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).not.toBe(first);
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    expect(printed(forced.stdout).key).toBe(publicKeyText(crypto.createPublicKey(fs.readFileSync(out, 'utf8'))));
  });

  it('without --out: usage, exit 2, nothing written', () => {
    const r = cli(['keygen']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--out: is required/);
    expect(r.stderr).toMatch(/Usage: community-gateway keygen --out FILE/);
  });
});
