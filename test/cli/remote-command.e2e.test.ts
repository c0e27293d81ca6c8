// Remote commands end to end, as an integrator runs them: the daemon (`community-gateway run`)
// on a real Mosquitto as the platform broker, a key from `keygen`, commands from `sign-command`,
// `platform push` waiting for the answer (and for a diagnostics command, the bundle, saved with
// --out); a restart command answered, then the daemon exits 75 for systemd to start it again.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CLI, ROOT, assertBuilt, cli, cliAsync } from '../helpers/cli.js';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { restartablePort, tmpDir, waitFor } from '../helpers/peers.js';
import { CommandBundle } from '../../src/remote/bundle.js';

beforeAll(assertBuilt);

const CC = '330106001001';
const GW = 'gw-cmd-e2e';
const UPLINK_PASSWORD = 'Uplink-Pw-E2E-5521';
let procs: ChildProcess[] = [];
afterAll(async () => {
  for (const p of procs) p.kill('SIGTERM');
  await stopAll('SIGKILL');
});

describe('remote commands through the CLI', () => {
  it('sign-command, push: status applied; diagnostics saved with --out; restart answered, then the daemon exits 75', async () => {
    const m = await Mosquitto.start();
    const dir = tmpDir('cgw-cmd-e2e-');
    const key = path.join(dir, 'k.pem');
    const kg = cli(['keygen', '--out', key]);
    expect(kg.status, kg.stderr).toBe(0);
    const pub = /"(ed25519:[^"]+)"/.exec(kg.stdout)![1]!;
    const simPort = await restartablePort();
    const site = path.join(dir, 'site.yaml');
    fs.writeFileSync(
      site,
      stringify({
        site: { communityCode: CC, gatewayId: GW },
        localBroker: { host: '127.0.0.1', port: 0, anonymous: 'loopback' },
        web: { host: '127.0.0.1', port: 0, https: false },
        storage: { path: path.join(dir, 'gateway.db') },
        uplink: { url: `mqtt://127.0.0.1:${m.port}`, username: GW, password: UPLINK_PASSWORD, windowSeconds: 60, statusIntervalSeconds: 3600, reconnectMinMs: 200, reconnectMaxMs: 1000 },
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
        devices: [{ id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 500 }],
        simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 5 },
        clock: { sync: 'none' },
        remote: { trustedKeys: [pub] },
      }),
    );
    const d = spawn(process.execPath, [CLI, 'run', '--config', site, '--state-dir', path.join(dir, 'state')], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let dlog = '';
    d.stderr!.on('data', (x: Buffer) => (dlog += x.toString()));
    d.stdout!.on('data', (x: Buffer) => (dlog += x.toString()));
    procs.push(d);
    const exited = new Promise<number | null>((resolve) => d.on('exit', (code) => resolve(code)));
    await waitFor(() => /subscribed to remote configuration/.test(dlog) || undefined, 20_000, 'the daemon subscribed to config/set');

    const sign = (version: number, name: string) => {
      const out = path.join(dir, `${name}-${version}.json`);
      const r = cli(['sign-command', '--key', key, '--gateway', GW, '--version', String(version), '--out', out, name]);
      expect(r.status, r.stderr).toBe(0);
      expect(CommandBundle.parse(JSON.parse(fs.readFileSync(out, 'utf8')))).toMatchObject({ command: name, version });
      return out;
    };
    const push = (file: string, extra: string[] = []) => cliAsync(['platform', 'push', '--url', `mqtt://127.0.0.1:${m.port}`, '--community', CC, '--timeout', '30', ...extra, file]);

    const p1 = await push(sign(1, 'status'));
    expect(p1.status, p1.stderr + dlog).toBe(0);
    expect(JSON.parse(p1.stdout)).toMatchObject({ kind: 'config-result', gatewayId: GW, version: 1, outcome: 'applied', command: 'status' });
    expect(p1.stderr).toMatch(/carried out command status, version 1/);

    const saved = path.join(dir, 'diag.json');
    const p2 = await push(sign(2, 'diagnostics'), ['--out', saved]);
    expect(p2.status, p2.stderr + dlog).toBe(0);
    expect(JSON.parse(p2.stdout)).toMatchObject({ version: 2, outcome: 'applied', command: 'diagnostics' });
    expect(p2.stderr).toMatch(new RegExp(`diagnostic bundle diagnostics-${GW}-\\d{8}T\\d{6}\\.json: \\d+ bytes in \\d+ part\\(s\\) -> ${saved.replace(/[.]/g, '\\.')}`));
    expect(fs.statSync(saved).mode & 0o777).toBe(0o600);
    const diag = fs.readFileSync(saved, 'utf8');
    expect(JSON.parse(diag)).toMatchObject({ kind: 'community-gateway-diagnostics', gateway: { gatewayId: GW } });
    expect(diag.includes(UPLINK_PASSWORD)).toBe(false);

    // The same diagnostics command again: a replay, exit 1.
    const p3 = await push(path.join(dir, 'diagnostics-2.json'));
    expect(p3.status).toBe(1);
    expect(p3.stderr).toMatch(/refused version 2: replay/);

    const p4 = await push(sign(3, 'restart'));
    expect(p4.status, p4.stderr + dlog).toBe(0);
    expect(JSON.parse(p4.stdout)).toMatchObject({ version: 3, outcome: 'applied', command: 'restart' });
    expect(await exited).toBe(75);
  }, 120_000);
});
