// Config editing helpers: the form merged into YAML with comments kept, error lines split for
// the page.
import { describe, expect, it } from 'vitest';
import { cfg, TEXT } from '../helpers/config-text.js';
import { mergeForm, splitError } from '../../src/web/config-edit.js';

describe('config editing', () => {
  it('merges form fields, keeps comments, turns typed numbers into numbers, removes cleared fields', () => {
    const out = mergeForm(TEXT, { 'devices[0].pollMs': '2000', 'site.name': '西湖', 'uplink.windowSeconds': 30 });
    expect(out).toContain('# the fridge in the canteen');
    expect(out).toContain('# the platform');
    const c = cfg(out);
    expect(c.devices[0]!.pollMs).toBe(2000);
    expect(c.site.name).toBe('西湖');
    expect(c.uplink.windowSeconds).toBe(30);
    expect(cfg(mergeForm(out, { 'site.name': null })).site.name).toBeUndefined();
    // A form field for a device that does not exist creates nothing.
    expect(cfg(mergeForm(TEXT, { 'devices[5].pollMs': 1000 })).devices).toHaveLength(1);
  });

  it('splits an error line into path, message and line', () => {
    expect(splitError('devices[2].unitId: must be 1..247 (line 14)')).toEqual({ path: 'devices[2].unitId', message: 'must be 1..247', line: 14 });
    expect(splitError('uplink.url: must be mqtt://host[:port] or mqtts://host[:port] (port 1..65535)')).toEqual({
      path: 'uplink.url',
      message: 'must be mqtt://host[:port] or mqtts://host[:port] (port 1..65535)',
    });
  });
});
