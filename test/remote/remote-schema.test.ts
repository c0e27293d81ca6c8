// The site config's `remote` section: off unless present, 1..8 Ed25519 keys in the form
// keygen prints, each error naming the field.
import { describe, expect, it } from 'vitest';
import { TEXT, cfg } from '../helpers/config-text.js';
import { parseSiteConfig } from '../../src/config/site-config.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { generateKeyPair } from '../../src/remote/bundle.js';
import { identify } from '../../src/messages/identify.js';

const profiles = loadProfiles(DRIVERS_DIR);
const withKeys = (keys: string[]) => `${TEXT}remote:\n  trustedKeys: [${keys.map((k) => JSON.stringify(k)).join(', ')}]\n`;
const errors = (text: string) => {
  const r = parseSiteConfig(text, profiles);
  if (r.ok) throw new Error('expected errors');
  return r.errors;
};

describe('site config: remote', () => {
  it('absent is off; keys as keygen prints them are taken', () => {
    expect(cfg(TEXT).remote).toBeUndefined();
    const keys = [generateKeyPair().publicText, generateKeyPair().publicText];
    expect(cfg(withKeys(keys)).remote).toEqual({ trustedKeys: keys });
  });

  it('refuses no key, more than 8, a key twice and a key that is not Ed25519, naming the field (with a catalogue code)', () => {
    const k = generateKeyPair().publicText;
    const cases: [string[], RegExp][] = [
      [[], /^remote\.trustedKeys: needs 1 to 8 keys/],
      [Array.from({ length: 9 }, () => generateKeyPair().publicText), /^remote\.trustedKeys: needs 1 to 8 keys/],
      [[k, k], /^remote\.trustedKeys: lists a key twice/],
      [['ssh-ed25519 AAAA'], /^remote\.trustedKeys\[0\]: must be an Ed25519 public key/],
    ];
    for (const [keys, re] of cases) {
      const e = errors(withKeys(keys));
      expect(e.some((x) => re.test(x)), e.join('\n')).toBe(true);
      const m = e.find((x) => re.test(x))!;
      expect(identify(m.slice(m.indexOf(': ') + 2).replace(/ \(line \d+\)$/, '')).code).not.toBe('untranslated');
    }
    expect(errors(`${TEXT}remote: {}\n`).join('\n')).toMatch(/remote\.trustedKeys/);
  });
});
