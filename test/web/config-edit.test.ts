// Config editing helpers: the form merged into YAML with comments kept, error lines split for
// the page.
import { describe, expect, it } from 'vitest';
import { cfg, TEXT } from '../helpers/config-text.js';
import { EditError, entriesOf, mergeEdit, mergeForm, splitError } from '../../src/web/config-edit.js';

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
    expect(splitError('devices[2].unitId: must be 1..247 (line 14)')).toEqual({ path: 'devices[2].unitId', message: 'must be 1..247', msg: { code: 'config.range', params: { lo: '1', hi: '247' } }, line: 14 });
    expect(splitError('uplink.url: must be mqtt://host[:port] or mqtts://host[:port] (port 1..65535)')).toEqual({
      path: 'uplink.url',
      message: 'must be mqtt://host[:port] or mqtts://host[:port] (port 1..65535)',
      msg: { code: 'config.broker-url', params: {} },
    });
  });
});

describe('entry edits (devices, buses, alarms)', () => {
  it('adds a device with typed numbers, keeps comments and flow style of the others', () => {
    const out = mergeEdit(TEXT, { section: 'devices', value: { id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: '3', pollMs: '', name: '' } });
    expect(out).toContain('# the fridge in the canteen');
    expect(out).toContain('  - { id: fridge-1, facility: canteen, profile: r4dcb08, bus: lan, unitId: 1, pollMs: 5000 }\n  - { id: th-1, facility: canteen, profile: xy-md02, bus: lan, unitId: 3 }\n');
    const c = cfg(out);
    expect(c.devices[1]).toMatchObject({ id: 'th-1', unitId: 3, pollMs: 1000 });
    expect(c.devices[1]!.name).toBeUndefined();
  });

  it('edits only the fields sent, removes a cleared one, and removes an entry by index', () => {
    const withName = mergeEdit(TEXT, { section: 'devices', index: 0, value: { name: '冷柜' } });
    expect(cfg(withName).devices[0]).toMatchObject({ id: 'fridge-1', name: '冷柜', pollMs: 5000 });
    expect(cfg(mergeEdit(withName, { section: 'devices', index: 0, value: { name: null } })).devices[0]!.name).toBeUndefined();
    expect(cfg(mergeEdit(TEXT, { section: 'devices', index: 0, value: null })).devices).toEqual([]);
    expect(() => mergeEdit(TEXT, { section: 'devices', index: 1, value: null })).toThrow(EditError);
  });

  it('switches a bus from TCP to RTU dropping host and port; makes an alarm list where there was none', () => {
    const rtu = cfg(mergeEdit(TEXT, { section: 'buses', index: 0, value: { type: 'modbus-rtu', path: '/dev/null', baudRate: '19200', parity: 'even' } }));
    expect(rtu.buses[0]).toMatchObject({ id: 'lan', type: 'modbus-rtu', path: '/dev/null', baudRate: 19200, parity: 'even' });
    expect(rtu.buses[0]).not.toHaveProperty('host');
    const a = cfg(mergeEdit(TEXT, { section: 'alarms', value: { id: 'warm', device: 'fridge-1', point: 'fridge_1_temperature', condition: 'above', threshold: '8' } }));
    expect(a.alarms).toEqual([expect.objectContaining({ id: 'warm', above: 8 })]);
    const flip = cfg(mergeEdit(mergeEdit(TEXT, { section: 'alarms', value: { id: 'warm', device: 'fridge-1', point: 'fridge_1_temperature', condition: 'above', threshold: 8 } }), { section: 'alarms', index: 0, value: { condition: 'below', threshold: '-1' } }));
    expect(flip.alarms[0]).toMatchObject({ below: -1 });
    expect(flip.alarms[0]!.above).toBeUndefined();
    // Only what is sent changes: a severity alone keeps the condition, a threshold alone keeps
    // the kind of condition.
    const flipped = mergeEdit(mergeEdit(TEXT, { section: 'alarms', value: { id: 'warm', device: 'fridge-1', point: 'fridge_1_temperature', condition: 'above', threshold: 8 } }), { section: 'alarms', index: 0, value: { condition: 'below', threshold: '-1' } });
    expect(cfg(mergeEdit(flipped, { section: 'alarms', index: 0, value: { severity: 'critical' } })).alarms[0]).toMatchObject({ below: -1, severity: 'critical' });
    expect(cfg(mergeEdit(flipped, { section: 'alarms', index: 0, value: { threshold: '-3' } })).alarms[0]).toMatchObject({ below: -3 });
  });

  it('lists the entries the forms show', () => {
    expect(entriesOf(cfg(TEXT))).toEqual({
      devices: [{ id: 'fridge-1', name: null, facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 5000 }],
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 5020, timeoutMs: 1000 }],
      alarms: [],
    });
  });
});
