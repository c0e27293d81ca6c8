// Device profile schema: one YAML file per real device model in drivers/.
// A profile is pure data; adding a model must need no code (DESIGN.md, "devices as data").
import { z } from 'zod';
import { FACILITY_TYPE_ID } from './facility-types.js';

export const RegisterKind = z.enum(['holding', 'input', 'coil', 'discrete']);
export type RegisterKind = z.infer<typeof RegisterKind>;

export const DataType = z.enum(['int16', 'uint16', 'int32', 'uint32', 'float32', 'float64', 'bool', 'bit']);
export type DataType = z.infer<typeof DataType>;

/** Byte order of a multi-byte value, written as the bytes A (most significant) .. D as they
 * appear on the wire: ABCD big-endian, CDAB word-swapped, BADC byte-swapped, DCBA little-endian. */
export const ByteOrder = z.enum(['ABCD', 'CDAB', 'BADC', 'DCBA']);
export type ByteOrder = z.infer<typeof ByteOrder>;

export const PrivacyClass = z.enum(['public', 'personal', 'identifier']);
export type PrivacyClass = z.infer<typeof PrivacyClass>;

/** How strict a class is: a site may move a point up this scale, never down (DESIGN.md,
 * "a class of privacy can only be tightened, by any path"). */
const RANK: Record<PrivacyClass, number> = { public: 0, personal: 1, identifier: 2 };

/** The stricter of two classes. */
export function stricter(a: PrivacyClass, b: PrivacyClass): PrivacyClass {
  return RANK[a] >= RANK[b] ? a : b;
}

/** True when `to` would let out more than `from` does. */
export function loosens(from: PrivacyClass, to: PrivacyClass): boolean {
  return RANK[to] < RANK[from];
}

/** gauge: a level (temperature); counter: only goes up, may wrap (meal count, kWh);
 * state: a discrete on/off or status (door contact, alarm). */
export const PointKind = z.enum(['gauge', 'counter', 'state']);
export type PointKind = z.infer<typeof PointKind>;

const Label = z.strictObject({ zh: z.string().min(1), en: z.string().min(1) });

/** How the built-in simulator moves a point. Optional: sensible motion is derived from
 * the point's kind and range when absent. */
export const SimSpec = z.strictObject({
  /** walk: bounded random walk; sine: daily-ish wave; counter: increments; toggle: flips rarely;
   * event: changes only when the device's event counter advances (health kiosk measurements);
   * fixed: constant value. */
  model: z.enum(['walk', 'sine', 'counter', 'toggle', 'event', 'fixed']),
  /** Engineering-unit values (after scale/offset). */
  min: z.number().optional(),
  max: z.number().optional(),
  value: z.number().optional(),
  /** Mean change per second for walk/counter; probability per second for toggle. */
  rate: z.number().nonnegative().optional(),
  periodS: z.number().positive().optional(),
});
export type SimSpec = z.infer<typeof SimSpec>;

export const PointSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z][a-z0-9_]*$/, 'must be lower_snake_case (it becomes an MQTT topic level)'),
    name: Label,
    register: RegisterKind,
    /** Zero-based protocol address (the "PDU address"; register 40001 is address 0). */
    address: z.number().int().min(0).max(65535),
    type: DataType,
    /** Bit number 0..15 inside the register, for type "bit". */
    bit: z.number().int().min(0).max(15).optional(),
    order: ByteOrder.default('ABCD'),
    scale: z.number().refine((n) => n !== 0, 'must not be 0').default(1),
    offset: z.number().default(0),
    unit: z.string().default(''),
    privacy: PrivacyClass,
    kind: PointKind.default('gauge'),
    /** Sane physical range in engineering units; readings outside are flagged out_of_range. */
    range: z.strictObject({ min: z.number(), max: z.number() }).optional(),
    writable: z.boolean().default(false),
    /** An alarm input (smoke, gas, emergency button): raised while the value equals `when`.
     * Alarms go to the platform at once, ahead of any backlog. */
    alarm: z.strictObject({ when: z.boolean(), severity: z.enum(['warning', 'critical']).default('critical') }).optional(),
    simulate: SimSpec.optional(),
    /** Bands for aggregates of a personal measure: band i covers [from_i, from_i+1). Counts
     * per band leave the site (k-anonymous), never single values. */
    bands: z
      .array(z.strictObject({ id: z.string().regex(/^[a-z][a-z0-9_]*$/), name: Label, from: z.number() }))
      .min(2)
      .refine((b) => b.every((x, i) => i === 0 || x.from > b[i - 1]!.from), 'bands must be in ascending order of from')
      .optional(),
    description: z.string().optional(),
  })
  .superRefine((p, ctx) => {
    const bitKinds = p.register === 'coil' || p.register === 'discrete';
    if (bitKinds && p.type !== 'bool') {
      ctx.addIssue({ code: 'custom', path: ['type'], message: `a ${p.register} point must have type bool` });
    }
    if (!bitKinds && p.type === 'bool' && p.bit !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['bit'], message: 'use type "bit" for one bit of a register' });
    }
    if (p.type === 'bit' && p.bit === undefined) {
      ctx.addIssue({ code: 'custom', path: ['bit'], message: 'type "bit" needs bit: 0..15' });
    }
    if (p.type !== 'bit' && p.bit !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['bit'], message: 'bit is only for type "bit"' });
    }
    if (p.alarm && p.type !== 'bool' && p.type !== 'bit') {
      ctx.addIssue({ code: 'custom', path: ['alarm'], message: 'alarm inputs are bool or bit points; use a site alarm rule for thresholds' });
    }
    if (p.range && p.range.min >= p.range.max) {
      ctx.addIssue({ code: 'custom', path: ['range'], message: 'min must be below max' });
    }
    if (p.address + registerWidth(p.type) - 1 > 65535) {
      ctx.addIssue({ code: 'custom', path: ['address'], message: 'value runs past address 65535' });
    }
  });
