// `community-gateway hash-password` as a user runs it: piped (the README's `echo -n pw |`) and
// typed at a terminal (a real pty from python3's pty module: no echo, asked twice), with the
// password policy applied either way.
import { spawnSync } from 'node:child_process';
import argon2 from 'argon2';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, assertBuilt } from '../helpers/cli.js';

beforeAll(assertBuilt);

const GOOD = 'Broker-Account-2026';

function piped(input: string, args: string[] = []) {
  return spawnSync(process.execPath, [CLI, 'hash-password', ...args], { cwd: ROOT, input, encoding: 'utf8', timeout: 20_000 });
}

/** Runs hash-password on a pty, typing each of `lines` after the matching prompt. */
function onTerminal(lines: string[]): { status: number; output: string } {
  const script = `
import os, pty, sys, json
lines = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], [sys.argv[2], sys.argv[3], 'hash-password'])
out = b''
def read_until(marker):
    global out
    while marker not in out:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            return False
        if not chunk:
            return False
        out += chunk
    return True
for i, line in enumerate(lines):
    if not read_until((b'again: ' if i == 1 else b'Password: ')):
        break
    os.write(fd, line.encode() + b'\\r')
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(json.dumps({'status': os.waitstatus_to_exitcode(status), 'output': out.decode('utf8', 'replace')}))
`;
  const r = spawnSync('/usr/bin/python3', ['-c', script, JSON.stringify(lines), process.execPath, CLI], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`pty helper failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { status: number; output: string };
}

describe('cli: hash-password', () => {
  it('piped: prints an argon2id hash of a policy-compliant password', async () => {
    const r = piped(GOOD);
    expect(r.status, r.stderr).toBe(0);
    const hash = r.stdout.trim();
    expect(hash).toMatch(/^\$argon2id\$/);
    expect(await argon2.verify(hash, GOOD)).toBe(true);
    // A trailing newline (plain `echo`) is not part of the password.
    expect(await argon2.verify(piped(`${GOOD}\n`).stdout.trim(), GOOD)).toBe(true);
  });

  it('piped: refuses weak, common and user-name passwords, naming the rule', () => {
    for (const [pw, why] of [
      ['short-1A', /at least 12 characters/],
      ['password1234', /at least 3 of/],
      ['Raspberry-2026', /common or default/],
      ['12345678901234', /common or default/],
    ] as const) {
      const r = piped(pw);
      expect(r.status, pw).toBe(1);
      expect(r.stderr, pw).toMatch(why);
      expect(r.stdout).toBe('');
    }
    const user = piped('Canteen-App-2026-x', ['--username', 'canteen-app']);
    expect(user.status).toBe(1);
    expect(user.stderr).toContain('must not contain the user name "canteen-app"');
  });

  it('on a terminal: asks twice without echo, refuses a mismatch', async () => {
    const ok = onTerminal([GOOD, GOOD]);
    expect(ok.status, ok.output).toBe(0);
    expect(ok.output).toContain('Password: ');
    expect(ok.output).toContain('Password again: ');
    expect(ok.output).not.toContain(GOOD); // never echoed
    const hash = /\$argon2id\$\S+/.exec(ok.output)?.[0];
    expect(hash && (await argon2.verify(hash, GOOD))).toBe(true);
    const differ = onTerminal([GOOD, `${GOOD}x`]);
    expect(differ.status).toBe(1);
    expect(differ.output).toContain('the two entries differ');
    expect(differ.output).not.toMatch(/\$argon2id\$/);
  });
});
