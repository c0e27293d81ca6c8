// The CLI as a user runs it: `node dist/src/cli.js ...` (built by tsc before the tests).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { MosquittoSub, freePort, sleep, tmpDir, waitFor, waitForPort } from './helpers/peers.js';
import { CLI, ROOT, assertBuilt, cli } from './helpers/cli.js';
import { receiver } from './helpers/notify-socket.js';

beforeAll(assertBuilt);

/** n distinct free ports. */
async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

/** True when nothing listens on 127.0.0.1:port (we can bind it ourselves). */
async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function siteConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    site: { communityCode: '330106001001', gatewayId: 'gw-cli-test' },
    localBroker: { host: '127.0.0.1', port: 1883 },
    web: { host: '127.0.0.1', port: 8080 },
    storage: { path: path.join(tmpDir('cgw-cli-db-'), 'gateway.db') },
    uplink: { url: 'mqtt://127.0.0.1:1884', windowSeconds: 60 },
    buses: [],
    devices: [],
    simulator: { enabled: false },
    ...over,
  };
}

function writeConfig(cfg: Record<string, unknown> | string): string {
  const file = path.join(tmpDir('cgw-cli-'), 'site.yaml');
  fs.writeFileSync(file, typeof cfg === 'string' ? cfg : stringify(cfg));
  return file;
}