export type Point = z.infer<typeof PointSchema>;

/** Address ranges the device refuses or that must not be read (inclusive). */
export const HoleSchema = z
  .strictObject({ register: RegisterKind, from: z.number().int().min(0).max(65535), to: z.number().int().min(0).max(65535) })
  .refine((h) => h.from <= h.to, { message: 'from must not exceed to', path: ['to'] });
export type Hole = z.infer<typeof HoleSchema>;

export const ProfileSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'must be lower-case letters, digits and dashes'),
  manufacturer: z.string().min(1),
  model: z.string().min(1),
  name: Label,
  /** Where the register map comes from: a document title and address, or "own" for ours. */
  source: z.string().min(1),
  /** Which facility types the model is meant for (documentation and the page's choices); type
   * ids of drivers/facility-types.yaml, checked when the profiles load (loadProfileSet). */
  facilities: z.array(z.string().regex(FACILITY_TYPE_ID, 'must be a facility type id, e.g. "childcare"')).min(1),
  transports: z.array(z.enum(['modbus-tcp', 'modbus-rtu', 'gpio'])).min(1),
  /** Largest registers (or bits) in one read the device accepts; Modbus allows 125 / 2000. */
  maxRegistersPerRead: z.number().int().min(1).max(125).default(125),
  holes: z.array(HoleSchema).default([]),
  /** A device that reports sessions (a health kiosk): each increase of `trigger` (a counter)
   * is one event of `subject` (an identifier point: who) with the `values` read in that scan. */
  events: z
    .strictObject({
      trigger: z.string(),
      subject: z.string().optional(),
      values: z.array(z.string()).min(1),
    })
    .optional(),
  points: z.array(PointSchema).min(1),
  /** The model's main reading, which the page's chart shows first (the gas concentration of a
   * gas detector, not its raw ADC count). Absent: the first chartable point. Must name a public,
   * chartable point (chartablePoint). */
  mainPoint: z.string().optional(),
}).superRefine((p, ctx) => {
  if (p.mainPoint === undefined) return;
  const m = p.points.find((x) => x.id === p.mainPoint);
  const why = !m ? `no point "${p.mainPoint}"` : m.privacy !== 'public' ? `"${m.id}" is ${m.privacy} data: the page never charts it` : !chartablePoint(m) ? `"${m.id}" is a ${m.kind === 'state' ? 'state' : m.type} point: the chart draws numeric gauges and counters` : null;
  if (why) ctx.addIssue({ code: 'custom', path: ['mainPoint'], message: why });
});
export type Profile = z.infer<typeof ProfileSchema>;

/** A point the page can draw as a line: numeric (not a bool, bit, coil or discrete input) and
 * not a state. Privacy is judged apart (a site may tighten a point's class). */
export function chartablePoint(p: Pick<Point, 'type' | 'register' | 'kind'>): boolean {
  return p.type !== 'bool' && p.type !== 'bit' && p.register !== 'coil' && p.register !== 'discrete' && p.kind !== 'state';
}

/** The point the chart shows first: the profile's mainPoint while it is public (a site may have
 * tightened it), else the first public chartable point; undefined when there is none. */
export function defaultChartPoint(p: Pick<Profile, 'points' | 'mainPoint'>): string | undefined {
  const ok = (x: Point) => x.privacy === 'public' && chartablePoint(x);
  const main = p.points.find((x) => x.id === p.mainPoint);
  return (main && ok(main) ? main : p.points.find(ok))?.id;
}

/** True when every value of the point is a whole number, from its definition (not its data): an
 * integer register type whose scale and offset are whole numbers (a meal counter, an ADC count).
 * A float counter (kWh) is not: its values have decimals. */
export function wholeNumberPoint(p: Pick<Point, 'type' | 'scale' | 'offset'>): boolean {
  return ['int16', 'uint16', 'int32', 'uint32'].includes(p.type) && Number.isInteger(p.scale) && Number.isInteger(p.offset);
}

/** Registers a value of this type occupies (coils and discretes: one bit each). */
export function registerWidth(type: DataType): number {
  switch (type) {
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'float64':
      return 4;
    default:
      return 1;
  }
}

/** The addresses a point occupies, inclusive (a coil or discrete input is one bit). */
export function pointSpan(p: Point): { from: number; to: number } {
  const w = p.register === 'coil' || p.register === 'discrete' ? 1 : registerWidth(p.type);
  return { from: p.address, to: p.address + w - 1 };
}
