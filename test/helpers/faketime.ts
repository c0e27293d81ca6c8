// The real daemon under Debian's libfaketime, for the clock-step tests (issue 13): only the wall
// clock moves (FAKETIME_DONT_FAKE_MONOTONIC=1), read from a timestamp file on every call
// (FAKETIME_NO_CACHE=1), so a test steps the box's clock by rewriting that file. The platform
// side is a raw capture of every fc/v1/# message on a real Mosquitto; the systemd side a notify
// socket that records when each WATCHDOG=1 arrived. The test process itself is not faked.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { restartablePort, tmpDir } from './peers.js';

export const CLI = path.resolve('dist/src/cli.js');

/** libfaketime.so.1 as installed by `apt-get install faketime` (any architecture), or null. */
export function libfaketimePath(): string | null {
  try {
    const files = execFileSync('dpkg', ['-L', 'libfaketime'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n');
    const lib = files.find((f) => f.endsWith('/faketime/libfaketime.so.1'));
    if (lib && fs.existsSync(lib)) return lib;
  } catch {
    // not a dpkg system, or the package is missing: try the usual place
  }
  for (const dir of fs.existsSync('/usr/lib') ? fs.readdirSync('/usr/lib') : []) {
    const lib = path.join('/usr/lib', dir, 'faketime', 'libfaketime.so.1');
    if (fs.existsSync(lib)) return lib;
  }
  return null;
}

/** One faked wall clock: a timestamp file and the environment that points libfaketime at it. */
export class FakeClock {
  readonly file: string;
  /** Every step, with the real time (ms) it was written and the offset it means. */
  readonly steps: { spec: string; realMs: number; offsetMs: number }[] = [];

  constructor(
    readonly lib: string,
    dir: string,
    spec = '+0',
  ) {
    this.file = path.join(dir, 'faketime.rc');
    this.step(spec);
  }

  /** Sets the clock to a relative offset from the real time: "+0", "-2d", "-120", "+1h".
   * libfaketime applies a relative offset to the real clock on every call, so the faked clock
   * keeps running at real speed after the step. ("@YYYY-MM-DD hh:mm:ss" would count from the
   * process' own start, not from the step, so it is refused here.) */
  step(spec: string): void {
    const offsetMs = parseOffset(spec);
    // Written whole and renamed: libfaketime re-reads the file on every clock call and must never see half of it.
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, `${spec}\n`);
    fs.renameSync(tmp, this.file);
    this.steps.push({ spec, realMs: Date.now(), offsetMs });
  }

  /** The current offset (faked minus real), ms. */
  get offsetMs(): number {
    return this.steps.at(-1)!.offsetMs;
  }

  env(): Record<string, string> {
    return {
      LD_PRELOAD: this.lib,
      FAKETIME_TIMESTAMP_FILE: this.file,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    };
  }
}

const UNIT_MS: Record<string, number> = { '': 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, y: 365 * 86_400_000 };

/** libfaketime's relative offset syntax (README 4d): a sign, a number, an optional unit. */
export function parseOffset(spec: string): number {
  const m = /^([+-])(\d+(?:\.\d+)?)([smhdy]?)$/.exec(spec.trim());
  if (!m) throw new Error(`not a relative faketime offset: ${spec}`);
  return (m[1] === '-' ? -1 : 1) * Number(m[2]) * UNIT_MS[m[3]!]!;
}

interface DgramSocket extends EventEmitter {
  bind(path: string): void;
  close(): void;
}
const unixDgram = createRequire(import.meta.url)('unix-dgram') as {
  createSocket(type: 'unix_dgram', listener?: (buf: Buffer) => void): DgramSocket;
};

/** A notify socket that keeps every datagram with the real time it arrived (ms). */
export function timedNotifyReceiver(): { path: string; got: { at: number; msg: string }[]; pings: () => number[]; close: () => void } {
  const sockPath = path.join(tmpDir('cgw-ftnotify-'), 'notify');
  const got: { at: number; msg: string }[] = [];
  const sock = unixDgram.createSocket('unix_dgram', (buf) => got.push({ at: Date.now(), msg: buf.toString() }));
  let bindError: Error | null = null;
  sock.on('error', (err: Error) => (bindError = err));
  sock.bind(sockPath);
  if (bindError) throw bindError;
  return {
    path: sockPath,
    got,
    pings: () => got.filter((g) => g.msg.split('\n').includes('WATCHDOG=1')).map((g) => g.at),
    close: () => sock.close(),
  };
}

/** The longest gap (ms) between consecutive times within [from, to], counting the edges. */
export function longestGap(times: number[], from: number, to: number): number {
  const t = [from, ...times.filter((x) => x > from && x < to), to];
  let worst = 0;
  for (let i = 1; i < t.length; i++) worst = Math.max(worst, t[i]! - t[i - 1]!);
  return worst;
}

export interface Captured {
  /** Real time of arrival, ms. */
  at: number;
  topic: string;
  kind: string;
  msg: Record<string, unknown>;
}

export type Item = Record<string, unknown> & { seq?: number };

/** Every message under fc/v1/# on the platform broker, raw, in arrival order (QoS 1). */
export class PlatformCapture {
  readonly messages: Captured[] = [];
  private client: MqttClient | null = null;

  static async start(port: number): Promise<PlatformCapture> {
    const c = new PlatformCapture();
    c.client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: `ft-capture-${process.pid}`, clean: true, reconnectPeriod: 200 });
    c.client.on('message', (topic, payload) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(payload.toString()) as Record<string, unknown>;
      } catch {
        msg = { unparsable: payload.toString().slice(0, 200) };
      }
      c.messages.push({ at: Date.now(), topic, kind: topic.split('/').at(-1)!, msg });
    });
    await new Promise<void>((resolve, reject) => {
      c.client!.once('connect', () => c.client!.subscribe('fc/v1/#', { qos: 1 }, (err) => (err ? reject(err) : resolve())));
      c.client!.once('error', reject);
    });
    return c;
  }

  /** Items of one kind with the real time their message arrived; `since` is an index into messages. */
  items(kind: 'agg' | 'alarm' | 'inventory', since = 0): (Item & { at: number })[] {
    return this.messages
      .slice(since)
      .filter((m) => m.kind === kind && Array.isArray(m.msg.items))
      .flatMap((m) => (m.msg.items as Item[]).map((it) => ({ ...it, at: m.at })));
  }

  statuses(since = 0): (Record<string, unknown> & { at: number })[] {
    return this.messages.slice(since).filter((m) => m.kind === 'status').map((m) => ({ ...m.msg, at: m.at }));
  }

  async stop(): Promise<void> {
    await this.client?.endAsync(true);
    this.client = null;
  }
}

