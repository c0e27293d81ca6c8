// Which config changes a running daemon applies in place, by a restart, or not at all.
import { describe, expect, it } from 'vitest';
import { cfg, TEXT } from '../helpers/config-text.js';
import { mergeForm } from '../../src/web/config-edit.js';
import { applyMode, fixedFieldChanges } from '../../src/config/apply-mode.js';

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
