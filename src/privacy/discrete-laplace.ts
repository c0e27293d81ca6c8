// Discrete Laplace noise (the two-sided geometric distribution) as the DP libraries draw it:
// P(x) proportional to exp(-|x| * s / t) for integers x, sampled exactly with integer
// arithmetic from uniform integers (Canonne, Kamath, Steinke, "The Discrete Gaussian for
// Differential Privacy", NeurIPS 2020, Algorithms 1 and 2; OpenDP and Google's library use the
// same construction). No floating-point logarithm is on the release path: a continuous Laplace
// sample rounded to an integer leaks through its low bits (Mironov, CCS 2012).
//
// The randomness is node:crypto's (crypto.randomInt: rejection-sampled, uniform); a test may
// inject its own deterministic source, production code never does.
import crypto from 'node:crypto';

/** Uniform integers in [0, n), n a positive safe integer. */
export interface RandomSource {
  below(n: number): number;
}

/** The production source: the operating system's CSPRNG through node:crypto. */
export const cryptoRandom: RandomSource = {
  below: (n) => crypto.randomInt(n),
};

/** crypto.randomInt takes a range of at most 2^48 - 1. */
const MAX_RANGE = 2 ** 48 - 1;

/** Bernoulli(num / den), 0 <= num <= den, exactly. */
export function bernoulli(num: number, den: number, rnd: RandomSource): boolean {
  if (!(den > 0 && den <= MAX_RANGE && num >= 0 && num <= den && Number.isInteger(num) && Number.isInteger(den))) throw new RangeError(`bernoulli(${num}/${den}): not a probability of integers below 2^48`);
  return rnd.below(den) < num;
}

/** Bernoulli(exp(-num / den)) for num, den >= 0 integers, exactly (CKS Algorithm 1). */
export function bernoulliExp(num: number, den: number, rnd: RandomSource): boolean {
  // exp(-g) = exp(-1)^floor(g) * exp(-(g - floor g)): each factor its own trial.
  while (num > den) {
    if (!bernoulliExp(1, 1, rnd)) return false;
    num -= den;
  }
  // For g in [0, 1]: count the K for which Bernoulli(g / K) keeps succeeding; exp(-g) is the
  // probability that the first failure comes at an odd K.
  let k = 1;
  while (bernoulli(num, den * k, rnd)) k++;
  return k % 2 === 1;
}

/** One draw from the discrete Laplace law with P(x) ∝ exp(-|x| * s / t), s, t positive
 * integers (CKS Algorithm 2). The scale is t / s. */
export function discreteLaplace(s: number, t: number, rnd: RandomSource = cryptoRandom): number {
  if (!(Number.isInteger(s) && Number.isInteger(t) && s > 0 && t > 0)) throw new RangeError(`discreteLaplace(${s}, ${t}): s and t must be positive integers`);
  for (;;) {
    const u = rnd.below(t);
    if (!bernoulliExp(u, t, rnd)) continue;
    let v = 0;
    while (bernoulliExp(1, 1, rnd)) v++;
    const x = u + t * v; // geometric with parameter exp(-1/t), exactly
    const y = Math.floor(x / s);
    const negative = bernoulli(1, 2, rnd);
    if (negative && y === 0) continue; // zero would be counted twice
    return negative ? -y : y;
  }
}

/** epsilon as the rational s / t the sampler takes (to 1/1000: config values have at most
 * three decimals; a finer epsilon is rounded down, which only adds noise). */
export function epsilonFraction(epsilon: number): { s: number; t: number } {
  const t0 = 1000;
  const s0 = Math.floor(epsilon * t0 + 1e-9);
  if (!(s0 >= 1)) throw new RangeError(`epsilon ${epsilon}: must be at least 0.001`);
  const g = gcd(s0, t0);
  return { s: s0 / g, t: t0 / g };
}

/** Noise for a count of sensitivity 1 at this epsilon: discrete Laplace with scale 1/epsilon. */
export function countNoise(epsilon: number, rnd: RandomSource = cryptoRandom): number {
  const { s, t } = epsilonFraction(epsilon);
  return discreteLaplace(s, t, rnd);
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
