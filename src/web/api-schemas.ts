// Every web request body, validated once at the edge (zod, strict: unknown fields are refused).
import { z } from 'zod';

export const PasswordBody = z.strictObject({ password: z.string().min(1, 'is required').max(256) });

const FORM_KEY = /^(site\.name|uplink\.url|uplink\.windowSeconds|privacy\.k|log\.level|devices\[\d{1,4}\]\.(pollMs|name))$/;
export const ConfigForm = z.record(z.string(), z.union([z.string().max(1000), z.number(), z.null()])).superRefine((form, ctx) => {
  for (const k of Object.keys(form)) if (!FORM_KEY.test(k)) ctx.addIssue({ code: 'custom', path: [k], message: 'is not an editable form field' });
});

/** A config edit: the whole YAML text, or the common fields of the form. */
export const ConfigBody = z
  .strictObject({
    text: z.string().max(512 * 1024).optional(),
    form: ConfigForm.optional(),
    note: z.string().max(200).optional(),
  })
  .refine((b) => (b.text === undefined) !== (b.form === undefined), { message: 'give exactly one of text or form' });

export const RollbackBody = z.strictObject({ version: z.number().int().positive() });

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
