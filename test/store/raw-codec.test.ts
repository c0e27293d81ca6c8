// The raw block codec: lossless for every value a reading can hold, and small for a steady poll.
import { describe, expect, it } from 'vitest';
import { decodeBlock, encodeBlock, type RawPoint } from '../../src/store/raw-codec.js';
import { seededRandom } from '../../src/sim/random.js';

const T0 = Date.UTC(2026, 11, 1, 8, 0, 0);
const roundTrip = (pts: RawPoint[]) => decodeBlock(pts[0]?.ts ?? 0, encodeBlock(pts));

describe('raw block codec', () => {
  it('a decimal computed in floating point comes back as the decimal, to 12 significant digits', () => {
    const values = [234 * 0.1, 0.1 + 0.2, 1.1 * 1.1, -7 * 0.01, 12345.678 * 1];
    const pts = values.map((value, i) => ({ ts: T0 + i * 1000, value, quality: 'good' }));
    const back = roundTrip(pts).map((p) => p.value!);
    expect(back).toEqual([23.4, 0.3, 1.21, -0.07, 12345.678]);
    back.forEach((v, i) => expect(Math.abs(v - values[i]!)).toBeLessThanOrEqual(Math.abs(values[i]!) * 1e-12));
    // Two bytes a value or less, not eight.
    expect(encodeBlock(pts).length).toBeLessThan(5 * 4 + 10);
  });

  it('gives back decimals, integers, negatives, huge and tiny floats exactly', () => {
    const values = [4.5, -12.25, 0, 1234.5, 0.25 + 0.5, 1e300, -5e-324, Number.MAX_SAFE_INTEGER, 3, 2 ** 60, Math.PI];
    for (const v of values) {
      const pts = [0, 1, 2].map((i) => ({ ts: T0 + i * 1000, value: v * (i + 1), quality: 'good' }));
      expect(roundTrip(pts)).toEqual(pts);
    }
    const mixed = values.map((v, i) => ({ ts: T0 + i * 997, value: v, quality: 'good' }));
    expect(roundTrip(mixed)).toEqual(mixed);
  });

  it('keeps qualities, null values and out-of-order or equal timestamps', () => {
    const pts: RawPoint[] = [
      { ts: T0, value: 1, quality: 'good' },
      { ts: T0 + 5000, value: null, quality: 'timeout' },
      { ts: T0 + 5000, value: 99.5, quality: 'out_of_range' },
      { ts: T0 - 120_000, value: 2, quality: 'good' },
      { ts: T0 + 10_003, value: null, quality: 'exception' },
      { ts: T0 + 15_000, value: null, quality: 'good' },
      { ts: T0 + 20_000, value: -3, quality: 'timeout' },
    ];
    expect(roundTrip(pts)).toEqual(pts);
    expect(roundTrip([])).toEqual([]);
    expect(roundTrip([{ ts: T0, value: null, quality: 'timeout' }])).toEqual([{ ts: T0, value: null, quality: 'timeout' }]);
  });

  it('random series round-trip', () => {
    const rnd = seededRandom(7);
    for (let run = 0; run < 50; run++) {
      let ts = T0;
      const pts: RawPoint[] = [];
      const decimals = Math.floor(rnd() * 4);
      for (let i = 0; i < 200; i++) {
        ts += Math.floor(rnd() * 3000) - 200;
        const q = rnd() < 0.05 ? 'timeout' : 'good';
        const value = q === 'timeout' && rnd() < 0.5 ? null : run % 5 === 0 ? (rnd() - 0.5) * 1e6 : Math.round((rnd() - 0.5) * 10 ** (decimals + 3)) / 10 ** decimals;
        pts.push({ ts, value, quality: q });
      }
      expect(roundTrip(pts)).toEqual(pts);
    }
  });

  it('float32 register values (not decimals) cost four bytes, not eight', () => {
    const f32 = (x: number) => Math.fround(x);
    const pts = Array.from({ length: 100 }, (_, i) => ({ ts: T0 + i * 1000, value: f32(230 + Math.sin(i) * 3.3), quality: 'good' }));
    expect(roundTrip(pts)).toEqual(pts);
    expect(encodeBlock(pts).length).toBeLessThan(100 * 5 + 20);
    // One value that is not a float32 and the block is float64 again, still exact.
    pts[50]!.value = 230.1;
    expect(roundTrip(pts)).toEqual(pts);
    expect(encodeBlock(pts).length).toBeGreaterThan(100 * 8);
  });

  it('a steady 1 s poll of a one-decimal gauge costs about two bytes a reading', () => {
    const pts = Array.from({ length: 60 }, (_, i) => ({ ts: T0 + i * 1000 + (i % 3), value: Math.round((4 + Math.sin(i / 10)) * 10) / 10, quality: 'good' }));
    const bytes = encodeBlock(pts).length;
    expect(roundTrip(pts)).toEqual(pts);
    expect(bytes).toBeLessThan(60 * 3);
  });
});
