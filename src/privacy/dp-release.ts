// The differentially private release of one personal measure over one window (privacy.mode:
// dp), the way OpenDP's make_laplace_threshold and Google's partition selection do it:
//  - each resident contributes at most one session (the caller bounds that) and each value is
//    clamped to the point's range, so one resident moves the count by 1, each band cell by at
//    most 1 and the sum by at most the range's width;
//  - the item's epsilon is split evenly over the noisy count, the noisy sum and (when the
//    point has bands) the noisy band histogram, each with discrete Laplace noise of scale
//    sensitivity / its share, drawn exactly (discrete-laplace.ts);
//  - the figures are released only when the noisy count reaches a threshold T chosen so that
//    a window resting on one resident is released with probability at most delta;
//  - the mean is the noisy sum over the noisy count (post-processing, no extra budget).
// docs/PRIVACY.md gives the formulas and their sources.
import { cryptoRandom, discreteLaplace, epsilonFraction, type RandomSource } from './discrete-laplace.js';

export interface DpParams {
  epsilon: number;
  delta: number;
}

export interface DpMeasurePoint {
  range: { min: number; max: number };
  /** The point's resolution: values are multiples of it (the profile's |scale|). */
  resolution: number;
  bands?: { id: string; from: number }[];
}

export interface DpRelease {
  released: boolean;
  threshold: number;
  /** The noisy count of residents (= measurements: one session each), when released. */
  count: number | null;
  mean: number | null;
  bands: Record<string, number> | null;
}

/** How many equal parts the item's epsilon is split into. */
export function budgetParts(p: Pick<DpMeasurePoint, 'bands'>): number {
  return p.bands && p.bands.length ? 3 : 2;
}

/** The threshold T for a noisy count with discrete Laplace noise of parameter
 * alpha = exp(-epsilonCount): P(1 + X >= T) = alpha^(T-1) / (1 + alpha) <= delta, so
 * T = 1 + ceil(ln(1 / (delta (1 + alpha))) / epsilonCount). Public parameters only: the
 * floating-point log here never touches a resident's data. */
export function releaseThreshold(epsilonCount: number, delta: number): number {
  if (!(epsilonCount > 0) || !(delta > 0 && delta < 1)) throw new RangeError(`releaseThreshold(${epsilonCount}, ${delta})`);
  const alpha = Math.exp(-epsilonCount);
  return 1 + Math.max(0, Math.ceil(Math.log(1 / (delta * (1 + alpha))) / epsilonCount - 1e-12));
}

/** P(n + X >= T) for X discrete Laplace with parameter exp(-epsilonCount): the release rate of
 * a window with n residents. P(X >= m) = alpha^m / (1 + alpha) for m >= 1. */
export function releaseProbability(n: number, threshold: number, epsilonCount: number): number {
  const alpha = Math.exp(-epsilonCount);
  const m = threshold - n;
  const atLeast = (j: number) => Math.pow(alpha, j) / (1 + alpha); // P(X >= j), j >= 1
  return m >= 1 ? atLeast(m) : 1 - atLeast(1 - m);
}

/** The count's share of the item's epsilon and the threshold it implies. */
export function dpThreshold(point: Pick<DpMeasurePoint, 'bands'>, params: DpParams): { epsilonCount: number; threshold: number } {
  const { s, t } = epsilonFraction(params.epsilon);
  const epsilonCount = s / (t * budgetParts(point));
  return { epsilonCount, threshold: releaseThreshold(epsilonCount, params.delta) };
}

/** Discrete Laplace noise of scale sensitivity / (epsilon / parts), epsilon as s / t exactly. */
function noise(epsilon: number, parts: number, sensitivity: number, rnd: RandomSource): number {
  const { s, t } = epsilonFraction(epsilon);
  return discreteLaplace(s, t * parts * sensitivity, rnd);
}

/** The release of one measure from the values of its residents (one value per resident). */
export function dpMeasure(values: readonly number[], point: DpMeasurePoint, params: DpParams, rnd: RandomSource = cryptoRandom): DpRelease {
  const parts = budgetParts(point);
  const { threshold } = dpThreshold(point, params);
  const { min: lo, max: hi } = point.range;
  const q = point.resolution;
  // Values in whole units of the resolution above the range's floor: the sum is an integer
  // and one resident moves it by at most `width` units.
  const width = Math.max(1, Math.round((hi - lo) / q));
  const units = values.map((v) => Math.min(width, Math.max(0, Math.round((Math.min(hi, Math.max(lo, v)) - lo) / q))));
  // Every noisy figure is drawn whether or not it is released, so the time and randomness a
  // window uses do not depend on the decision.
  const count = values.length + noise(params.epsilon, parts, 1, rnd);
  const sum = units.reduce((a, u) => a + u, 0) + noise(params.epsilon, parts, width, rnd);
  let bands: Record<string, number> | null = null;
  if (point.bands && point.bands.length) {
    bands = {};
    const cells = new Map(point.bands.map((b) => [b.id, 0]));
    for (const v of values) {
      const c = Math.min(hi, Math.max(lo, v));
      const band = [...point.bands].reverse().find((b) => c >= b.from) ?? point.bands[0]!;
      cells.set(band.id, cells.get(band.id)! + 1);
    }
    for (const [id, n] of cells) bands[id] = Math.max(0, n + noise(params.epsilon, parts, 1, rnd));
  }
  if (count < threshold) return { released: false, threshold, count: null, mean: null, bands: null };
  const mean = Math.min(hi, Math.max(lo, lo + (q * sum) / count));
  return { released: true, threshold, count, mean: Number(mean.toPrecision(4)), bands };
}
