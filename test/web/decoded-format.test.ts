// Try-read's decoded values stay short whatever the byte order makes of the words: the phone's
// table is sized by its widest cell (a float32 of 3.99e11 printed in full overflowed 390 px).
import { describe, expect, it } from 'vitest';

(globalThis as { document?: unknown }).document ??= { documentElement: {} };
// @ts-expect-error plain browser module without types
const { fmtDecoded } = (await import('../../src/web/public/views/device.js')) as { fmtDecoded: (v: unknown) => string };

describe('decoded value text', () => {
  it('is at most 11 characters for every float32 the words can make', () => {
    const buf = new DataView(new ArrayBuffer(4));
    let widest = '';
    // Every 16th bit pattern of the upper word, with a few lower words: signs, exponents, subnormals, NaN, infinities.
    for (let hi = 0; hi < 0x10000; hi += 16) {
      for (const lo of [0, 1, 0x4361, 0xffff]) {
        buf.setUint16(0, hi);
        buf.setUint16(2, lo);
        const t = fmtDecoded(buf.getFloat32(0));
        if (t.length > widest.length) widest = t;
      }
    }
    expect(widest.length, widest).toBeLessThanOrEqual(11);
    expect(fmtDecoded(399342623208)).toBe('3.9934e+11');
    expect(fmtDecoded(225.15625)).toBe('225.1563');
    expect(fmtDecoded(-12345)).toBe('-12345');
    expect(fmtDecoded(null)).toBe('—');
  });
});
