// Runs the built CLI as a user would: `node dist/src/cli.js ...` (tsc builds it before the tests).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const CLI = path.join(ROOT, 'dist/src/cli.js');

export function assertBuilt(): void {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: build with "npx tsc -p ." before running the CLI tests`);
}

export function cli(args: string[], timeoutMs = 20_000) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, LOG_LEVEL: 'warn' } });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}
