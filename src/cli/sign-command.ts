// `community-gateway sign-command`: makes a signed remote command (src/remote/bundle.ts, kind
// "command") for one gateway: inventory, status, diagnostics or restart. A separate command
// rather than an option of sign-config: a command has no config, no base and no profiles, so
// none of sign-config's checks and options apply, and a shorter default expiry does.
import crypto from 'node:crypto';
import { z } from 'zod';
import { BUNDLE_FORMAT, CommandPayload, MAX_BUNDLE_BYTES, REMOTE_COMMANDS, signBundle, type CommandBundle } from '../remote/bundle.js';
import { emitJson, parseCommand, isoUtc, type CommandIo } from './args.js';
import { expiryOf, readText, SignError } from './sign-config.js';

const CommandArgs = z.strictObject({
  key: z.string({ error: 'is required: the private key file (community-gateway keygen)' }).min(1),
  gateway: z.string({ error: 'is required: the gateway id the command is for' }).min(1).max(63),
  version: z
    .string({ error: 'is required: the version, higher than any bundle or command the gateway took' })
    .regex(/^[1-9]\d{0,15}$/, 'must be a whole number >= 1')
    .transform(Number)
    .refine(Number.isSafeInteger, 'is too large'),
  // An hour: a restart queued for a gateway offline for a day should not surprise a technician.
  expires: z.string().default('1h'),
  note: z.string().max(200, 'must be at most 200 characters').default(''),
  out: z.string().min(1).optional(),
  commands: z.tuple([z.enum(REMOTE_COMMANDS, { error: `must be one of ${REMOTE_COMMANDS.join(', ')}` })], { error: `exactly one COMMAND is needed: ${REMOTE_COMMANDS.join(', ')}` }),
});
type CommandArgs = z.infer<typeof CommandArgs>;

/** Signs; throws a SignError naming the problem. */
export function makeCommand(a: CommandArgs, now: number): CommandBundle {
  const issued = Math.floor(now / 1000) * 1000;
  const expiresAt = expiryOf(a.expires, issued);
  const keyText = readText(a.key, '--key');
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyText);
  } catch (err) {
    throw new SignError(1, [`--key ${a.key}: not a private key (an Ed25519 PKCS#8 PEM file from community-gateway keygen): ${(err as Error).message}`]);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new SignError(1, [`--key ${a.key}: the key is ${key.asymmetricKeyType ?? 'not asymmetric'}, not Ed25519`]);
  const payload = CommandPayload.safeParse({ format: BUNDLE_FORMAT, kind: 'command', gatewayId: a.gateway, version: a.version, issuedAt: isoUtc(issued), expiresAt, note: a.note, command: a.commands[0] });
  if (!payload.success) throw new SignError(1, payload.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  const b = signBundle(payload.data, keyText);
  if (Buffer.byteLength(JSON.stringify(b)) > MAX_BUNDLE_BYTES) throw new SignError(1, ['the command is larger than a gateway takes']);
  return b;
}

/** Exit code: 0 signed, 1 refused (key), 2 bad arguments. */
export function signCommandCommand(argv: string[], usage: string, io: CommandIo = { stdout: process.stdout, stderr: process.stderr }, now = Date.now()): number {
  const fail = (code: number, msg: string) => {
    io.stderr.write(`sign-command: ${msg}\n`);
    return code;
  };
  const parsed = parseCommand(
    'sign-command',
    argv,
    usage,
    io,
    {
      key: { type: 'string' },
      gateway: { type: 'string' },
      version: { type: 'string' },
      expires: { type: 'string' },
      note: { type: 'string' },
      out: { type: 'string' },
    },
    (values, positionals) => CommandArgs.safeParse({ ...values, commands: positionals }),
  );
  if (!parsed.ok) return parsed.code;
  const args = parsed.args;
  let b: CommandBundle;
  try {
    b = makeCommand(args, now);
  } catch (err) {
    if (err instanceof SignError) return fail(err.code, err.problems.join('\n'));
    return fail(1, (err as Error).message);
  }
  const json = `${JSON.stringify(b, null, 2)}\n`;
  const unwritten = emitJson(json, args.out, io);
  if (unwritten) return fail(1, unwritten);
  io.stderr.write(`signed: command ${b.command} for gateway ${b.gatewayId}, version ${b.version}, keyId ${b.keyId}, expires ${b.expiresAt}${args.out !== undefined ? ` -> ${args.out}` : ''}\n`);
  return 0;
}
