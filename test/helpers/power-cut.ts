// The power-cut scenario shared by the regular suite (4 cuts) and the fault suite (20 cuts):
// the daemon (the real CLI) is killed with SIGKILL mid-stream again and again and restarted.
// Every row committed to the outbox reaches the platform, and the database passes
// PRAGMA integrity_check after every cut.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { stringify } from 'yaml';
import { Mosquitto } from './mosquitto.js';
import { restartablePort, sleep, tmpDir, waitFor } from './peers.js';
import { PlatformConsumer } from '../../src/platform/consumer.js';
import { silentLogger } from '../../src/log.js';

const CLI = path.resolve('dist/src/cli.js');

export function readDb(file: string) {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return {
      integrity: db.pragma('integrity_check', { simple: true }) as string,
      rows: (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n,
      remaining: (db.prepare('SELECT seq FROM outbox').all() as { seq: number }[]).map((r) => r.seq),
      lastSeq: ((db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number } | undefined)?.seq ?? 0),
    };
  } finally {
    db.close();
  }
}


/** `cuts` power cuts, each after `runMs` (a random time in the range) of running under load. */
export async function powerCutScenario(cuts: number, runMs: [number, number]): Promise<{ committed: number; delivered: number }> {
  expect(fs.existsSync(CLI), 'run `npx tsc -p .` first (npm test does)').toBe(true);
  const broker = await Mosquitto.start();
  const platform = new PlatformConsumer({ url: `mqtt://127.0.0.1:${broker.port}`, db: path.join(tmpDir('cgw-pc-'), 'platform.db') }, silentLogger());
  await platform.start();
  const dir = tmpDir('cgw-powercut-');
  const dbFile = path.join(dir, 'gateway.db');
  // The daemon restarts many times: between runs its ports are free, and a parallel test's
  // freePort() could take them. Ports 0 (ephemeral) for the broker and the web server, and
  // a simulator port below the kernel's ephemeral range, which freePort() never returns.
  const simPort = await restartablePort();
  const config = {
    site: { communityCode: '330106001001', gatewayId: 'gw-cut' },
    localBroker: { host: '127.0.0.1', port: 0 },
    web: { host: '127.0.0.1', port: 0, https: false },
    storage: { path: dbFile },
    uplink: { url: `mqtt://127.0.0.1:${broker.port}`, windowSeconds: 5, reconnectMinMs: 200, reconnectMaxMs: 1000, statusIntervalSeconds: 5 },
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
    devices: [
      { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 100 },
      { id: 'meter-1', facility: 'canteen', profile: 'eastron-sdm120-modbus', bus: 'lan', unitId: 2, pollMs: 100 },
      { id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 3, pollMs: 100 },
    ],
    simulator: { enabled: true, host: '127.0.0.1', port: simPort },
  };
  const cfgFile = path.join(dir, 'site.yaml');
  fs.writeFileSync(cfgFile, stringify(config));
  let starts = 0;
  /** Starts the daemon; resolves once it has started (so a slow start under load is not cut short). */
  const run = async (): Promise<ChildProcess> => {
    starts++;
    const p = spawn(process.execPath, [CLI, 'run', '--config', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    let out = '';
    await new Promise<void>((resolve, reject) => {
      p.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('"msg":"gateway started"')) resolve();
      });
      // A run that ends before it started is a failed start: say why.
      p.once('exit', (code, signal) => reject(new Error(`daemon exited (${code ?? signal}) before it started: ${err.slice(-2000)}`)));
    });
    p.stdout!.resume();
    return p;
  };
  for (let i = 0; i < cuts; i++) {
    const p = await run();
    // Run across at least one window close, then cut the power at an arbitrary moment.
    await sleep(runMs[0] + Math.floor(Math.random() * (runMs[1] - runMs[0])));
    p.kill('SIGKILL');
    await new Promise((r) => p.once('exit', r));
    const after = readDb(dbFile);
    expect(after.integrity).toBe('ok');
    if (i === 0) {
      // The broker publishes the gateway's last will: the platform sees it offline.
      await waitFor(async () => (await platform.lastStatus('gw-cut'))?.reason === 'will', 5000, 'last will');
      expect(await platform.lastStatus('gw-cut')).toMatchObject({ state: 'offline', reason: 'will', kind: 'status' });
    }
  }
  const committed = readDb(dbFile).lastSeq;
  expect(committed).toBeGreaterThan(cuts); // windows did close and commit between cuts
  // Back on for good: the backlog drains, then a clean stop.
  const p = await run();
  await waitFor(() => readDb(dbFile).rows === 0 && readDb(dbFile).lastSeq > committed, 30000, 'outbox drained after restart');
  p.kill('SIGTERM');
  const code = await new Promise((r) => p.once('exit', r));
  expect(code).toBe(0);
  const final = readDb(dbFile);
  expect(final.integrity).toBe('ok');
  // Every committed seq, from the first to the last, exactly once after de-duplication
  // (rows committed during the final stop stay in the outbox for the next start).
  const expected = Array.from({ length: final.lastSeq }, (_, i) => i + 1).filter((s) => !final.remaining.includes(s));
  await waitFor(async () => (await platform.seqs('gw-cut')).length >= expected.length, 10000, 'platform caught up');
  expect(await platform.seqs('gw-cut')).toEqual(expected);
  expect(platform.stats.conflicts).toBe(0);
  expect(platform.stats.rejected).toBe(0);
  // One inventory per start.
  expect(starts).toBe(cuts + 1);
  expect((await platform.items('gw-cut', 'inventory')).length).toBe(cuts + 1);
  const delivered = (await platform.seqs('gw-cut')).length;
  await platform.stop();
  return { committed, delivered };
}
