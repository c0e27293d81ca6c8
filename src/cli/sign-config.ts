// `community-gateway sign-config`: makes a signed remote-configuration bundle (src/remote/bundle.ts)
// from a site config and its site profiles, on the platform's signing machine. The config is
// checked first with the parser check-config and the gateway use, so a bundle that the gateway
// would refuse as `invalid` is never signed.
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { checkProfileFile, loadProfileSet, ProfileError, type ProfileSet } from '../config/profiles.js';
import { parseSiteConfig } from '../config/site-config.js';
import { fixedFieldChanges } from '../config/apply-mode.js';
import { BUNDLE_FORMAT, ConfigPayload, configHash, keyIdOf, MAX_BUNDLE_BYTES, publicKeyText, signBundle, type Bundle } from '../remote/bundle.js';
import { emitJson, parseCommand, durationMs, isoUtc, type CommandIo } from './args.js';
import crypto from 'node:crypto';

const SHA256 = /^sha256:[0-9a-f]{64}$/;

const SignArgs = z
  .strictObject({
    key: z.string({ error: 'is required: the private key file (community-gateway keygen)' }).min(1),
    gateway: z.string({ error: 'is required: the gateway id the bundle is for' }).min(1).max(63),
    version: z
      .string({ error: 'is required: the bundle version, higher than any the gateway applied' })
      .regex(/^[1-9]\d{0,15}$/, 'must be a whole number >= 1')
      .transform(Number)
      .refine(Number.isSafeInteger, 'is too large'),
    'base-file': z.string().min(1).optional(),
    base: z.string().regex(SHA256, 'must be "sha256:" and 64 hex digits (the status message\'s config.hash)').optional(),
    override: z.boolean().default(false),
    expires: z.string().default('24h'),
    note: z.string().max(200, 'must be at most 200 characters').default(''),
    out: z.string().min(1).optional(),
    files: z.array(z.string().min(1)).min(1, 'CONFIG.yaml is required'),
  })
  .superRefine((a, ctx) => {
    if (a['base-file'] !== undefined && a.base !== undefined) ctx.addIssue({ code: 'custom', path: ['base'], message: 'give --base-file or --base, not both' });
    if (a['base-file'] === undefined && a.base === undefined && !a.override) {
      ctx.addIssue({ code: 'custom', path: ['base-file'], message: 'the config the bundle replaces is needed: --base-file RUNNING.yaml, --base sha256:..., or --override (apply whatever runs there)' });
    }
  });
type SignArgs = z.infer<typeof SignArgs>;

/** Problems the signing machine cannot judge: files named in the config live on the box (the
 * uplink's and local broker's TLS files). check-config reports them on a laptop too; here they
 * are warnings, and the gateway refuses the bundle (`invalid`) if a file is missing there. */
const BOX_FILE = /^(uplink\.(caFile|certFile|keyFile)|localBroker\.tls\.\w+|web\.tls\.\w+): file not found: /;

export class SignError extends Error {
  constructor(
    readonly code: 1 | 2,
    readonly problems: string[],
  ) {
    super(problems.join('\n  '));
  }
}

export interface Signed {
  bundle: Bundle;
  warnings: string[];
  summary: string;
}

/** The expiry as an ISO time: a duration from now ("24h") or a time ("2026-12-03T08:00:00Z",
 * an offset such as +08:00 is converted to UTC). */
export function expiryOf(text: string, now: number): string {
  const d = durationMs(text);
  let at: number;
  if (d !== undefined) at = now + d;
  else if (/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,3})?)?(Z|[+-]\d\d:\d\d)$/.test(text) && !Number.isNaN(Date.parse(text))) at = Date.parse(text);
  else throw new SignError(2, [`--expires: must be a duration (90s, 30m, 24h, 7d) or an ISO time with its zone (2026-12-03T08:00:00Z), got "${text}"`]);
  if (at <= now + 1000) throw new SignError(2, [`--expires: ${isoUtc(at)} is not in the future`]);
  return isoUtc(at);
}

export function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new SignError(1, [`${what} ${file}: cannot read: ${(err as Error).message}`]);
  }
}

/** Shipped profiles, the site's drivers/ beside CONFIG (as check-config loads them) and the
 * bundle's profiles on top: they are what the gateway will have in its site folder. */
