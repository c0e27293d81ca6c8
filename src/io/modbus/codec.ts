// Decoding of Modbus register words into typed values. The register words arrive as
// big-endian 16-bit words (Modbus Application Protocol v1.1b3, 4.2 "data encoding");
// the byte and word order of multi-register values is device-specific, hence `order`.
import type { ByteOrder, DataType } from '../../config/profile-schema.js';

const scratch = Buffer.alloc(8);

/** Fill `scratch` with the value's bytes in big-endian order (A first). `words` holds the
 * registers as read, starting at the value's first register. */
function gather(words: ArrayLike<number>, start: number, width: number, order: ByteOrder): void {
  const wordSwap = order === 'CDAB' || order === 'DCBA';
  const byteSwap = order === 'BADC' || order === 'DCBA';
  for (let i = 0; i < width; i++) {
    const w = words[start + (wordSwap ? width - 1 - i : i)]! & 0xffff;
    const hi = w >>> 8;
    const lo = w & 0xff;
    scratch[2 * i] = byteSwap ? lo : hi;
    scratch[2 * i + 1] = byteSwap ? hi : lo;
  }
}

/** Decode a register value. Returns a number (or boolean for bit/bool). */
export function decodeRegisters(
  words: ArrayLike<number>,
  start: number,
  type: DataType,
  order: ByteOrder,
  bit?: number,
): number | boolean {
  switch (type) {
    case 'int16':
    case 'uint16': {
      gather(words, start, 1, order);
      return type === 'int16' ? scratch.readInt16BE(0) : scratch.readUInt16BE(0);
    }
    case 'int32':
      gather(words, start, 2, order);
      return scratch.readInt32BE(0);
    case 'uint32':
      gather(words, start, 2, order);
      return scratch.readUInt32BE(0);
    case 'float32':
      gather(words, start, 2, order);
      return scratch.readFloatBE(0);
    case 'float64':
      gather(words, start, 4, order);
      return scratch.readDoubleBE(0);
    case 'bool':
      return (words[start]! & 0xffff) !== 0;
    case 'bit':
      return ((words[start]! >>> (bit ?? 0)) & 1) === 1;
  }
}

/** Inverse of decodeRegisters for numeric types: used by the simulator and the tests. */
export function encodeRegisters(value: number | boolean, type: DataType, order: ByteOrder, bit = 0, current = 0): number[] {
  const b = Buffer.alloc(8);
  let width = 1;
  switch (type) {
    case 'int16':
      b.writeInt16BE(clampInt(Number(value), -32768, 32767), 0);
      break;
    case 'uint16':
      b.writeUInt16BE(clampInt(Number(value), 0, 65535), 0);
      break;
    case 'int32':
      b.writeInt32BE(clampInt(Number(value), -2147483648, 2147483647), 0);
      width = 2;
      break;
    case 'uint32':
      b.writeUInt32BE(clampInt(Number(value), 0, 4294967295), 0);
      width = 2;
      break;
    case 'float32':
      b.writeFloatBE(Number(value), 0);
      width = 2;
      break;
    case 'float64':
      b.writeDoubleBE(Number(value), 0);
      width = 4;
      break;
    case 'bool':
      return [value ? 1 : 0];
    case 'bit':
      return [value ? current | (1 << bit) : current & ~(1 << bit) & 0xffff];
  }
  const wordSwap = order === 'CDAB' || order === 'DCBA';
  const byteSwap = order === 'BADC' || order === 'DCBA';
  const out = new Array<number>(width);
  for (let i = 0; i < width; i++) {
    const hi = b[2 * i]!;
    const lo = b[2 * i + 1]!;
    const w = byteSwap ? (lo << 8) | hi : (hi << 8) | lo;
    out[wordSwap ? width - 1 - i : i] = w;
  }
  return out;
}

function clampInt(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.round(n)));
}