/** The key a window item is counted by: what it is about, never its seq. */
export function windowKey(it: Item): string | null {
  if (it.type === 'facility') return `facility|${String(it.facility)}|${String(it.windowStart)}`;
  if (it.type === 'point' || it.type === 'personal') return `${String(it.type)}|${String(it.device)}|${String(it.point)}|${String(it.windowStart)}`;
  return null;
}

/** The series an item belongs to (a point or a facility), whatever its window. */
export function seriesKey(it: Item): string {
  return it.type === 'facility' ? `facility|${String(it.facility)}` : `${String(it.type)}|${String(it.device)}|${String(it.point)}`;
}

/** Items de-duplicated by seq: the same row delivered again (QoS 1 after a reconnect or a
 * kill before its PUBACK) is the platform's (gatewayId, seq) rule at work, not a resend. */
export function bySeq<T extends Item>(items: T[]): T[] {
  const seen = new Map<number, T>();
  for (const it of items) if (typeof it.seq === 'number' && !seen.has(it.seq)) seen.set(it.seq, it);
  return [...seen.values()];
}

export interface SiteOptions {
  dir: string;
  platformPort: number;
  windowSeconds: number;
  alarms: Record<string, unknown>[];
  /** The clock block (issue 13). Omitted for a run against a build that does not know it. */
  clock?: Record<string, unknown>;
  statusIntervalSeconds?: number;
}

