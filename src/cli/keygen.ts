// `community-gateway keygen --out FILE`: the platform's signing key for remote configuration
// (docs/UPLINK.md "Remote configuration: bundles for integrators"). The private key stays on the
// signing machine; the public key goes into each site config's remote.trustedKeys.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { generateKeyPair, keyIdOf } from '../remote/bundle.js';
import { argProblems, type CommandIo } from './args.js';
import { writePrivateFile } from './private-file.js';

const KeygenArgs = z.strictObject({
  out: z.string({ error: 'is required: the file to write the private key to' }).min(1, 'is required: the file to write the private key to'),
  force: z.boolean().default(false),
});


/** Exit code: 0 written, 1 not written (exists, cannot write), 2 bad arguments. */
export function keygenCommand(argv: string[], usage: string, io: CommandIo = { stdout: process.stdout, stderr: process.stderr }): number {
  const fail = (code: number, msg: string) => {
    io.stderr.write(`keygen: ${msg}\n`);
    return code;
  };
  let raw;
  try {
    raw = parseArgs({ args: argv, allowPositionals: false, options: { out: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (err) {
    return fail(2, `${(err as Error).message}\n\nUsage: community-gateway ${usage}`);
  }
  if (raw.help) {
    io.stdout.write(`Usage: community-gateway ${usage}\n`);
    return 0;
  }
  const { help: _h, ...rest } = raw;
  const parsed = KeygenArgs.safeParse(rest);
  if (!parsed.success) return fail(2, `${argProblems(parsed.error).join('; ')}\n\nUsage: community-gateway ${usage}`);
  const { out, force } = parsed.data;
  if (!force && fs.existsSync(out)) return fail(1, `${out} exists: not replaced (a key in use would be lost; --force replaces it)`);
  const key = generateKeyPair();
  try {
    writePrivateFile(out, key.privatePem, force);
  } catch (err) {
    return fail(1, `cannot write ${out}: ${(err as Error).message}`);
  }
  const keyId = keyIdOf(key.publicText);
  io.stderr.write(`${out}: Ed25519 private key written (mode 0600). Keep it on the signing machine only; every gateway that lists its public key obeys bundles it signs.\n`);
  io.stdout.write(`remote: { trustedKeys: ["${key.publicText}"] }  # keyId ${keyId}\n`);
  return 0;
}
