import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/peers.js';

const UNIT = path.resolve('systemd/community-gateway.service');
/** The target for `systemd-analyze security --offline=yes`. */
const MAX_EXPOSURE = 3.0;

/** A copy of the unit whose ExecStart names this machine's node (verify checks the binary exists). */
function unitCopy(): string {
  const dir = tmpDir('cgw-unit-');
  const copy = path.join(dir, 'community-gateway.service');
  fs.writeFileSync(copy, fs.readFileSync(UNIT, 'utf8').replace('/usr/bin/node', process.execPath));
  return copy;
}

/** The unit's assignments of one key, in order ("Key=value" lines outside comments). */
function values(unit: string, key: string): string[] {
  return unit
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

/** `systemd-analyze security --offline=yes` on a copy: the overall exposure and the report. */
function security(): { exposure: number; report: string } {
  const r = spawnSync('systemd-analyze', ['security', '--offline=yes', unitCopy()], { encoding: 'utf8' });
  const report = `${r.stdout}\n${r.stderr}`;
  const m = /Overall exposure level for community-gateway\.service: (\d+(?:\.\d+)?)/.exec(report);
  return { exposure: m ? Number(m[1]) : Number.NaN, report };
}

describe('systemd unit', () => {
  it('passes systemd-analyze verify', () => {
    const copy = unitCopy();
    const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    // Lines about the absent user or the non-running systemd are not about the unit file.
    const problems = (r.stderr + r.stdout)
      .split('\n')
      .filter((l) => l.includes('community-gateway.service') && !/Failed to (connect|look up)|not running|user/i.test(l));
    expect(problems).toEqual([]);
    expect(r.status).toBe(0);
  });

  // Measured once at collection, so the number shows in the test's name.
  const measured = security();
  it(`has a systemd-analyze security exposure of at most ${MAX_EXPOSURE.toFixed(1)} (measured: ${measured.exposure})`, () => {
    expect(measured.exposure, `no "Overall exposure level" line in:\n${measured.report}`).not.toBeNaN();
    expect(measured.exposure, `exposure ${measured.exposure} > ${MAX_EXPOSURE}:\n${measured.report}`).toBeLessThanOrEqual(
      MAX_EXPOSURE,
    );
  });

  it('restarts on failure and runs the CLI with an explicit config', () => {
    const unit = fs.readFileSync(UNIT, 'utf8');
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node --max-semi-space-size=\d+ .*cli\.js run --config \/etc\/community-gateway\/config\.yaml$/m);
    expect(values(unit, 'ExecStart')).toEqual([
      '/usr/bin/node --max-semi-space-size=1 --heap-growing-percent=20 /opt/community-gateway/dist/src/cli.js run --config /etc/community-gateway/config.yaml',
    ]);
    expect(values(unit, 'WorkingDirectory')).toEqual(['/var/lib/community-gateway']);
  });

  it("logs JSON to the journal: stdout is journald's stream socket, never a terminal (src/log.ts picks pretty lines only on a TTY)", () => {
    const unit = fs.readFileSync(UNIT, 'utf8');
    for (const key of ['StandardOutput', 'StandardError']) expect(values(unit, key).filter((v) => v !== 'journal')).toEqual([]);
    for (const key of ['TTYPath', 'StandardInput']) expect(values(unit, key)).toEqual([]);
    expect(values(unit, 'Environment').filter((v) => v.startsWith('LOG_FORMAT=') && v !== 'LOG_FORMAT=json')).toEqual([]);
    expect(values(unit, 'ExecStart').join(' ')).not.toMatch(/--log-format(?! json)/);
  });

  it('is Type=notify with a watchdog, a start limit and a memory cap', () => {
    const unit = fs.readFileSync(UNIT, 'utf8');
    expect(values(unit, 'Type')).toEqual(['notify']);
    expect(values(unit, 'NotifyAccess')).toEqual(['main']);
    expect(values(unit, 'WatchdogSec')).toEqual(['30s']);
    expect(Number(values(unit, 'StartLimitBurst')[0])).toBeGreaterThan(0);
    expect(values(unit, 'StartLimitIntervalSec')).toHaveLength(1);
    // The start limit belongs in [Unit] (systemd ignores it in [Service] since v230 with a warning).
    const unitSection = unit.slice(unit.indexOf('[Unit]'), unit.indexOf('[Service]'));
    expect(unitSection).toMatch(/^StartLimitBurst=/m);
    expect(values(unit, 'MemoryMax')).toHaveLength(1);
    expect(values(unit, 'MemoryHigh')).toHaveLength(1);
  });

  it('has no capabilities, restricted address families and no MemoryDenyWriteExecute (V8 JIT)', () => {
    const unit = fs.readFileSync(UNIT, 'utf8');
    expect(values(unit, 'CapabilityBoundingSet')).toEqual(['']);
    expect(values(unit, 'AmbientCapabilities')).toEqual(['']);
    const families = values(unit, 'RestrictAddressFamilies').join(' ').split(/\s+/);
    // AF_NETLINK: getifaddrs (os.networkInterfaces) fails without it and the daemon exits at start.
    expect(families.sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
    expect(families).not.toContain('AF_PACKET');
    expect(values(unit, 'MemoryDenyWriteExecute')).toEqual([]);
    expect(values(unit, 'User')).toEqual(['community-gateway']);
    expect(values(unit, 'SupplementaryGroups')).toEqual(['dialout gpio']);
    expect(values(unit, 'ProtectSystem')).toEqual(['strict']);
    expect(values(unit, 'NoNewPrivileges')).toEqual(['yes']);
  });
});
