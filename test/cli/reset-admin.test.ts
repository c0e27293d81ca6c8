// `community-gateway reset-admin` run as root on a state directory owned by the service user:
// the files it creates must stay readable by the daemon (same owner as the directory). The
// whole flow against a running daemon is in test/web/server.test.ts.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, assertBuilt } from '../helpers/cli.js';
import { tmpDir } from '../helpers/peers.js';

beforeAll(assertBuilt);

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('cli: reset-admin as root', () => {
  it('gives web-admin.json and audit.log to the owner of the state directory', () => {
    const dir = tmpDir('cgw-reset-');
    fs.chownSync(dir, 65534, 65534); // nobody: stands in for the service user
    const r = spawnSync(process.execPath, [CLI, 'reset-admin', '--state-dir', dir], { cwd: ROOT, input: 'Root-Reset-Password-1', encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    for (const f of ['web-admin.json', 'audit.log']) {
      const st = fs.statSync(path.join(dir, f));
      expect(st.uid, f).toBe(65534);
      expect(st.mode & 0o777, f).toBe(0o600);
    }
    const audit = fs.readFileSync(path.join(dir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(audit).toEqual([expect.objectContaining({ action: 'admin-reset', ip: 'local', user: expect.stringContaining('root'), detail: expect.objectContaining({ mode: 'password' }) })]);
  });
});
