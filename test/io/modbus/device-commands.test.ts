// Try-read decoding and write encoding, checked against the codec and by hand.
import { describe, expect, it } from 'vitest';
import { decodeAll, encodeWrite } from '../../../src/io/modbus/device-commands.js';
import { PointSchema } from '../../../src/config/profile-schema.js';

const point = (p: Record<string, unknown>) => PointSchema.parse({ id: 'x', name: { zh: 'x', en: 'x' }, privacy: 'public', writable: true, ...p });

describe('try-read decoding', () => {
  it('decodes every type and order per offset, wider types only where the words exist', () => {
    // 0x41200000 is 10.0 as float32; words [0x4120, 0x0000]
    const rows = decodeAll([0x4120, 0x0000, 0xffff]);
    expect(rows).toHaveLength(3);
    expect(rows[0]!.float32!.ABCD).toBe(10);
    expect(rows[0]!.uint16).toEqual({ ABCD: 0x4120, BADC: 0x2041 });
    expect(rows[0]!.uint32!.CDAB).toBe(0x00004120);
    expect(rows[1]!.int32!.ABCD).toBe(0x0000ffff);
    expect(rows[2]!.int16!.ABCD).toBe(-1);
    expect(rows[2]!.int32).toBeUndefined();
    expect(rows[0]!.float64).toBeUndefined();
  });
});

describe('write encoding', () => {
  it('encodes coils and scaled registers; refuses what cannot be written', () => {
    expect(encodeWrite(point({ register: 'coil', address: 16, type: 'bool' }), 3, true)).toEqual({ unitId: 3, register: 'coil', start: 16, values: [1] });
    expect(encodeWrite(point({ register: 'holding', address: 4, type: 'int16', scale: 0.1, range: { min: -40, max: 80 } }), 1, -12.5)).toEqual({ unitId: 1, register: 'holding', start: 4, values: [0xff83] });
    expect(encodeWrite(point({ register: 'holding', address: 0, type: 'float32', order: 'CDAB' }), 1, 10)).toEqual({ unitId: 1, register: 'holding', start: 0, values: [0x0000, 0x4120] });
    expect(encodeWrite(point({ register: 'holding', address: 4, type: 'int16', range: { min: 0, max: 50 } }), 1, 51)).toBe('point x: 51 is outside 0..50');
    expect(encodeWrite(point({ register: 'holding', address: 4, type: 'int16', scale: 0.1 }), 1, 1.25)).toBe('point x: 1.25 is not a multiple of its step 0.1');
    expect(encodeWrite(point({ register: 'holding', address: 4, type: 'uint16' }), 1, 70000)).toBe('point x: 70000 does not fit a uint16 register');
    expect(encodeWrite(point({ register: 'input', address: 4, type: 'uint16' }), 1, 1)).toMatch(/only holding registers and coils/);
    expect(encodeWrite(point({ register: 'holding', address: 4, type: 'bit', bit: 3 }), 1, true)).toMatch(/read-modify-write/);
    expect(encodeWrite(point({ register: 'coil', address: 1, type: 'bool', writable: false }), 1, true)).toMatch(/not writable/);
    expect(encodeWrite(point({ register: 'coil', address: 1, type: 'bool' }), 1, 1)).toMatch(/true or false/);
  });
});
