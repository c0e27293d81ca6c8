// Which config changes a running daemon applies in place, by a restart, or not at all.
import { describe, expect, it } from 'vitest';
import { mergeForm } from '../../src/web/config-edit.js';
import { applyMode, fixedFieldChanges } from '../../src/config/apply-mode.js';
import { parseSiteConfig } from '../../src/config/site-config.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';

const profiles = loadProfiles(DRIVERS_DIR);
const TEXT = [
  '# Site of the test community',
  'site: { communityCode: "330106001001", gatewayId: gw-t }',
  'storage: { path: ./data/t.db }',
  'uplink: { url: mqtt://127.0.0.1:1884 }   # the platform',
  'buses:',
  '  - { id: lan, type: modbus-tcp, host: 127.0.0.1, port: 5020 }',
  'devices:',
  '  # the fridge in the canteen',
  '  - { id: fridge-1, facility: canteen, profile: r4dcb08, bus: lan, unitId: 1, pollMs: 5000 }',
  '',
].join('\n');
const cfg = (t: string) => {
  const r = parseSiteConfig(t, profiles);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
};

describe('apply mode', () => {
  it('applies io-side changes in place and restarts for the rest', () => {
    const a = cfg(TEXT);
    expect(applyMode(a, cfg(TEXT))).toBe('none');
    expect(applyMode(a, cfg(mergeForm(TEXT, { 'devices[0].pollMs': 1000 })))).toBe('reload');
    expect(applyMode(a, cfg(mergeForm(TEXT, { 'site.name': 'x' })))).toBe('reload');
    expect(applyMode(a, cfg(mergeForm(TEXT, { 'log.level': 'debug' })))).toBe('reload');
    expect(applyMode(a, cfg(mergeForm(TEXT, { 'uplink.windowSeconds': 30 })))).toBe('restart');
    expect(applyMode(a, cfg(mergeForm(TEXT, { 'privacy.k': 7 })))).toBe('restart');
    expect(applyMode(a, cfg(TEXT.replace('gatewayId: gw-t', 'gatewayId: gw-u')))).toBe('restart');
  });

  it('refuses to move the database or the site secret while running (issue 12, finding 4)', () => {
    const a = cfg(TEXT);
    expect(fixedFieldChanges(a, cfg(mergeForm(TEXT, { 'devices[0].pollMs': 1000 })))).toEqual([]);
    expect(fixedFieldChanges(a, cfg(TEXT.replace('./data/t.db', './elsewhere/t.db'))).map((c) => c.path)).toEqual(['storage.path']);
    expect(fixedFieldChanges(a, cfg(`${TEXT}privacy: { secretFile: /tmp/s }\n`)).map((c) => c.path)).toEqual(['privacy.secretFile']);
  });
});
