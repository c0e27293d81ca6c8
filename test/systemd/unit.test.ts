import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/peers.js';

const UNIT = path.resolve('systemd/community-gateway.service');

describe('systemd unit', () => {
  it('passes systemd-analyze verify', () => {
    // verify checks that ExecStart's binary exists; point it at this machine's node.
    const dir = tmpDir('cgw-unit-');
    const copy = path.join(dir, 'community-gateway.service');
    fs.writeFileSync(copy, fs.readFileSync(UNIT, 'utf8').replace('/usr/bin/node', process.execPath));
    const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    // Lines about the absent user or the non-running systemd are not about the unit file.
    const problems = (r.stderr + r.stdout)
      .split('\n')
      .filter((l) => l.includes('community-gateway.service') && !/Failed to (connect|look up)|not running|user/i.test(l));
    expect(problems).toEqual([]);
    expect(r.status).toBe(0);
  });

  it('restarts on failure and runs the CLI with an explicit config', () => {
    const unit = fs.readFileSync(UNIT, 'utf8');
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node --max-semi-space-size=1 .*cli\.js run --config \/etc\/community-gateway\/config\.yaml$/m);
  });
});
