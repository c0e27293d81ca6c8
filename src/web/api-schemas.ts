// Every web request body, validated once at the edge (zod, strict: unknown fields are refused).
import { z } from 'zod';
import { PROBE_TIMEOUT_RANGE } from '../scan/bus-scan.js';
import { parseUnits, UnitsError } from '../scan/units.js';

const password = z.string().min(1, 'is required').max(256);
/** A TOTP code (6 digits) or a recovery code (XXXXX-XXXXX); the server tells which. */
const factorCode = z.string().max(32);
const totpSecret = z.string().regex(/^[A-Z2-7]{32}$/, 'is not a secret this box issued');

export const LoginBody = z.strictObject({ password, code: factorCode.optional() });

export const SetupBody = z.strictObject({
  password,
  setupCode: z.string().min(1, 'is required: it is printed in the daemon log').max(32),
  totp: z.strictObject({ secret: totpSecret, code: z.string().regex(/^\s*\d{6}\s*$/, 'must be the 6 digits the app shows') }).optional(),
});

export const PasswordChangeBody = z.strictObject({ current: password, password, code: factorCode.optional() });

export const TotpEnableBody = z.strictObject({ password, secret: totpSecret, code: z.string().regex(/^\s*\d{6}\s*$/, 'must be the 6 digits the app shows') });

export const TotpDisableBody = z.strictObject({ password, code: factorCode.min(1, 'is required') });

const FORM_KEY = /^(site\.name|uplink\.url|uplink\.windowSeconds|privacy\.k|log\.level|devices\[\d{1,4}\]\.(pollMs|name))$/;
export const ConfigForm = z.record(z.string(), z.union([z.string().max(1000), z.number(), z.null()])).superRefine((form, ctx) => {
  for (const k of Object.keys(form)) if (!FORM_KEY.test(k)) ctx.addIssue({ code: 'custom', path: [k], message: 'is not an editable form field' });
});

/** A form field as the page sends it: typed text, a number, a choice; null or "" for "not set".
 * The form is checked loosely here; the config checks (parseSiteConfig) judge the result. */
const cell = z.union([z.string().max(1000), z.number(), z.boolean(), z.null()]).optional();
export const DeviceEditValue = z.strictObject({ id: cell, name: cell, facility: cell, profile: cell, bus: cell, unitId: cell, pollMs: cell });
export const BusEditValue = z.strictObject({ id: cell, type: cell, host: cell, port: cell, timeoutMs: cell, path: cell, baudRate: cell, parity: cell, dataBits: cell, stopBits: cell });
export const AlarmEditValue = z.strictObject({ id: cell, device: cell, point: cell, condition: z.enum(['above', 'below', 'equals']).optional(), threshold: cell, severity: cell, forSeconds: cell });
const index = z.number().int().min(0).max(9999);
/** One entry of devices, buses or alarms: index absent adds one, value null removes one. */
export const ConfigEdit = z
  .discriminatedUnion('section', [
    z.strictObject({ section: z.literal('devices'), index: index.optional(), value: DeviceEditValue.nullable() }),
    z.strictObject({ section: z.literal('buses'), index: index.optional(), value: BusEditValue.nullable() }),
    z.strictObject({ section: z.literal('alarms'), index: index.optional(), value: AlarmEditValue.nullable() }),
  ])
  .refine((e) => e.value !== null || e.index !== undefined, { message: 'removing needs the index', path: ['index'] });
export type ConfigEditT = z.infer<typeof ConfigEdit>;

const oneOf = (b: { text?: unknown; form?: unknown; edit?: unknown }) => [b.text, b.form, b.edit].filter((x) => x !== undefined).length === 1;

/** A config edit: the whole YAML text, the common fields of the form, or one entry's form. */
export const ConfigBody = z
  .strictObject({
    text: z.string().max(512 * 1024).optional(),
    form: ConfigForm.optional(),
    edit: ConfigEdit.optional(),
    note: z.string().max(200).optional(),
  })
  .refine(oneOf, { message: 'give exactly one of text, form or edit' });

/** What the page would apply, for the diff against the running config shown before it does. */
export const DiffBody = z
  .strictObject({
    text: z.string().max(512 * 1024).optional(),
    form: ConfigForm.optional(),
    edit: ConfigEdit.optional(),
  })
  .refine(oneOf, { message: 'give exactly one of text, form or edit' });

/** "Read now" in the device form: a device not saved yet, read once through a running bus. */
export const ReadNowBody = z.strictObject({
  bus: z.string().min(1).max(63),
  unitId: z.number().int('must be a whole number 1..247').min(1, 'must be 1..247').max(247, 'must be 1..247'),
  profile: z.string().min(1).max(100),
});

/** Version 0 exists after converting an older store: the config as found before change 1. */
export const RollbackBody = z.strictObject({ version: z.number().int().min(0), note: z.string().max(200).optional() });

export const ReadBody = z
  .strictObject({
    register: z.enum(['holding', 'input', 'coil', 'discrete']),
    start: z.number().int().min(0).max(65535),
    count: z.number().int().min(1).max(2000),
  })
  .refine((b) => b.count <= (b.register === 'holding' || b.register === 'input' ? 125 : 2000), { message: 'at most 125 registers (2000 bits) per read', path: ['count'] })
  .refine((b) => b.start + b.count - 1 <= 65535, { message: 'range runs past address 65535', path: ['count'] });

export const WriteBody = z.strictObject({
  point: z.string().min(1).max(64),
  value: z.union([z.number(), z.boolean()]),
  confirm: z.literal(true, { error: 'must be true: a write changes a device' }),
});

/** A bus scan: unit ids as "1-247" or "1,3,10-20" (default all), probe timeout in ms. */
export const ScanBody = z.strictObject({
  units: z
    .string()
    .max(1000)
    .transform((text, ctx) => {
      try {
        return parseUnits(text);
      } catch (err) {
        if (!(err instanceof UnitsError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message });
        return z.NEVER;
      }
    })
    .optional(),
  timeoutMs: z.number().int().min(PROBE_TIMEOUT_RANGE.min).max(PROBE_TIMEOUT_RANGE.max).optional(),
});

/** One device to add (a unit found by a scan), in the columns of an import file. */
const ImportDevice = z.strictObject({
  id: z.string().max(200),
  name: z.string().max(200).optional(),
  facility: z.string().max(100),
  profile: z.string().max(200),
  bus: z.string().max(200),
  unitId: z.union([z.number(), z.string().max(20)]),
  pollMs: z.union([z.number(), z.string().max(20)]).optional(),
});

/** Devices to add (device-import.ts): a CSV file's text, or a list (the scan's "add as
 * device"); dryRun checks and answers the diff without applying. The CSV's own limit
 * (256 KiB) is checked after this, with a message naming it. */
export const DeviceImportBody = z
  .strictObject({
    csv: z.string().optional(),
    devices: z.array(ImportDevice).min(1).max(1000).optional(),
    dryRun: z.boolean().optional(),
    note: z.string().max(200).optional(),
  })
  .refine((b) => (b.csv === undefined) !== (b.devices === undefined), { message: 'give exactly one of csv or devices' });

/** A site profile upload (profile-upload.ts): the YAML text; replace an existing site profile
 * of the same id only when asked. */
export const ProfileUploadBody = z.strictObject({
  yaml: z.string().min(1, 'is required').max(256 * 1024, 'must be at most 256 KiB'),
  replace: z.boolean().optional(),
});
