import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { tmpDir } from '../helpers/peers.js';
import { baseConfig } from '../helpers/gateway.js';
import { PrivacyLedger } from '../../src/privacy/ledger.js';

const CLI = path.resolve('dist/src/cli.js');

function report(cfg: Record<string, unknown>, json = true, stateDir?: string) {
  const file = path.join(tmpDir('cgw-pr-'), 'site.yaml');
  fs.writeFileSync(file, stringify(cfg));
  return spawnSync(process.execPath, [CLI, 'privacy-report', '--config', file, ...(json ? ['--json'] : []), ...(stateDir ? ['--state-dir', stateDir] : [])], { encoding: 'utf8' });
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
    expect(by('kiosk-1', 'systolic_bp').leaves).toMatch(/>= 7 distinct residents.*discrete Laplace noise, epsilon 0\.5.*never min, max or a single value/);
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

  it('dp mode: states (epsilon, delta)-DP, each measure\'s threshold, and the ledger as counts under the k rule', () => {
    const state = tmpDir('cgw-pr-state-');
    const ledger = new PrivacyLedger(path.join(state, 'privacy-ledger.json'), 20).load();
    const now = Date.now();
    for (let i = 0; i < 7; i++) ledger.charge(i.toString(16).padStart(16, '0'), 2000, 1, now); // 10% of the cap
    ledger.charge('00000000000000ff', 20_000, 1, now); // one at the cap
    ledger.charge('00000000000000ff', 1, 3, now); // and excluded
    ledger.save();
    const dpCfg = { ...cfg, privacy: { k: 7, mode: 'dp', epsilon: 1, delta: 1e-6, annualEpsilon: 20 } };
    const r = report(dpCfg, true, state);
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { mode: string; guarantee: string; thresholds: { device: string; point: string; threshold: number }[]; ledger: Record<string, unknown>; points: { device: string; point: string; leaves: string }[] };
    expect(rep.mode).toBe('dp');
    expect(rep.guarantee).toMatch(/^\(epsilon 1, delta 0\.000001\)-differential privacy per resident and released item/);
    // systolic has bands: count share 1/3, T = 1 + ceil(ln(1 / (1e-6 (1 + e^(-1/3)))) / (1/3)) = 41.
    expect(rep.thresholds.find((t) => t.point === 'systolic_bp')!.threshold).toBe(41);
    // body weight has none: share 1/2, T = 1 + ceil(ln(1 / (1e-6 (1 + e^(-1/2)))) / (1/2)) = 28.
    expect(rep.thresholds.find((t) => t.point === 'body_weight')!.threshold).toBe(28);
    expect(rep.thresholds).toHaveLength(5);
    expect(rep.points.find((p) => p.point === 'systolic_bp')!.leaves).toMatch(/clamped to 50\.\.300.*reaches 41/);
    expect(rep.ledger).toMatchObject({ annualEpsilon: 20, residents: 8, excludedResidents: null, excludedSessions: null });
    expect((rep.ledger.spent as { residents: number | null }[]).map((b) => b.residents)).toEqual([7, 0, 0, 0, null]);
    expect(r.stdout).not.toContain('00000000000000ff');
    const text = report(dpCfg, false, state);
    expect(text.stdout).toContain('excluded this year: fewer than 7 residents, fewer than 7 sessions');
    expect(text.stdout).toMatch(/Guarantee: \(epsilon 1, delta 0\.000001\)-differential privacy/);
  });

  it('k-anonymous mode says it is k-anonymity, and with epsilon that the k decision makes it not DP', () => {
    const rep = JSON.parse(report(cfg).stdout) as { mode: string; guarantee: string; ledger: unknown };
    expect(rep.mode).toBe('k-anonymous');
    expect(rep.guarantee).toMatch(/^k-anonymity: every released figure rests on at least 7 distinct residents.*not differential privacy/);
    expect(rep.ledger).toBeNull();
  });
});
