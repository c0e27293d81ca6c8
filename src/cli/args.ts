// Command-line arguments of the remote-configuration commands (keygen, sign-config, platform
// push): node:util parseArgs splits them, a zod schema per command checks them once, and a
// problem names the option (--version: must be a whole number >= 1).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { z } from 'zod';
import { writePrivateFile } from './private-file.js';

export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** One line per problem, named by the option it is about. */
export function argProblems(error: z.ZodError): string[] {
  return error.issues.map((i) => {
    const name = i.path.length ? String(i.path[0]) : '';
    if (name === 'files') return `FILE: ${i.message}`;
    if (name === 'commands') return `COMMAND: ${i.message}`;
    return name ? `--${name}: ${i.message}` : i.message;
  });
}

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "90s", "30m", "24h", "7d" in milliseconds; undefined for anything else. */
export function durationMs(text: string): number | undefined {
  const m = /^(\d{1,6})(s|m|h|d)$/.exec(text);
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}

/** An ISO 8601 time as bundles carry it: UTC, "Z", whole seconds unless there were fractions. */
export function isoUtc(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

/** parseArgs, --help, and the zod check of one command, with the same messages for all of
 * them: the checked arguments, or the exit code to return (0 for --help, 2 for bad ones). */
export function parseCommand<T>(
  name: string,
  argv: string[],
  usage: string,
  io: CommandIo,
  options: NonNullable<ParseArgsConfig['options']>,
  check: (values: Record<string, unknown>, positionals: string[]) => z.ZodSafeParseResult<T>,
): { ok: true; args: T } | { ok: false; code: number } {
  const fail = (msg: string) => {
    io.stderr.write(`${name}: ${msg}\n\nUsage: community-gateway ${usage}\n`);
    return { ok: false as const, code: 2 };
  };
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...options, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    return fail((err as Error).message);
  }
  if (values.help) {
    io.stdout.write(`Usage: community-gateway ${usage}\n`);
    return { ok: false, code: 0 };
  }
  const { help: _h, ...rest } = values;
  const r = check(rest, positionals);
  return r.success ? { ok: true, args: r.data } : fail(argProblems(r.error).join('\n  '));
}

/** A signed bundle's JSON to `out` (0600: it may carry the whole site config) or stdout; an
 * error message when the file cannot be written. */
export function emitJson(json: string, out: string | undefined, io: CommandIo): string | null {
  if (out === undefined) {
    io.stdout.write(json);
    return null;
  }
  try {
    writePrivateFile(out, json, true);
    return null;
  } catch (err) {
    return `cannot write ${out}: ${(err as Error).message}`;
  }
}
