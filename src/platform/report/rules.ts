// Which points the evaluation reads as meals, UV lamp run hours, cold-chain and indoor-air
// points, with the range a cold-chain or air point must hold. The defaults fit the shipped profiles (docs/EVALUATION.md); a
// platform passes its own with --rules FILE (JSON or YAML), checked here once.
import fs from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { formatIssues } from '../../config/issues.js';

const ColdRule = z.strictObject({
  /** A regular expression over the point id. */
  point: z.string().min(1),
  /** The unit the point must have (a humidity point named "fridge_rh" is not a temperature). */
  unit: z.string().default('°C'),
  min: z.number().nullable().default(null),
  max: z.number().nullable().default(null),
  name: z.string().min(1),
});

export const ReportRules = z.strictObject({
  /** Counter point ids whose increase is meals served. */
  meals: z.array(z.string().min(1)).min(1).default(['meal_counter']),
  /** Counter point ids (unit h) whose increase is a UV disinfection lamp's hours of running. */
  runHours: z.array(z.string().min(1)).min(1).default(['run_hours']),
  /** Indoor air: judged on each window's mean, since the limits are means (first match wins). */
  airQuality: z.array(ColdRule).default([
    // GB/T 18883-2022 (indoor air quality): CO2 <= 0.10 % (1000 ppm) and PM2.5 <= 50 ug/m3,
    // both as daily means. A window whose mean is over the limit counts as out of range.
    { point: '^co2$', unit: 'ppm', min: null, max: 1000, name: 'CO2 <= 1000 ppm (GB/T 18883-2022)' },
    { point: '^pm2_?5$', unit: 'ug/m3', min: null, max: 50, name: 'PM2.5 <= 50 ug/m3 (GB/T 18883-2022)' },
  ]),
  /** First matching rule wins. */
  coldChain: z.array(ColdRule).default([
    // GB 31654-2021 (food safety of catering services), refrigeration at 0-8 °C and frozen
    // storage at or below -12 °C; we use -18 °C, the usual frozen-food setting. Check both
    // against the standard and the site's own procedures: they are defaults.
    { point: 'freezer', unit: '°C', min: null, max: -18, name: 'frozen storage (<= -18 °C)' },
    { point: 'fridge|cold', unit: '°C', min: 0, max: 8, name: 'refrigeration (0-8 °C)' },
  ]),
});
export type ReportRules = z.infer<typeof ReportRules>;
export type ColdRule = z.infer<typeof ColdRule>;

export const DEFAULT_RULES: ReportRules = ReportRules.parse({});

export function loadRules(file: string): ReportRules {
  let raw: unknown;
  try {
    raw = parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`--rules ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  const r = ReportRules.safeParse(raw ?? {});
  if (!r.success) throw new Error(`--rules ${file}: ${formatIssues(r.error).join('; ')}`);
  for (const key of ['coldChain', 'airQuality'] as const) {
    for (const [i, c] of r.data[key].entries()) {
      try {
        new RegExp(c.point);
      } catch {
        throw new Error(`--rules ${file}: ${key}[${i}].point: not a regular expression`);
      }
    }
  }
  return r.data;
}

/** The cold-chain rule a point falls under, or null. */
export function coldRule(rules: ReportRules, point: string, unit: string): ColdRule | null {
  return rules.coldChain.find((c) => c.unit === unit && new RegExp(c.point).test(point)) ?? null;
}

/** The air-quality rule a point falls under, or null. */
export function airRule(rules: ReportRules, point: string, unit: string): ColdRule | null {
  return rules.airQuality.find((c) => c.unit === unit && new RegExp(c.point).test(point)) ?? null;
}