function profilesFor(configFile: string, profileFiles: string[]): { set: ProfileSet; texts: Record<string, string> } {
  let set: ProfileSet;
  try {
    set = loadProfileSet({ configFile });
  } catch (err) {
    throw new SignError(1, [(err as Error).message]);
  }
  const problems: string[] = [];
  const texts: Record<string, string> = {};
  for (const f of profileFiles) {
    const name = path.basename(f);
    if (texts[name] !== undefined) {
      problems.push(`${f}: a profile named ${name} is given twice`);
      continue;
    }
    try {
      const { profile } = checkProfileFile(f);
      texts[name] = fs.readFileSync(f, 'utf8');
      set.set(profile.id, profile);
      set.origins.set(profile.id, { source: 'site', file: f });
    } catch (err) {
      problems.push(err instanceof ProfileError ? err.message : `${f}: ${(err as Error).message}`);
    }
  }
  if (problems.length) throw new SignError(1, problems);
  return { set, texts };
}

/** Checks everything and signs; throws a SignError listing every problem found. */
export function makeBundle(a: SignArgs, now: number): Signed {
  const warnings: string[] = [];
  const [configFile, ...profileFiles] = a.files as [string, ...string[]];
  // Whole seconds: a duration counts from the issue time the bundle states.
  const issued = Math.floor(now / 1000) * 1000;
  const expiresAt = expiryOf(a.expires, issued);
  const keyText = readText(a.key, '--key');
  let keyObject: crypto.KeyObject;
  try {
    keyObject = crypto.createPrivateKey(keyText);
  } catch (err) {
    throw new SignError(1, [`--key ${a.key}: not a private key (an Ed25519 PKCS#8 PEM file from community-gateway keygen): ${(err as Error).message}`]);
  }
  if (keyObject.asymmetricKeyType !== 'ed25519') throw new SignError(1, [`--key ${a.key}: the key is ${keyObject.asymmetricKeyType ?? 'not asymmetric'}, not Ed25519`]);
  const mode = fs.statSync(a.key).mode & 0o777;
  if (mode & 0o077) warnings.push(`--key ${a.key} is readable by group or others (mode ${mode.toString(8)}): chmod 600 it`);
  const publicText = publicKeyText(crypto.createPublicKey(keyObject));

  const text = readText(configFile, 'CONFIG');
  const { set, texts } = profilesFor(configFile, profileFiles);
  const r = parseSiteConfig(text, set);
  if (!r.ok) {
    const fatal = r.errors.filter((e) => !BOX_FILE.test(e));
    if (fatal.length) throw new SignError(1, [`${configFile}: invalid configuration, not signed:`, ...fatal.map((e) => `  ${e}`)]);
    // Only files of the box are missing here: the rest of the config checked, and parseSiteConfig
    // reports those with every other problem, so nothing else is hidden.
    warnings.push(...r.errors.map((e) => `${configFile}: ${e} (on this machine; the gateway checks it when it applies the bundle)`));
  } else {
    warnings.push(...r.warnings.map((w) => `${configFile}: ${w}`));
    // A site profile found beside CONFIG but not given: the gateway must have it already.
    const given = new Set(Object.keys(texts).map((n) => n.replace(/\.ya?ml$/, '')));
    const missing = [...new Set(r.config.devices.map((d) => d.profile))].filter((id) => set.origins.get(id)?.source === 'site' && !given.has(id));
    for (const id of missing) warnings.push(`site profile ${id} (${set.origins.get(id)!.file}) is used but not in the bundle: the gateway must already have it in its drivers/ folder, or the bundle is refused (invalid)`);
  }
  // The YAML read plainly (it parsed above): site.gatewayId when only box files were missing,
  // and `remote`, whose schema is the gateway's.
  const raw = (parseYaml(text) ?? {}) as { site?: { gatewayId?: unknown }; remote?: { trustedKeys?: unknown } | null };
  const configGateway = r.ok ? r.config.site.gatewayId : raw.site?.gatewayId;
  if (configGateway !== a.gateway) {
    throw new SignError(1, [`${configFile}: site.gatewayId is "${String(configGateway)}", the bundle is for --gateway ${a.gateway}: a gateway would take another's identity`]);
  }
  const remote = raw.remote;
  if (remote === undefined || remote === null) warnings.push(`${configFile} has no remote section: once applied, the gateway turns remote configuration off and only a change on site turns it on again`);
  else if (!(Array.isArray(remote.trustedKeys) && remote.trustedKeys.includes(publicText))) warnings.push(`${configFile}: remote.trustedKeys does not list this key (keyId ${keyIdOf(publicText)}): once applied, the gateway refuses further bundles signed with it`);

  const baseFile = a['base-file'];
  const baseText = baseFile !== undefined ? readText(baseFile, '--base-file') : undefined;
  const base = baseText !== undefined ? configHash(baseText) : (a.base ?? null);
  // With the running file at hand, the gateway's one check against it can be made here too:
  // fields that cannot change while the daemon runs (apply-mode.ts).
  if (baseText !== undefined && r.ok) {
    const running = parseSiteConfig(baseText, set);
    if (!running.ok) warnings.push(`--base-file ${baseFile} does not load here (${running.errors[0]}): the fields fixed while the gateway runs were not compared`);
    else {
      const fixed = fixedFieldChanges(running.config, r.config);
      if (fixed.length) throw new SignError(1, [`${configFile}: changes what a running gateway cannot change, not signed:`, ...fixed.map((f) => `  ${f.path}: ${f.message}`)]);
    }
  }
  const payload = ConfigPayload.safeParse({
    format: BUNDLE_FORMAT,
    kind: 'config',
    gatewayId: a.gateway,
    version: a.version,
    base,
    override: a.override,
    issuedAt: isoUtc(issued),
    expiresAt,
    note: a.note,
    config: text,
    profiles: texts,
  });
  if (!payload.success) throw new SignError(1, payload.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  const bundle = signBundle(payload.data, keyText);
  const bytes = Buffer.byteLength(JSON.stringify(bundle));
  if (bytes > MAX_BUNDLE_BYTES) throw new SignError(1, [`the bundle is ${bytes} bytes, more than a gateway takes (${MAX_BUNDLE_BYTES})`]);
  const baseShown = base === null ? 'none' : `${base.slice(0, 19)}…${baseFile !== undefined ? ` (${baseFile})` : ''}`;
  const summary = `gateway ${bundle.gatewayId}, version ${bundle.version}, keyId ${bundle.keyId}, expires ${bundle.expiresAt}, base ${baseShown}${bundle.override ? ', override' : ''}, ${Object.keys(texts).length} profile(s), ${bytes} bytes`;
  return { bundle, warnings, summary };
}

/** Exit code: 0 signed, 1 refused (config, key or files), 2 bad arguments. */
export function signConfigCommand(argv: string[], usage: string, io: CommandIo = { stdout: process.stdout, stderr: process.stderr }, now = Date.now()): number {
  const fail = (code: number, msg: string) => {
    io.stderr.write(`sign-config: ${msg}\n`);
    return code;
  };
  const parsed = parseCommand(
    'sign-config',
    argv,
    usage,
    io,
    {
      key: { type: 'string' },
      gateway: { type: 'string' },
      version: { type: 'string' },
      'base-file': { type: 'string' },
      base: { type: 'string' },
      override: { type: 'boolean' },
      expires: { type: 'string' },
      note: { type: 'string' },
      out: { type: 'string' },
    },
    (values, positionals) => SignArgs.safeParse({ ...values, files: positionals }),
  );
  if (!parsed.ok) return parsed.code;
  const args = parsed.args;
  let signed: Signed;
  try {
    signed = makeBundle(args, now);
  } catch (err) {
    if (err instanceof SignError) return fail(err.code, err.problems.join('\n'));
    return fail(1, (err as Error).message);
  }
  for (const w of signed.warnings) io.stderr.write(`sign-config: warning: ${w}\n`);
  const json = `${JSON.stringify(signed.bundle, null, 2)}\n`;
  const unwritten = emitJson(json, args.out, io);
  if (unwritten) return fail(1, unwritten);
  io.stderr.write(`signed: ${signed.summary}${args.out !== undefined ? ` -> ${args.out}` : ''}\n`);
  return 0;
}
