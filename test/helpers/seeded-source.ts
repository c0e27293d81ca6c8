// A reproducible RandomSource for the privacy tests only (production draws from node:crypto).
import type { RandomSource } from '../../src/privacy/discrete-laplace.js';

/** xorshift128+ with rejection: uniform integers below n, reproducible from the seed. For the
 * test only (predictable by design). */
export function seeded(seed: number): RandomSource {
  let s0 = BigInt(seed) | 1n;
  let s1 = 0x9e3779b97f4a7c15n ^ BigInt(seed);
  const mask = (1n << 64n) - 1n;
  const next32 = (): number => {
    let x = s0;
    const y = s1;
    s0 = y;
    x ^= (x << 23n) & mask;
    s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return Number(((s1 + y) & mask) >> 32n);
  };
  return {
    below(n: number): number {
      if (n > 2 ** 32) throw new RangeError('test source: n above 2^32');
      const limit = Math.floor(2 ** 32 / n) * n;
      for (;;) {
        const r = next32();
        if (r < limit) return r % n;
      }
    },
  };
}

