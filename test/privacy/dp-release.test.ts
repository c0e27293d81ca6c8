// The dp release of one measure: the threshold against its formula, the release rate of
// synthetic windows against the discrete Laplace law, bounded contributions (clamping), and
// that production draws from node:crypto.
import crypto from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { budgetParts, dpMeasure, dpThreshold, releaseProbability, releaseThreshold } from '../../src/privacy/dp-release.js';
import { seeded } from '../helpers/seeded-source.js';

const SYS = { range: { min: 50, max: 300 }, resolution: 1, bands: [{ id: 'normal', from: 0 }, { id: 'high', from: 140 }] };
const WEIGHT = { range: { min: 20, max: 250 }, resolution: 0.1 };

describe('the release threshold', () => {
  it('is the smallest T for which a window of one resident is released with probability <= delta', () => {
    for (const [eps, delta] of [[1 / 3, 1e-6], [0.5, 1e-3], [2, 1e-5], [0.05, 1e-4]] as const) {
      const T = releaseThreshold(eps, delta);
      expect(releaseProbability(1, T, eps), `eps ${eps} delta ${delta} T ${T}`).toBeLessThanOrEqual(delta);
      expect(releaseProbability(1, T - 1, eps), `eps ${eps} delta ${delta} T-1`).toBeGreaterThan(delta);
    }
  });

  it('splits the item budget evenly: count, sum, and bands when the point has them', () => {
    expect(budgetParts(SYS)).toBe(3);
    expect(budgetParts(WEIGHT)).toBe(2);
    expect(dpThreshold(SYS, { epsilon: 1, delta: 1e-6 }).epsilonCount).toBeCloseTo(1 / 3, 12);
    expect(dpThreshold(WEIGHT, { epsilon: 1, delta: 1e-6 }).epsilonCount).toBeCloseTo(1 / 2, 12);
  });

  it('the release probability is a distribution function: 1/2-ish at T = n + 1/2, monotone in n', () => {
    const T = 14;
    let last = 0;
    for (let n = 0; n <= 30; n++) {
      const p = releaseProbability(n, T, 0.5);
      expect(p).toBeGreaterThanOrEqual(last);
      last = p;
    }
    // P(X >= 0) = 1 - alpha / (1 + alpha) = 1 / (1 + alpha).
    expect(releaseProbability(T, T, 0.5)).toBeCloseTo(1 / (1 + Math.exp(-0.5)), 12);
  });
});

describe('release rate on synthetic windows', () => {
  it('matches P(n + X >= T) for n around the threshold (4,000 windows each, within 4.5 standard errors)', () => {
    const params = { epsilon: 1, delta: 1e-3 };
    const { epsilonCount, threshold } = dpThreshold(WEIGHT, params);
    expect(threshold).toBe(14); // 1 + ceil(ln(1 / (1e-3 (1 + e^-0.5))) / 0.5) = 1 + ceil(12.87)
    const rnd = seeded(20261202);
    const N = 4000;
    for (let n = threshold - 4; n <= threshold + 4; n++) {
      const values = Array.from({ length: n }, () => 65);
      let released = 0;
      for (let i = 0; i < N; i++) if (dpMeasure(values, WEIGHT, params, rnd).released) released++;
      const p = releaseProbability(n, threshold, epsilonCount);
      const se = Math.sqrt((p * (1 - p)) / N);
      expect(Math.abs(released / N - p), `n ${n}: ${released}/${N} against ${p.toFixed(4)}`).toBeLessThan(4.5 * se + 1e-9);
    }
  });

  it('a window of one resident is released at most about delta of the time (20,000 windows)', () => {
    const params = { epsilon: 1, delta: 1e-3 };
    const rnd = seeded(42);
    let released = 0;
    for (let i = 0; i < 20_000; i++) if (dpMeasure([65], WEIGHT, params, rnd).released) released++;
    // Expected <= 20; 45 is more than 5 standard deviations above.
    expect(released).toBeLessThan(45);
  });
});

describe('bounded contributions', () => {
  it('values are clamped to the range: a resident with an absurd value moves the mean no further than the range', () => {
    const params = { epsilon: 10, delta: 1e-3 };
    const rnd = seeded(1);
    const high = dpMeasure(Array.from({ length: 200 }, () => 1e9), WEIGHT, params, rnd);
    expect(high.released).toBe(true);
    expect(high.mean).toBeLessThanOrEqual(250);
    expect(high.mean).toBeGreaterThan(240);
    const low = dpMeasure(Array.from({ length: 200 }, () => -1e9), WEIGHT, params, rnd);
    expect(low.mean).toBeGreaterThanOrEqual(20);
    expect(low.mean).toBeLessThan(30);
    // One absurd value among 200 at 65 kg moves the mean by at most (250 - 65) / 201 = 0.92 kg
    // (plus noise of scale 2 x 2300 / 10 units of 0.1 kg over the sum: ~0.2 kg here).
    const one = dpMeasure([...Array.from({ length: 200 }, () => 65), 1e9], WEIGHT, params, rnd);
    expect(one.mean).toBeLessThan(65 + 0.92 + 1);
  });

  it('the mean comes from a noisy sum over a noisy count: near the truth with many residents, never the exact mean every time', () => {
    const params = { epsilon: 2, delta: 1e-3 };
    const rnd = seeded(5);
    const values = Array.from({ length: 300 }, (_, i) => 60 + (i % 20)); // true mean 69.5
    const means = Array.from({ length: 200 }, () => dpMeasure(values, WEIGHT, params, rnd).mean!);
    const avg = means.reduce((a, b) => a + b, 0) / means.length;
    expect(Math.abs(avg - 69.5)).toBeLessThan(1);
    expect(new Set(means).size).toBeGreaterThan(20);
  });

  it('band cells are noisy, non-negative integers and released only with the count', () => {
    const params = { epsilon: 3, delta: 1e-3 };
    const rnd = seeded(9);
    const r = dpMeasure([...Array.from({ length: 40 }, () => 120), ...Array.from({ length: 20 }, () => 150)], SYS, params, rnd);
    expect(r.released).toBe(true);
    expect(Object.keys(r.bands!)).toEqual(['normal', 'high']);
    for (const v of Object.values(r.bands!)) expect(Number.isInteger(v) && v >= 0).toBe(true);
    const none = dpMeasure([120], SYS, params, seeded(10));
    expect(none).toMatchObject({ released: false, count: null, mean: null, bands: null });
  });
});

describe('randomness', () => {
  it('production draws from node:crypto, never Math.random', () => {
    const spy = vi.spyOn(crypto, 'randomInt');
    const mr = vi.spyOn(Math, 'random');
    try {
      dpMeasure([70, 71, 72], WEIGHT, { epsilon: 1, delta: 1e-3 });
      expect(spy).toHaveBeenCalled();
      expect(mr).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
      mr.mockRestore();
    }
  });
});
