// `community-gateway sign-command`: the command it prints verifies with the key, carries the
// command, gateway, version and a 1 h default expiry; bad arguments name the option. Called
// in-process here (its CommandIo); the built CLI's dispatch is covered in
// remote-command.e2e.test.ts with platform push.
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { signCommandCommand } from '../../src/cli/sign-command.js';
import { CommandBundle, generateKeyPair, keyIdOf, verifySignature } from '../../src/remote/bundle.js';
import { tmpDir } from '../helpers/peers.js';

function io() {
  const out = { stdout: '', stderr: '' };
  const sink = (k: 'stdout' | 'stderr') =>
    new Writable({
      write(chunk: Buffer, _e, cb) {
        out[k] += chunk.toString();
        cb();
      },
    });
  return { out, io: { stdout: sink('stdout'), stderr: sink('stderr') } };
}

function keyFile() {
  const dir = tmpDir('cgw-signcmd-');
  const key = generateKeyPair();
  const file = path.join(dir, 'platform.pem');
  fs.writeFileSync(file, key.privatePem, { mode: 0o600 });
  return { dir, key, file };
}

const USAGE = 'sign-command ...';
const NOW = Date.parse('2026-12-02T06:30:00.400Z');

describe('sign-command', () => {
  it('prints a command that verifies, for the gateway, version and command given; expiry 1 h by default', () => {
    const k = keyFile();
    for (const name of ['inventory', 'status', 'diagnostics', 'restart'] as const) {
      const { out, io: cio } = io();
      expect(signCommandCommand(['--key', k.file, '--gateway', 'gw-t', '--version', '12', '--note', 'weekly check', name], USAGE, cio, NOW), out.stderr).toBe(0);
      const b = CommandBundle.parse(JSON.parse(out.stdout));
      expect(b).toMatchObject({ format: 'cgw-bundle/1', kind: 'command', command: name, gatewayId: 'gw-t', version: 12, note: 'weekly check', issuedAt: '2026-12-02T06:30:00Z', expiresAt: '2026-12-02T07:30:00Z', keyId: keyIdOf(k.key.publicText) });
      expect(verifySignature(b, [k.key.publicText])).toEqual({ ok: true, key: k.key.publicText });
      expect(out.stderr).toBe(`signed: command ${name} for gateway gw-t, version 12, keyId ${b.keyId}, expires 2026-12-02T07:30:00Z\n`);
    }
  });

  it('--out writes the file (0600), --expires takes a duration', () => {
    const k = keyFile();
    const file = path.join(k.dir, 'cmd.json');
    const { out, io: cio } = io();
    expect(signCommandCommand(['--key', k.file, '--gateway', 'gw-t', '--version', '3', '--expires', '10m', '--out', file, 'restart'], USAGE, cio, NOW)).toBe(0);
    expect(out.stdout).toBe('');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(CommandBundle.parse(JSON.parse(fs.readFileSync(file, 'utf8')))).toMatchObject({ command: 'restart', expiresAt: '2026-12-02T06:40:00Z' });
  });

  it('bad arguments: exit 2 naming the option or the COMMAND; a key that is not one: exit 1', () => {
    const k = keyFile();
    const run = (args: string[]) => {
      const { out, io: cio } = io();
      return { code: signCommandCommand(args, USAGE, cio, NOW), ...out };
    };
    expect(run(['--key', k.file, '--gateway', 'gw-t', '--version', '1', 'read-residents'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/COMMAND: must be one of inventory, status, diagnostics, restart/) });
    expect(run(['--key', k.file, '--gateway', 'gw-t', '--version', '1'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/COMMAND: exactly one COMMAND is needed/) });
    expect(run(['--key', k.file, '--gateway', 'gw-t', '--version', '1', 'status', 'restart'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/COMMAND: /) });
    expect(run(['--key', k.file, '--gateway', 'gw-t', '--version', '0', 'status'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--version: must be a whole number >= 1/) });
    expect(run(['--key', k.file, '--version', '1', 'status'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--gateway: is required/) });
    expect(run(['--key', k.file, '--gateway', 'gw-t', '--version', '1', '--expires', 'soon', 'status'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--expires: must be a duration/) });
    const notKey = path.join(k.dir, 'not.pem');
    fs.writeFileSync(notKey, 'hello\n');
    expect(run(['--key', notKey, '--gateway', 'gw-t', '--version', '1', 'status'])).toMatchObject({ code: 1, stdout: '', stderr: expect.stringMatching(/--key .*not a private key/) });
  });
});
