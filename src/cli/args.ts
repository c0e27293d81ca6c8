// Command-line arguments of the remote-configuration commands (keygen, sign-config, platform
// push): node:util parseArgs splits them, a zod schema per command checks them once, and a
// problem names the option (--version: must be a whole number >= 1).
import type { z } from 'zod';

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
