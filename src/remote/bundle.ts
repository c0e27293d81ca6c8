// The signed bundle the platform sends to change a gateway's configuration (docs/UPLINK.md
// "Remote configuration"). Ed25519 (RFC 8032) from node:crypto over a canonical JSON of every
// field but the signature: keys sorted at every level, no whitespace, UTF-8. The format is a
// contract with integrators: fields are only ever added.
import crypto from 'node:crypto';
import { z } from 'zod';

export const BUNDLE_FORMAT = 'cgw-bundle/1';
/** A bundle is one MQTT message; the config file itself is capped at 512 KiB on the page too. */
export const MAX_BUNDLE_BYTES = 1024 * 1024;

const sha256 = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" and 64 hex digits');
const iso = z.string().refine((s) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(s) && !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 UTC time, e.g. 2026-12-02T08:00:00Z');

/** What the signature covers, for a new site config (kind "config"). */
export const ConfigPayload = z.strictObject({
  format: z.literal(BUNDLE_FORMAT),
  kind: z.literal('config'),
  gatewayId: z.string().min(1).max(63),
  /** Higher than any version this gateway applied before: no replay, no downgrade. */
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  /** sha256 of the config text the bundle was made against; null with override only. */
  base: sha256.nullable(),
  /** Apply even when the running config is not `base` (a technician changed it on site). */
  override: z.boolean().default(false),
  issuedAt: iso,
  expiresAt: iso,
  note: z.string().max(200).default(''),
  /** The site config file, as text. */
  config: z.string().min(1).max(512 * 1024),
  /** Site profiles, by file name (stored in the site profiles folder beside the config). */
  profiles: z.record(z.string().regex(/^[a-z0-9][a-z0-9-]*\.ya?ml$/, 'must be a profile file name: lower-case, digits, dashes, .yaml'), z.string().max(256 * 1024)).default({}),
});
export type ConfigPayload = z.infer<typeof ConfigPayload>;

/** The few things a platform may ask of a gateway (docs/UPLINK.md "Remote commands"); none
 * reads personal data. */
export const REMOTE_COMMANDS = ['inventory', 'status', 'diagnostics', 'restart'] as const;
export type RemoteCommand = (typeof REMOTE_COMMANDS)[number];

/** What the signature covers, for a command (kind "command"): the same envelope, key, target,
 * expiry and the same version counter as a config bundle, so a command cannot be replayed
 * either; no config, no base (a command does not depend on the running config). */
export const CommandPayload = z.strictObject({
  format: z.literal(BUNDLE_FORMAT),
  kind: z.literal('command'),
  gatewayId: z.string().min(1).max(63),
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  issuedAt: iso,
  expiresAt: iso,
  note: z.string().max(200).default(''),
  command: z.enum(REMOTE_COMMANDS),
});
export type CommandPayload = z.infer<typeof CommandPayload>;

/** What the signature covers. A union on `kind`: a config bundle is exactly what it was before
 * commands existed, so its canonical bytes and signatures are unchanged. */
export const BundlePayload = z.discriminatedUnion('kind', [ConfigPayload, CommandPayload]);
export type BundlePayload = z.infer<typeof BundlePayload>;

const signed = {
  /** keyId of the signing key (see keyIdOf). */
  keyId: z.string().regex(/^[0-9a-f]{16}$/, 'must be 16 hex digits'),
  /** Ed25519 signature of canonical(payload), base64. */
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'must be a base64 Ed25519 signature (64 bytes)'),
};
export const ConfigBundle = ConfigPayload.extend(signed);
export type ConfigBundle = z.infer<typeof ConfigBundle>;
export const CommandBundle = CommandPayload.extend(signed);
export type CommandBundle = z.infer<typeof CommandBundle>;
export const Bundle = z.discriminatedUnion('kind', [ConfigBundle, CommandBundle]);
export type Bundle = z.infer<typeof Bundle>;

/** JSON with sorted keys at every level and no whitespace: the bytes that are signed. */
export function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const o = value as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
    .join(',')}}`;
}

/** "sha256:<hex>" of a config text, as bundles name their base and the status names the running one. */
export function configHash(text: string): string {
  return `sha256:${crypto.createHash('sha256').update(text, 'utf8').digest('hex')}`;
}

/** A public key as the site config lists it: "ed25519:<base64 of the 32 raw bytes>". */
export const PUBLIC_KEY = /^ed25519:[A-Za-z0-9+/]{43}=$/;

export function publicKeyText(key: crypto.KeyObject): string {
  const jwk = key.export({ format: 'jwk' }) as { x: string };
  return `ed25519:${Buffer.from(jwk.x, 'base64url').toString('base64')}`;
}

export function publicKeyOf(text: string): crypto.KeyObject {
  if (!PUBLIC_KEY.test(text)) throw new Error(`not an Ed25519 public key "ed25519:<base64>": ${text.slice(0, 60)}`);
  const raw = Buffer.from(text.slice('ed25519:'.length), 'base64');
  return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

/** The first 16 hex digits of sha256 over the raw public key: names a key without quoting it. */
export function keyIdOf(publicText: string): string {
  const raw = Buffer.from(publicText.slice('ed25519:'.length), 'base64');
  return crypto.createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

export function generateKeyPair(): { privatePem: string; publicText: string } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  return { privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), publicText: publicKeyText(publicKey) };
}

export function signBundle(payload: ConfigPayload, privatePem: string): ConfigBundle;
export function signBundle(payload: CommandPayload, privatePem: string): CommandBundle;
export function signBundle(payload: BundlePayload, privatePem: string): Bundle;
export function signBundle(payload: BundlePayload, privatePem: string): Bundle {
  const key = crypto.createPrivateKey(privatePem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the key is ${key.asymmetricKeyType ?? 'not asymmetric'}, not Ed25519`);
  const p = BundlePayload.parse(payload);
  const signature = crypto.sign(null, Buffer.from(canonical(p), 'utf8'), key).toString('base64');
  return { ...p, keyId: keyIdOf(publicKeyText(crypto.createPublicKey(key))), signature };
}

export type SignatureVerdict = { ok: true; key: string } | { ok: false; reason: 'unknown-key' | 'bad-signature' };

/** Checks the signature against the trusted keys (by keyId, then the bytes). */
export function verifySignature(b: Bundle, trustedKeys: readonly string[]): SignatureVerdict {
  const key = trustedKeys.find((k) => keyIdOf(k) === b.keyId);
  if (!key) return { ok: false, reason: 'unknown-key' };
  const { keyId: _k, signature, ...payload } = b;
  const ok = crypto.verify(null, Buffer.from(canonical(payload), 'utf8'), publicKeyOf(key), Buffer.from(signature, 'base64'));
  return ok ? { ok: true, key } : { ok: false, reason: 'bad-signature' };
}