/** A simulated site (no hardware): the built-in simulator serves every device. */
export async function writeSite(o: SiteOptions): Promise<{ file: string; brokerPort: number; webPort: number; gatewayId: string; dbFile: string }> {
  const simPort = await restartablePort();
  const brokerPort = await restartablePort();
  const webPort = await restartablePort();
  const gatewayId = 'gw-clock';
  const dbFile = path.join(o.dir, 'gateway.db');
  const config: Record<string, unknown> = {
    site: { communityCode: '330106001001', gatewayId },
    // Loopback anonymous read, so the test can watch live readings go on through a step.
    localBroker: { host: '127.0.0.1', port: brokerPort, anonymous: 'loopback' },
    web: { host: '127.0.0.1', port: webPort, https: false },
    storage: { path: dbFile },
    uplink: {
      url: `mqtt://127.0.0.1:${o.platformPort}`,
      windowSeconds: o.windowSeconds,
      reconnectMinMs: 200,
      reconnectMaxMs: 1000,
      statusIntervalSeconds: o.statusIntervalSeconds ?? 5,
    },
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
    devices: [
      { id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 1, pollMs: 1000 },
      { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 2, pollMs: 500 },
      { id: 'meter-1', facility: 'canteen', profile: 'eastron-sdm120-modbus', bus: 'lan', unitId: 3, pollMs: 1000 },
      { id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 4, pollMs: 500 },
    ],
    simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 13 },
    alarms: o.alarms,
  };
  if (o.clock) config.clock = o.clock;
  const file = path.join(o.dir, 'site.yaml');
  fs.writeFileSync(file, stringify(config));
  return { file, brokerPort, webPort, gatewayId, dbFile };
}

/** One run of the real daemon (`cli.js run`) under the fake clock. */
export class FaketimeDaemon {
  private proc: ChildProcess | null = null;
  out = '';
  err = '';
  /** Real time the process was spawned and the time it logged "gateway started", ms. */
  spawnedAt = 0;
  startedAt = 0;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(
    readonly clock: FakeClock,
    readonly configFile: string,
    readonly stateDir: string,
    readonly extraEnv: Record<string, string> = {},
  ) {}

  async start(timeoutMs = 30_000): Promise<void> {
    this.exit = null;
    this.spawnedAt = Date.now();
    const p = spawn(process.execPath, [CLI, 'run', '--config', this.configFile, '--state-dir', this.stateDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info', ...this.clock.env(), ...this.extraEnv },
    });
    this.proc = p;
    p.stderr!.on('data', (d: Buffer) => (this.err = (this.err + d.toString()).slice(-20_000)));
    p.once('exit', (code, signal) => (this.exit = { code, signal }));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`daemon did not start within ${timeoutMs} ms: ${this.tail()}`)), timeoutMs);
      p.stdout!.on('data', (d: Buffer) => {
        this.out = (this.out + d.toString()).slice(-200_000);
        if (this.startedAt < this.spawnedAt && this.out.includes('"msg":"gateway started"')) {
          this.startedAt = Date.now();
          clearTimeout(timer);
          resolve();
        }
      });
      p.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`daemon exited (${code ?? signal}) before it started: ${this.tail()}`));
      });
    });
  }

  get running(): boolean {
    return this.proc !== null && this.exit === null;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Log lines (JSON) printed so far. */
  logLines(): Record<string, unknown>[] {
    return this.out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  }

  tail(): string {
    return `${this.out.slice(-3000)}\n--- stderr ---\n${this.err.slice(-3000)}`;
  }

  /** Stops the process (if running) and resolves with how it ended. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM', timeoutMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const p = this.proc;
    if (!p) throw new Error('not started');
    if (this.exit === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
        p.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        p.kill(signal);
      });
    }
    return this.exit!;
  }
}

/** Live readings on the daemon's own broker (anonymous loopback read), with real arrival times. */
export async function watchLive(brokerPort: number, gatewayId: string): Promise<{ times: number[]; stop: () => Promise<void> }> {
  const times: number[] = [];
  const client = mqtt.connect(`mqtt://127.0.0.1:${brokerPort}`, { clientId: `ft-live-${process.pid}`, reconnectPeriod: 200 });
  client.on('message', (topic) => {
    if (!topic.endsWith('/bridge/state')) times.push(Date.now());
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => client.subscribe(`community/${gatewayId}/#`, { qos: 0 }, (err) => (err ? reject(err) : resolve())));
    client.once('error', reject);
  });
  return { times, stop: async () => void (await client.endAsync(true)) };
}

/** The window start (ms) containing t. */
export function windowOf(t: number, windowSeconds: number): number {
  return Math.floor(t / (windowSeconds * 1000)) * windowSeconds * 1000;
}
