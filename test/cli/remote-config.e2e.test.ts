// Remote configuration end to end, as an integrator runs it: the daemon (`community-gateway run`)
// on a real Mosquitto as the platform broker, a key from `keygen`, a bundle from `sign-config`
// against the running file, `platform push` waiting for the answer, and the reference consumer
// storing the results. A second push of the same bundle is a replay.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CLI, ROOT, cli, cliAsync } from '../helpers/cli.js';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { restartablePort, tmpDir, waitFor } from '../helpers/peers.js';
import { PlatformConsumer } from '../../src/platform/consumer.js';
import { silentLogger } from '../../src/log.js';

const CC = '330106001001';
const GW = 'gw-e2e';
let procs: ChildProcess[] = [];
let consumers: PlatformConsumer[] = [];
afterAll(async () => {
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(consumers.map((c) => c.stop()));
  await stopAll('SIGKILL');
});

describe('remote configuration through the CLI', () => {
  it('keygen, sign-config against the running file, push: applied; again: replay', async () => {
    const m = await Mosquitto.start();
    const dir = tmpDir('cgw-e2e-');
    const kg = cli(['keygen', '--out', path.join(dir, 'k.pem')]);
    expect(kg.status, kg.stderr).toBe(0);
    const pub = /"(ed25519:[^"]+)"/.exec(kg.stdout)![1]!;
    const simPort = await restartablePort();
    const cfg = (above: number) =>
      stringify({
        site: { communityCode: CC, gatewayId: GW },
        localBroker: { host: '127.0.0.1', port: 0, anonymous: 'loopback' },
        web: { host: '127.0.0.1', port: 0, https: false },
        storage: { path: path.join(dir, 'gateway.db') },
        uplink: { url: `mqtt://127.0.0.1:${m.port}`, windowSeconds: 60, statusIntervalSeconds: 3600, reconnectMinMs: 200, reconnectMaxMs: 1000 },
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
        devices: [{ id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 500 }],
        alarms: [{ id: 'fridge-warm', device: 'fridge-1', point: 'fridge_1_temperature', above, forSeconds: 600 }],
        simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 5 },
        clock: { sync: 'none' },
        remote: { trustedKeys: [pub] },
      });
    const site = path.join(dir, 'site.yaml');
    fs.writeFileSync(site, cfg(8));
    const consumer = new PlatformConsumer({ url: `mqtt://127.0.0.1:${m.port}`, db: path.join(dir, 'p.db'), group: 'none' }, silentLogger());
    await consumer.start();
    consumers.push(consumer);
    const d = spawn(process.execPath, [CLI, 'run', '--config', site, '--state-dir', path.join(dir, 'state')], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let dlog = '';
    d.stderr!.on('data', (x: Buffer) => (dlog += x.toString()));
    d.stdout!.on('data', (x: Buffer) => (dlog += x.toString()));
    procs.push(d);
    const st = await waitFor(() => consumer.lastStatus(GW), 20_000, 'a status');
    expect((st as { config?: { remote: boolean } }).config?.remote).toBe(true);
    const next = path.join(dir, 'next.yaml');
    fs.writeFileSync(next, cfg(6));
    const bundle = path.join(dir, 'b.json');
    const sc = cli(['sign-config', '--key', path.join(dir, 'k.pem'), '--gateway', GW, '--version', '1', '--base-file', site, '--note', 'e2e', '--out', bundle, next]);
    expect(sc.status, sc.stderr).toBe(0);
    expect(sc.stderr).toMatch(new RegExp(`${GW}.*version 1`));
    const p1 = await cliAsync(['platform', 'push', '--url', `mqtt://127.0.0.1:${m.port}`, '--community', CC, '--timeout', '30', bundle]);
    expect(JSON.parse(p1.stdout)).toMatchObject({ kind: 'config-result', gatewayId: GW, version: 1, outcome: 'applied' });
    expect(p1.status, p1.stderr + dlog).toBe(0);
    expect(fs.readFileSync(site, 'utf8')).toBe(cfg(6));
    const p2 = await cliAsync(['platform', 'push', '--url', `mqtt://127.0.0.1:${m.port}`, '--community', CC, '--timeout', '30', bundle]);
    expect(p2.status).toBe(1);
    expect(p2.stderr).toMatch(/replay/);
    await waitFor(async () => (await consumer.configResults(GW)).length >= 2, 10_000, 'results stored');
    expect((await consumer.configResults(GW)).map((r) => [r.version, r.outcome, r.reason ?? null])).toEqual([
      [1, 'applied', null],
      [1, 'refused', 'replay'],
    ]);  }, 120_000);
});
