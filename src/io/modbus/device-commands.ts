// What the technician's page may ask of a device besides polling: a try-read of any range
// (decoded in every type and byte order at once, since a wrong byte order is the most common
// support question) and a write of a point the profile marks writable. Pure functions; the
// gateway runs the requests through the device's bus queue.
import type { ByteOrder, DataType, Point } from '../../config/profile-schema.js';
import { decodeRegisters, encodeRegisters } from './codec.js';
import type { WriteRequest } from './transport.js';

const ORDERS_16: ByteOrder[] = ['ABCD', 'BADC'];
const ORDERS_32: ByteOrder[] = ['ABCD', 'CDAB', 'BADC', 'DCBA'];
const WIDTH: Record<string, number> = { int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, float64: 4 };

export type Decoded = { offset: number } & Partial<Record<DataType, Partial<Record<ByteOrder, number>>>>;

/** Every type in every order, for each word offset where enough words follow. */
export function decodeAll(words: number[]): Decoded[] {
  return words.map((_, offset) => {
    const row: Decoded = { offset };
    for (const type of ['int16', 'uint16', 'int32', 'uint32', 'float32', 'float64'] as const) {
      if (offset + WIDTH[type]! > words.length) continue;
      const orders = WIDTH[type] === 1 ? ORDERS_16 : ORDERS_32;
      row[type] = Object.fromEntries(orders.map((o) => [o, Number(decodeRegisters(words, offset, type, o))]));
    }
    return row;
  });
}

const LIMITS: Partial<Record<DataType, [number, number]>> = {
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
};

/** The Modbus write for `value` (engineering units) on point `p`, or an error a technician can act on. */
export function encodeWrite(p: Point, unitId: number, value: unknown): WriteRequest | string {
  if (!p.writable) return `point ${p.id} is not writable (the profile does not mark it writable)`;
  if (p.register === 'coil') {
    if (typeof value !== 'boolean') return `point ${p.id} is on/off: value must be true or false`;
    return { unitId, register: 'coil', start: p.address, values: [value ? 1 : 0] };
  }
  if (p.register !== 'holding') return `point ${p.id} is a ${p.register}: only holding registers and coils can be written`;
  if (p.type === 'bit') return `point ${p.id} is one bit of a register: writing it would need a read-modify-write, which is not supported`;
  if (p.type === 'bool') {
    if (typeof value !== 'boolean') return `point ${p.id} is on/off: value must be true or false`;
    return { unitId, register: 'holding', start: p.address, values: [value ? 1 : 0] };
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) return `point ${p.id}: value must be a number`;
  if (p.range && (value < p.range.min || value > p.range.max)) return `point ${p.id}: ${value} is outside ${p.range.min}..${p.range.max} ${p.unit}`.trim();
  const raw = (value - p.offset) / p.scale;
  const lim = LIMITS[p.type];
  if (lim) {
    if (Math.abs(raw - Math.round(raw)) > 1e-9) return `point ${p.id}: ${value} is not a multiple of its step ${p.scale}`;
    if (Math.round(raw) < lim[0] || Math.round(raw) > lim[1]) return `point ${p.id}: ${value} does not fit a ${p.type} register`;
  }
  return { unitId, register: 'holding', start: p.address, values: encodeRegisters(raw, p.type, p.order, 0, 0) };
}
