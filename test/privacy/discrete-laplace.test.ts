// The discrete Laplace sampler against its law: P(x) = (1 - q) / (1 + q) * q^|x|, q = exp(-s/t).
// A chi-square goodness-of-fit test over many draws from an injected deterministic source (so
// the test gives the same verdict on every run), the exact Bernoulli(exp(-g)) building block,
// and that the production source is node:crypto.
import crypto from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bernoulliExp, countNoise, cryptoRandom, discreteLaplace, epsilonFraction } from '../../src/privacy/discrete-laplace.js';
import { seeded } from '../helpers/seeded-source.js';

/** Chi-square statistic of draws against the discrete Laplace law, bins -B..B and two tails. */
function chiSquare(draws: number[], s: number, t: number, B: number): { stat: number; dof: number } {
  const q = Math.exp(-s / t);
  const p = (x: number) => ((1 - q) / (1 + q)) * q ** Math.abs(x);
  const n = draws.length;
  const observed = new Map<number, number>();
  for (const d of draws) {
    const bin = Math.max(-B - 1, Math.min(B + 1, d));
    observed.set(bin, (observed.get(bin) ?? 0) + 1);
  }
  // Tail probability P(X > B) = q^(B+1) / (1 + q), the same below -B.
  const tail = q ** (B + 1) / (1 + q);
  let stat = 0;
  for (let x = -B - 1; x <= B + 1; x++) {
    const e = n * (Math.abs(x) === B + 1 ? tail : p(x));
    const o = observed.get(x) ?? 0;
    stat += (o - e) ** 2 / e;
  }
  return { stat, dof: 2 * B + 2 };
}

/** Upper 0.1 % critical value of chi-square with `dof` degrees of freedom (Wilson-Hilferty). */
function critical999(dof: number): number {
  const z = 3.0902;
  return dof * (1 - 2 / (9 * dof) + z * Math.sqrt(2 / (9 * dof))) ** 3;
}

afterEach(() => vi.restoreAllMocks());

describe('discrete Laplace sampler', () => {
  it.each([
    [1, 1, 6], // epsilon 1
    [1, 2, 10], // epsilon 0.5, scale 2
    [1, 10, 30], // epsilon 0.1, scale 10
    [3, 2, 4], // epsilon 1.5
  ])('s=%i t=%i: 100,000 draws fit the law (chi-square, p = 0.001)', (s, t, B) => {
    const rnd = seeded(12345 + s * 7 + t);
    const draws = Array.from({ length: 100_000 }, () => discreteLaplace(s, t, rnd));
    const { stat, dof } = chiSquare(draws, s, t, B);
    expect(stat, `chi-square ${stat.toFixed(1)} with ${dof} degrees of freedom`).toBeLessThan(critical999(dof));
    // Symmetric around 0 and every draw an integer.
    expect(draws.every(Number.isInteger)).toBe(true);
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    expect(Math.abs(mean)).toBeLessThan((6 * Math.sqrt(2) * (t / s)) / Math.sqrt(draws.length) + 0.01);
  });

  it('the test can tell: a sampler with the wrong scale fails the same chi-square', () => {
    const rnd = seeded(99);
    const draws = Array.from({ length: 100_000 }, () => discreteLaplace(1, 2, rnd));
    // Judged as if it were epsilon 0.4 (scale 2.5): rejected.
    const { stat, dof } = chiSquare(draws, 2, 5, 10);
    expect(stat).toBeGreaterThan(critical999(dof));
  });

  it('Bernoulli(exp(-g)) is exact in its frequency for g = 0, 1/3, 1 and 5/2', () => {
    const rnd = seeded(7);
    for (const [num, den] of [
      [0, 1],
      [1, 3],
      [1, 1],
      [5, 2],
    ] as const) {
      const n = 200_000;
      let hits = 0;
      for (let i = 0; i < n; i++) if (bernoulliExp(num, den, rnd)) hits++;
      const p = Math.exp(-num / den);
      // Within 5 standard errors.
      expect(Math.abs(hits / n - p), `exp(-${num}/${den})`).toBeLessThanOrEqual(5 * Math.sqrt((p * (1 - p)) / n) + 1e-12);
    }
  });

  it('epsilon becomes a fraction to 1/1000 (rounded down: never less noise)', () => {
    expect(epsilonFraction(0.5)).toEqual({ s: 1, t: 2 });
    expect(epsilonFraction(1)).toEqual({ s: 1, t: 1 });
    expect(epsilonFraction(0.125)).toEqual({ s: 1, t: 8 });
    expect(epsilonFraction(0.0015)).toEqual({ s: 1, t: 1000 });
    expect(() => epsilonFraction(0.0001)).toThrow(/at least 0.001/);
  });

  it('production draws come from node:crypto (crypto.randomInt), not Math.random', () => {
    const spy = vi.spyOn(crypto, 'randomInt');
    const math = vi.spyOn(Math, 'random');
    for (let i = 0; i < 50; i++) countNoise(0.5);
    expect(spy).toHaveBeenCalled();
    expect(math).not.toHaveBeenCalled();
    expect(cryptoRandom.below(1)).toBe(0);
  });
});