interface Daemon {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

let daemons: Daemon[] = [];
let subs: MosquittoSub[] = [];
let servers: net.Server[] = [];
afterEach(async () => {
  for (const s of subs) s.stop();
  for (const d of daemons) if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill('SIGKILL');
  await Promise.all(daemons.map((d) => d.exited));
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  daemons = [];
  subs = [];
  servers = [];
});

function startDaemon(configFile: string, env: Record<string, string> = {}): Daemon {
  const proc = spawn(process.execPath, [CLI, 'run', '--config', configFile], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info', ...env } });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  const d = { proc, out: () => out, err: () => err, exited };
  daemons.push(d);
  return d;
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

describe('cli: check-config, help, unknown commands', () => {
  it('check-config config/default.yaml exits 0 with one OK line naming the gateway', () => {
    const r = cli(['check-config', 'config/default.yaml']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('OK');
    expect(lines[0]).toContain('gw-demo-01');
    expect(lines[0]).toContain('10 device(s), 4 GPIO input(s)');
    expect(r.stderr).toBe('');
  });

  it('check-config warns about a serial path this machine does not have, naming buses[i].path, and still passes', () => {
    // The file may be checked on a laptop without the site's USB adapter; the daemon's apply
    // from the page refuses it (test/web/forms.test.ts).
    const file = writeConfig(siteConfig({ buses: [{ id: 'rs485', type: 'modbus-rtu', path: '/dev/ttyUSB9-not-here' }], devices: [{ id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'rs485', unitId: 1 }] }));
    const r = cli(['check-config', file]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('OK');
    expect(r.stderr).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: warning: buses\\[0\\]\\.path: serial device not found: /dev/ttyUSB9-not-here`));
  });

  it('check-config on a bad file exits 1 and lists every error with its path', () => {
    const file = writeConfig(
      siteConfig({
        uplink: { url: 'http://x', windowSeconds: 4 },
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1' }],
        devices: [{ id: 'th-1', facility: 'kitchen', profile: 'xy-md02', bus: 'lan', unitId: 300 }],
      }),
    );
    const r = cli(['check-config', file]);
    expect(r.status).toBe(1);
    expect(r.stdout).not.toContain('OK');
    expect(r.stderr).toContain(`${file}: invalid configuration`);
    for (const e of [
      'uplink.url: must be mqtt://host[:port] or mqtts://host[:port] (port 1..65535)',
      'uplink.windowSeconds: must be 5..86400',
      'devices[0].facility: no facility "kitchen": name a facility of facilities (none listed) or a facility type (party-service, health, childcare, elderly-care, canteen, women-children, security)',
      'devices[0].unitId: must be 1..247',
    ]) {
      expect(r.stderr).toContain(e);
    }
  });

  it('check-config on a missing file exits 1 naming the file', () => {
    const file = path.join(tmpDir('cgw-cli-'), 'does-not-exist.yaml');
    const r = cli(['check-config', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(/cannot read: .*ENOENT/);
    expect(r.stdout).toBe('');
  });

  it('check-config without a file exits 2', () => {
    const r = cli(['check-config']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('check-config needs a FILE');
  });

  it('--help exits 0 and mentions run and check-config; --version prints the version', () => {
    const r = cli(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/community-gateway run/);
    expect(r.stdout).toMatch(/community-gateway check-config FILE/);
    const v = cli(['--version']);
    expect(v.status).toBe(0);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(v.stdout.trim()).toBe(pkg.version);
  });

  it('every command has its own --help', () => {
    for (const cmd of ['run', 'check-config', 'read', 'outbox', 'privacy-report', 'platform', 'schema', 'hash-password']) {
      const r = cli([cmd, '--help']);
      expect(r.status, cmd).toBe(0);
      expect(r.stdout.startsWith(`Usage: community-gateway ${cmd}`), r.stdout).toBe(true);
    }
  });

  it('an unknown command exits 2 naming it; no command exits 2 with the usage', () => {
    const r = cli(['frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
    const none = cli([]);
    expect(none.status).toBe(2);
    expect(none.stdout).toContain('Usage:');
  });
});

describe('cli: run', () => {
  it('run --config BAD exits non-zero with the reason and opens none of the configured ports', async () => {
    const [broker, web] = await freePorts(2);
    const file = writeConfig(
      siteConfig({
        localBroker: { host: '127.0.0.1', port: broker, anonymous: 'loopback' },
        web: { host: '127.0.0.1', port: web },
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 5020 }],
        devices: [{ id: 'th-1', facility: 'canteen', profile: 'no-such-profile', bus: 'lan', unitId: 1 }],
      }),
    );
    const t0 = Date.now();
    const r = cli(['run', '--config', file]);
    expect(r.status).toBe(1);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.stderr).toContain('devices[0].profile: no profile "no-such-profile"');
    expect(await portIsFree(broker!)).toBe(true);
    expect(await portIsFree(web!)).toBe(true);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('run --config GOOD publishes readings, and on %s says offline and exits 0 within 5 s', async (signal) => {
    const [broker, web, sim] = await freePorts(3);
    const gw = `gw-cli-${signal.toLowerCase()}`;
    const file = writeConfig(
      siteConfig({
        site: { communityCode: '330106001001', gatewayId: gw },
        localBroker: { host: '127.0.0.1', port: broker, anonymous: 'loopback' },
        web: { host: '127.0.0.1', port: web },
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim, timeoutMs: 500 }],
        devices: [{ id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 1, pollMs: 200 }],
        simulator: { enabled: true, host: '127.0.0.1', port: sim, seed: 7 },
      }),
    );
    const d = startDaemon(file);
    // Not the open port: the daemon's port pre-check binds each port for a moment before the
    // real listeners start, so a connect can reach the probe. "gateway started" comes last.
    await waitFor(() => d.out().includes('"gateway started"'), 15_000, 'gateway started').catch((e: Error) => {
      throw new Error(`${e.message}\nstdout:\n${d.out()}\nstderr:\n${d.err()}`);
    });
    const sub = new MosquittoSub(broker!, 'community/#');
    subs.push(sub);
    await sub.started();

    const reading = await waitFor(() => sub.on(`community/${gw}/canteen/th-1/temperature`)[0], 10_000, 'a temperature reading');
    const payload = JSON.parse(reading.payload) as { ts: unknown; value: unknown; unit: unknown; quality: unknown };
    expect(typeof payload.value).toBe('number');
    expect(payload.value as number).toBeGreaterThanOrEqual(2);
    expect(payload.value as number).toBeLessThanOrEqual(6);
    expect(payload.unit).toBe('°C');
    expect(sub.on(`community/${gw}/bridge/state`).map((l) => l.payload)).toEqual(['online']);

    const t0 = Date.now();
    expect(d.proc.kill(signal)).toBe(true);
    const ex = await within(d.exited, 6_000, `exit after ${signal}`);
    expect(ex.signal).toBeNull();
    expect(ex.code, d.err()).toBe(0);
    expect(ex.at - t0).toBeLessThan(5_000);

    await sleep(200); // let mosquitto_sub print what it received before the broker closed
    const states = sub.on(`community/${gw}/bridge/state`).map((l) => l.payload);
    expect(states[0]).toBe('online');
    expect(states.at(-1)).toBe('offline');
    expect(sub.on(`community/${gw}/canteen/th-1/availability`).map((l) => l.payload).at(-1)).toBe('offline');
    expect(d.out()).toContain('gateway stopped');
    expect(await portIsFree(broker!)).toBe(true);
  });

  it('under systemd (Type=notify): READY=1 once started, watchdog pings while alive, STOPPING=1 on SIGTERM', async () => {
    const [broker, web, sim] = await freePorts(3);
    const file = writeConfig(
      siteConfig({
        localBroker: { host: '127.0.0.1', port: broker },
        web: { host: '127.0.0.1', port: web },
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim }],
        devices: [{ id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 1, pollMs: 200 }],
        simulator: { enabled: true, host: '127.0.0.1', port: sim, seed: 7 },
      }),
    );
    const rx = receiver();
    const d = startDaemon(file, { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '400000' });
    try {
      const ready = await waitFor(() => rx.got.find((m) => m.includes('READY=1')), 15_000, 'READY=1');
      expect(ready).toMatch(/STATUS=gateway gw-cli-test: 1 devices, 0 GPIO inputs, web on port \d+/);
      expect(await portIsFree(broker)).toBe(false); // ready means listening
      await waitFor(() => rx.got.filter((m) => m === 'WATCHDOG=1').length >= 3, 5_000, 'three watchdog pings');
      d.proc.kill('SIGTERM');
      await within(d.exited, 6_000, 'exit');
      expect(rx.got.some((m) => m.includes('STOPPING=1'))).toBe(true);
    } finally {
      rx.close();
    }
  });

  it('run with a serial adapter missing starts anyway and logs a warning naming buses[i].path', async () => {
    const [broker, web] = await freePorts(2);
    const file = writeConfig(
      siteConfig({
        localBroker: { host: '127.0.0.1', port: broker },
        web: { host: '127.0.0.1', port: web, https: false },
        buses: [{ id: 'rs485', type: 'modbus-rtu', path: '/dev/ttyUSB9-not-here' }],
        devices: [{ id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'rs485', unitId: 1 }],
      }),
    );
    const d = startDaemon(file);
    await waitFor(() => /buses\[0\]\.path: serial device not found: \/dev\/ttyUSB9-not-here/.test(d.out()), 15_000, 'the warning');
    const line = d.out().split('\n').find((l) => l.includes('serial device not found'))!;
    expect(JSON.parse(line)).toMatchObject({ level: 40 });
    await waitFor(() => d.out().includes('"gateway started"'), 15_000, 'gateway started');
    await waitForPort(web!, 15_000);
    expect(d.proc.exitCode).toBeNull();
  });

  it('a start-up error (broker port taken) exits non-zero within a few seconds naming the port', async () => {
    const [taken, web, sim] = await freePorts(3);
    const holder = net.createServer();
    servers.push(holder);
    await new Promise<void>((resolve) => holder.listen(taken, '127.0.0.1', () => resolve()));
    const file = writeConfig(
      siteConfig({
        localBroker: { host: '127.0.0.1', port: taken },
        web: { host: '127.0.0.1', port: web },
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim }],
        devices: [{ id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 1 }],
        simulator: { enabled: true, host: '127.0.0.1', port: sim },
      }),
    );
    const t0 = Date.now();
    const d = startDaemon(file);
    const ex = await within(d.exited, 5_000, 'exit on a taken port');
    expect(ex.at - t0).toBeLessThan(5_000);
    expect(ex.code).not.toBe(0);
    expect(ex.code).not.toBeNull();
    expect(d.err()).toMatch(new RegExp(`local broker cannot listen on 127\\.0\\.0\\.1:${taken}: EADDRINUSE`));
    // The parts started before the failure were closed again.
    expect(await portIsFree(sim!)).toBe(true);
    expect(await portIsFree(web!)).toBe(true);
  });
});
