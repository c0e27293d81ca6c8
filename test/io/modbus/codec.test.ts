import { describe, expect, it } from 'vitest';
import { decodeRegisters, encodeRegisters } from '../../../src/io/modbus/codec.js';
import type { ByteOrder, DataType } from '../../../src/config/profile-schema.js';

describe('register codec', () => {
  // Known wire images: float32 123.456 is 0x42F6E979 (IEEE 754), int32 -2 is 0xFFFFFFFE.
  it.each<[ByteOrder, number[]]>([
    ['ABCD', [0x42f6, 0xe979]],
    ['CDAB', [0xe979, 0x42f6]],
    ['BADC', [0xf642, 0x79e9]],
    ['DCBA', [0x79e9, 0xf642]],
  ])('decodes float32 123.456 in %s', (order, words) => {
    expect(Number((decodeRegisters(words, 0, 'float32', order) as number).toPrecision(7))).toBe(123.456);
    expect(encodeRegisters(123.456, 'float32', order)).toEqual(words);
  });

  it('decodes int16 byte-swapped and unsigned', () => {
    expect(decodeRegisters([0xfffe], 0, 'int16', 'ABCD')).toBe(-2);
    expect(decodeRegisters([0xfeff], 0, 'int16', 'BADC')).toBe(-2);
    expect(decodeRegisters([0xfffe], 0, 'uint16', 'ABCD')).toBe(65534);
    // Word order means nothing for one register: CDAB equals ABCD.
    expect(decodeRegisters([0x1234], 0, 'uint16', 'CDAB')).toBe(0x1234);
  });

  it('decodes 64-bit values with word and byte swaps', () => {
    // 1.0 as float64 is 0x3FF0000000000000.
    expect(decodeRegisters([0x3ff0, 0, 0, 0], 0, 'float64', 'ABCD')).toBe(1);
    expect(decodeRegisters([0, 0, 0, 0x3ff0], 0, 'float64', 'CDAB')).toBe(1);
    expect(decodeRegisters([0xf03f, 0, 0, 0], 0, 'float64', 'BADC')).toBe(1);
    expect(decodeRegisters([0, 0, 0, 0xf03f], 0, 'float64', 'DCBA')).toBe(1);
  });

  it('reads a value at an offset inside a larger block', () => {
    expect(decodeRegisters([9, 9, 0x0001, 0x0002], 2, 'uint32', 'ABCD')).toBe(0x00010002);
    expect(decodeRegisters([9, 9, 0x0001, 0x0002], 2, 'uint32', 'CDAB')).toBe(0x00020001);
  });

  it('reads bits of a register and bools', () => {
    expect(decodeRegisters([0b1000], 0, 'bit', 'ABCD', 3)).toBe(true);
    expect(decodeRegisters([0b1000], 0, 'bit', 'ABCD', 2)).toBe(false);
    expect(decodeRegisters([0x8000], 0, 'bit', 'ABCD', 15)).toBe(true);
    expect(decodeRegisters([1], 0, 'bool', 'ABCD')).toBe(true);
    expect(decodeRegisters([0], 0, 'bool', 'ABCD')).toBe(false);
  });

  const cases: [DataType, number][] = [
    ['int16', -32768], ['int16', 32767], ['uint16', 65535], ['int32', -2147483648], ['int32', 2147483647],
    ['uint32', 4294967295], ['float32', -1.5], ['float64', 1e-300], ['float64', -123456.789],
  ];
  it.each(cases)('round-trips %s %d in every order', (type, value) => {
    for (const order of ['ABCD', 'CDAB', 'BADC', 'DCBA'] as ByteOrder[]) {
      expect(decodeRegisters(encodeRegisters(value, type, order), 0, type, order)).toBe(value);
    }
  });
});
