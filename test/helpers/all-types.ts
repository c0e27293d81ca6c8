// The test-all-types fixture served by pymodbus: every data type in every byte and word
// order, packed by Python's struct module; shared by the Modbus TCP and RTU tests.
import { expect } from 'vitest';
import type { ModbusMap } from './peers.js';
import type { Reading } from '../../src/types.js';

const typed = [
  { kind: 'hr', address: 0, type: 'int16', value: -1234 },
  { kind: 'hr', address: 1, type: 'int16', order: 'BADC', value: -300 },
  { kind: 'hr', address: 2, type: 'uint16', value: 60000 },
  { kind: 'hr', address: 3, type: 'int32', order: 'ABCD', value: -123456789 },
  { kind: 'hr', address: 5, type: 'int32', order: 'CDAB', value: -987654321 },
  { kind: 'hr', address: 7, type: 'int32', order: 'BADC', value: 19088743 },
  { kind: 'hr', address: 9, type: 'int32', order: 'DCBA', value: -2 },
  { kind: 'hr', address: 11, type: 'uint32', order: 'CDAB', value: 4000000000 },
  { kind: 'hr', address: 13, type: 'float32', order: 'ABCD', value: 123.456 },
  { kind: 'hr', address: 15, type: 'float32', order: 'CDAB', value: -0.5 },
  { kind: 'hr', address: 17, type: 'float32', order: 'BADC', value: 325000 },
  { kind: 'hr', address: 19, type: 'float32', order: 'DCBA', value: 1.25 },
  { kind: 'hr', address: 21, type: 'float64', order: 'ABCD', value: 12345.6789 },
  { kind: 'hr', address: 25, type: 'float64', order: 'CDAB', value: -9.87654321e-5 },
  { kind: 'hr', address: 29, type: 'float64', order: 'BADC', value: 6.02214076e23 },
  { kind: 'hr', address: 33, type: 'float64', order: 'DCBA', value: Math.PI },
  { kind: 'ir', address: 0, type: 'int16', value: 42 },
  { kind: 'ir', address: 1, type: 'uint32', value: 12345678 },
];

export function allTypesUnit(): ModbusMap['units'][string] {
  return { hr: { '37': 8, '38': 2345, '39': 2000 }, co: { '0': 1, '1': 0, '2': 0, '3': 0, '4': 0, '5': 1 }, di: { '2': 1 }, typed: typed as never };
}

/** Checks the latest reading of every typed point of device `dev` against what pymodbus packed. */
export function expectAllTypes(readings: Reading[], dev: string): void {
  const latest = (p: string) => readings.filter((r) => r.device === dev && r.point === p).at(-1);
  const v = (p: string) => latest(p)!.value;
  expect(v('i16_abcd')).toBe(-1234);
  expect(v('i16_badc')).toBe(-300);
  expect(v('u16')).toBe(60000);
  expect(v('i32_abcd')).toBe(-123456789);
  expect(v('i32_cdab')).toBe(-987654321);
  expect(v('i32_badc')).toBe(19088743);
  expect(v('i32_dcba')).toBe(-2);
  expect(v('u32_cdab')).toBe(4000000000);
  expect(v('f32_abcd')).toBe(123.456);
  expect(v('f32_cdab')).toBe(-0.5);
  expect(v('f32_badc')).toBe(325000);
  expect(v('f32_dcba')).toBe(1.25);
  expect(v('f64_abcd')).toBe(12345.6789);
  expect(v('f64_cdab')).toBe(-9.87654321e-5);
  expect(v('f64_badc')).toBe(6.02214076e23);
  expect(v('f64_dcba')).toBe(Math.PI);
  expect(v('bit3')).toBe(true);
  expect(v('bit4')).toBe(false);
  expect(v('scaled')).toBe(194.5); // 2345 * 0.1 - 40
  expect(latest('scaled')!.quality).toBe('good');
  expect(latest('out_of_range')).toMatchObject({ value: 200, quality: 'out_of_range' });
}
