// Fault: a power cut (kill -9) with the raw store on. The raw store writes once a minute with
// synchronous=NORMAL (docs/RELIABILITY.md, "Raw store"): a cut may lose the readings of the
// last flush interval, and only those; both files pass integrity_check; no outbox item
// committed before the cut is lost, and the daemon starts again on the same files.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { restartablePort, sleep, tmpDir, waitFor } from '../helpers/peers.js';
import { readDb } from '../helpers/power-cut.js';
import { PlatformConsumer } from '../../src/platform/consumer.js';
import { RawStore, RAW_FLUSH_MS } from '../../src/store/raw-store.js';
import { rawDatabasePath } from '../../src/store/raw-database.js';
import { silentLogger } from '../../src/log.js';

const CLI = path.resolve('dist/src/cli.js');
afterAll(() => stopAll('SIGKILL'));
let procs: ChildProcess[] = [];
afterEach(() => {
  for (const p of procs) p.kill('SIGKILL');
  procs = [];
});

/** What the raw file holds for every stored series, read through a store on a read-only handle. */
function rawOnDisk(file: string): { integrity: string; flushes: number; newest: number; readings: number } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rs = new RawStore(db, 24, silentLogger());
    const series = db.prepare('SELECT device, point FROM series').all() as { device: string; point: string }[];
    let newest = 0;
    let readings = 0;
    for (const s of series) {
      const pts = rs.series(s.device, s.point, 0, Number.MAX_SAFE_INTEGER);
      readings += pts.length;
      if (pts.length) newest = Math.max(newest, pts[pts.length - 1]!.ts);
    }
    return { integrity: db.pragma('integrity_check', { simple: true }) as string, flushes: (db.prepare('SELECT count(*) AS n FROM flush').get() as { n: number }).n, newest, readings };
  } finally {
    db.close();
  }
}

describe('fault: power cut with the raw store on', () => {
  it('kill -9 loses at most the last flush interval of raw readings and no outbox item', async () => {
    expect(fs.existsSync(CLI), 'run `npx tsc -p .` first').toBe(true);
    const broker = await Mosquitto.start();
    const platform = new PlatformConsumer({ url: `mqtt://127.0.0.1:${broker.port}`, db: path.join(tmpDir('cgw-rpc-'), 'platform.db') }, silentLogger());
    await platform.start();
    const dir = tmpDir('cgw-rawcut-');
    const dbFile = path.join(dir, 'gateway.db');
    const rawFile = rawDatabasePath(dbFile);
    const simPort = await restartablePort();
    const cfgFile = path.join(dir, 'site.yaml');
    fs.writeFileSync(
      cfgFile,
      stringify({
        site: { communityCode: '330106001001', gatewayId: 'gw-rawcut' },
        localBroker: { host: '127.0.0.1', port: 0 },
        web: { host: '127.0.0.1', port: 0, https: false },
        storage: { path: dbFile },
        uplink: { url: `mqtt://127.0.0.1:${broker.port}`, windowSeconds: 5, reconnectMinMs: 200, reconnectMaxMs: 1000 },
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
        devices: [
          { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 200 },
          { id: 'meter-1', facility: 'canteen', profile: 'eastron-sdm120-modbus', bus: 'lan', unitId: 2, pollMs: 200 },
        ],
        simulator: { enabled: true, host: '127.0.0.1', port: simPort },
      }),
    );
    const run = async (): Promise<ChildProcess> => {
      const p = spawn(process.execPath, [CLI, 'run', '--config', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
      procs.push(p);
      let out = '';
      await new Promise<void>((resolve, reject) => {
        p.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('"msg":"gateway started"')) resolve();
        });
        p.once('exit', (code, signal) => reject(new Error(`daemon exited (${code ?? signal}) before it started`)));
      });
      p.stdout!.resume();
      p.stderr!.resume();
      return p;
    };

    const p1 = await run();
    const started = Date.now();
    // Past the first flush (the file is the daemon's alone while it runs: exclusive locking),
    // then cut at an arbitrary moment inside the next interval.
    await sleep(RAW_FLUSH_MS + 5000 + Math.floor(Math.random() * (RAW_FLUSH_MS - 10_000)));
    const committedBefore = readDb(dbFile).lastSeq;
    const cutAt = Date.now();
    p1.kill('SIGKILL');
    await new Promise((r) => p1.once('exit', r));

    const raw = rawOnDisk(rawFile);
    expect(raw.integrity).toBe('ok');
    expect(readDb(dbFile).integrity).toBe('ok');
    expect(raw.flushes).toBeGreaterThanOrEqual(1);
    expect(raw.readings).toBeGreaterThan(0);
    // What was lost is at most the last flush interval (plus a second of scheduling slack).
    expect(cutAt - raw.newest).toBeLessThanOrEqual(RAW_FLUSH_MS + 1000);
    expect(raw.newest).toBeGreaterThan(started);
    const lastSeq = readDb(dbFile).lastSeq;
    expect(lastSeq).toBeGreaterThanOrEqual(committedBefore);
    expect(lastSeq).toBeGreaterThan(1);

    // Power back: the daemon starts on the same files and keeps what was stored.
    const p2 = await run();
    await waitFor(async () => new Set(await platform.seqs('gw-rawcut')).size >= lastSeq, 30_000, 'every seq committed before the cut delivered');
    const seqs = [...new Set(await platform.seqs('gw-rawcut'))].sort((a, b) => a - b);
    expect(seqs.slice(0, lastSeq)).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
    p2.kill('SIGTERM');
    expect(await new Promise((r) => p2.once('exit', r))).toBe(0);
    // A clean stop writes what is buffered: nothing older than the stop is missing, and the
    // readings from before the cut are still there.
    const after = rawOnDisk(rawFile);
    expect(after.integrity).toBe('ok');
    expect(after.readings).toBeGreaterThan(raw.readings);
    expect(Date.now() - after.newest).toBeLessThan(5000);
    console.log(`raw power cut: ${cutAt - raw.newest} ms of raw readings lost (flush interval ${RAW_FLUSH_MS} ms), ${raw.readings} kept, outbox seqs 1..${lastSeq} delivered`);
    await platform.stop();
  }, 480_000);
});
