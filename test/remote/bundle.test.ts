import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Bundle, BUNDLE_FORMAT, canonical, configHash, generateKeyPair, keyIdOf, PUBLIC_KEY, publicKeyOf, signBundle, verifySignature, type BundlePayload } from '../../src/remote/bundle.js';

const payload = (over: Partial<BundlePayload> = {}): BundlePayload => ({
  format: BUNDLE_FORMAT,
  kind: 'config',
  gatewayId: 'gw-1',
  version: 3,
  base: configHash('site: {}\n'),
  override: false,
  issuedAt: '2026-12-02T06:00:00Z',
  expiresAt: '2026-12-03T06:00:00Z',
  note: '冷藏柜报警阈值改为 6°C',
  config: 'site: { communityCode: "330106001001", gatewayId: gw-1 }\n',
  profiles: {},
  ...over,
});

describe('signed bundle', () => {
  it('canonical JSON sorts keys at every level and drops nothing but undefined', () => {
    expect(canonical({ b: 1, a: { d: [2, { z: 1, y: 'é' }], c: null }, u: undefined })).toBe('{"a":{"c":null,"d":[2,{"y":"é","z":1}]},"b":1}');
  });

  it('a bundle signed with a key verifies against that key and no other, and survives JSON', () => {
    const k = generateKeyPair();
    expect(k.publicText).toMatch(PUBLIC_KEY);
    expect(publicKeyOf(k.publicText).asymmetricKeyType).toBe('ed25519');
    const b = signBundle(payload(), k.privatePem);
    expect(b.keyId).toBe(keyIdOf(k.publicText));
    // What the gateway gets: the JSON text, parsed and validated again.
    const received = Bundle.parse(JSON.parse(JSON.stringify(b)));
    expect(verifySignature(received, [generateKeyPair().publicText, k.publicText])).toEqual({ ok: true, key: k.publicText });
    expect(verifySignature(received, [generateKeyPair().publicText])).toEqual({ ok: false, reason: 'unknown-key' });
  });

  it('any change to a signed field breaks the signature', () => {
    const k = generateKeyPair();
    const b = signBundle(payload(), k.privatePem);
    for (const changed of [{ version: 4 }, { gatewayId: 'gw-2' }, { config: `${b.config}# x\n` }, { expiresAt: '2027-12-03T06:00:00Z' }, { override: true }, { profiles: { 'a.yaml': 'x' } }, { note: '' }]) {
      expect(verifySignature({ ...b, ...changed }, [k.publicText]), JSON.stringify(changed)).toEqual({ ok: false, reason: 'bad-signature' });
    }
  });

  it('a key of the same keyId but other bytes cannot stand in (the bytes are checked, not the id)', () => {
    const k = generateKeyPair();
    const other = generateKeyPair();
    const b = signBundle(payload(), other.privatePem);
    expect(verifySignature({ ...b, keyId: keyIdOf(k.publicText) }, [k.publicText])).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a key that is not Ed25519, and malformed fields by name', () => {
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    expect(() => signBundle(payload(), rsa)).toThrow(/the key is rsa, not Ed25519/);
    const r = Bundle.safeParse({ ...signBundle(payload(), generateKeyPair().privatePem), base: 'md5:x', expiresAt: 'tomorrow' });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['base', 'expiresAt']);
  });
});
