import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { tmpDir } from '../helpers/peers.js';
import { baseConfig } from '../helpers/gateway.js';

const CLI = path.resolve('dist/src/cli.js');

function report(cfg: Record<string, unknown>, json = true) {
  const file = path.join(tmpDir('cgw-pr-'), 'site.yaml');
  fs.writeFileSync(file, stringify(cfg));
  return spawnSync(process.execPath, [CLI, 'privacy-report', '--config', file, ...(json ? ['--json'] : [])], { encoding: 'utf8' });
}

describe('privacy report', () => {
  const cfg = baseConfig({
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 5020 }],
    devices: [
      { id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 1 },
      // A site decision: this door opens a one-person flat, so its contact counts as personal.
      { id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 2, privacy: { entrance_door: 'personal' } },
    ],
    privacy: { k: 7, epsilon: 0.5 },
  });

  it('lists every point with its class and what leaves the site', () => {
    const r = report(cfg);
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { k: number; points: Record<string, unknown>[]; dailyBudget: string };
    expect(rep.k).toBe(7);
    expect(rep.points).toHaveLength(10 + 6);
    const by = (d: string, p: string) => rep.points.find((x) => x.device === d && x.point === p)!;
    expect(by('kiosk-1', 'resident_card_uid')).toMatchObject({ privacy: 'identifier', localBroker: 'never published', leaves: 'nothing leaves the site' });
    expect(by('kiosk-1', 'systolic_bp').leaves).toMatch(/>= 7 distinct residents.*Laplace noise, epsilon 0\.5.*never min, max or a single value/);
    expect(by('kiosk-1', 'measurement_count').leaves).toMatch(/count, mean, min, max, sum, last, increase/);
    expect(by('io-1', 'entrance_door')).toMatchObject({ privacy: 'personal', profileClass: 'public', overridden: true, leaves: 'nothing leaves the site' });
    // 5 measures x 3 noisy releases x 0.5
    expect(rep.dailyBudget).toMatch(/epsilon 0\.5 x 15 = 7\.5 per window/);
    // Where each profile came from (no site folder beside this config: both shipped).
    expect((rep as unknown as { profiles: unknown }).profiles).toEqual([
      { id: 'advantech-adam-6050', source: 'shipped', file: path.resolve('drivers/advantech-adam-6050.yaml') },
      { id: 'fc-health-kiosk-v1', source: 'shipped', file: path.resolve('drivers/fc-health-kiosk-v1.yaml') },
    ]);
    expect(by('kiosk-1', 'systolic_bp')).toMatchObject({ profile: 'fc-health-kiosk-v1', profileSource: 'shipped' });
  });

  it('prints a readable text report and refuses a bad config', () => {
    const r = report(cfg, false);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Privacy report — gateway gw-test, community 330106001001/);
    expect(r.stdout).toContain('io-1.entrance_door [security] class personal (profile says public; overridden by the site)');
    const bad = report({ ...cfg, devices: [{ id: 'k', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 1, privacy: { nope: 'public' } }] });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('devices[0].privacy.nope: profile "fc-health-kiosk-v1" has no point "nope"');
  });
});
