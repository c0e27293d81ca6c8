// The worked example of docs/UPLINK.md ("Remote configuration: bundles for integrators") is a
// real test vector: the bundle printed there verifies with the key printed there, the one-line
// text is its canonical payload, and signing that payload with the test key gives the printed
// signature (Ed25519 is deterministic). Read from the doc itself, so the doc cannot drift.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Bundle, canonical, keyIdOf, publicKeyText, signBundle, verifySignature } from '../../src/remote/bundle.js';
import { ConfigResultMessage, REMOTE_REFUSALS, UplinkMessage } from '../../src/uplink/contract.js';

const doc = fs.readFileSync('docs/UPLINK.md', 'utf8');

/** The text of the section under `heading` up to the next heading of the same or a higher level. */
function section(heading: string): string {
  const start = doc.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`no "${heading}" in docs/UPLINK.md`);
  const level = heading.indexOf(' ');
  const rest = doc.slice(start + heading.length + 2);
  const next = rest.search(new RegExp(`^#{1,${level}} `, 'm'));
  return next < 0 ? rest : rest.slice(0, next);
}

/** The fenced code blocks of a text, in order. */
const blocks = (text: string) => [...text.matchAll(/^```[a-z]*\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);

describe('docs/UPLINK.md remote configuration for integrators', () => {
  const example = section('### Worked example');
  const [pem, bundleJson, signed] = blocks(example) as [string, string, string];

  it('the example bundle verifies with the example public key, and its keyId is that key\'s', () => {
    const publicText = /Public key `(ed25519:[^`]+)`, keyId `([0-9a-f]{16})`/.exec(example);
    expect(publicText).not.toBeNull();
    const [, key, keyId] = publicText!;
    expect(keyIdOf(key!)).toBe(keyId);
    expect(publicKeyText(crypto.createPublicKey(pem))).toBe(key);
    const b = Bundle.parse(JSON.parse(bundleJson));
    expect(b.keyId).toBe(keyId);
    expect(verifySignature(b, [key!])).toEqual({ ok: true, key });
    // One character changed in the config: refused.
    expect(verifySignature({ ...b, config: b.config.replace('gw-demo-01', 'gw-demo-02') }, [key!])).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('the one-line text is the canonical payload (and its SHA-256 as printed); the key signs it to the printed signature', () => {
    const b = Bundle.parse(JSON.parse(bundleJson));
    const { keyId: _k, signature, ...payload } = b;
    expect(signed.trimEnd()).toBe(canonical(payload));
    const sha = /SHA-256 `([0-9a-f]{64})`/.exec(example)![1];
    expect(crypto.createHash('sha256').update(canonical(payload), 'utf8').digest('hex')).toBe(sha);
    expect(crypto.sign(null, Buffer.from(signed.trimEnd(), 'utf8'), crypto.createPrivateKey(pem)).toString('base64')).toBe(signature);
    expect(signBundle(payload, pem)).toEqual(b);
  });

  it('the result example validates, and every refusal reason of the contract is documented', () => {
    const results = section('### The result message');
    const json = blocks(results).find((t) => t.includes('"config-result"'))!;
    expect(ConfigResultMessage.safeParse(JSON.parse(json)).success).toBe(true);
    const documented = [...results.matchAll(/^\| `([a-z-]+)` \| the bundle was refused|^\| `([a-z-]+)` \|/gm)].map((m) => m[1] ?? m[2]);
    for (const r of REMOTE_REFUSALS) expect(documented, r).toContain(r);
  });
});

describe('docs/UPLINK.md message examples', () => {
  it('every agg, alarm, inventory and status example of "## Messages" validates against the contract', () => {
    const messages = section('## Messages');
    const found = blocks(messages)
      .map((t) => {
        try {
          return JSON.parse(t) as { kind?: string };
        } catch {
          return null; // a fragment (a status's health part) shown on its own
        }
      })
      .filter((m): m is { kind: string } => m !== null && ['agg', 'alarm', 'inventory', 'status'].includes(m.kind ?? ''));
    expect(found.map((m) => m.kind).sort()).toEqual(['agg', 'alarm', 'inventory', 'status']);
    for (const m of found) {
      const r = UplinkMessage.safeParse(m);
      expect(r.success, `${m.kind}: ${r.success ? '' : JSON.stringify(r.error.issues[0])}`).toBe(true);
    }
    // The facility example shows the fields issue 20 added.
    const agg = found.find((m) => m.kind === 'agg') as unknown as { items: Record<string, unknown>[] };
    expect(agg.items.find((i) => i.type === 'facility')).toMatchObject({ facilityId: expect.any(String), houseCode: expect.any(String) });
  });
});
