// Real peers for tests: pymodbus servers and mosquitto clients, started and stopped per test.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const PYTHON = '/usr/bin/python3';
export const MODBUS_SERVER = path.resolve('test/peers/modbus_server.py');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

// restartablePort lives with the other peer helpers (bench/peers/util.ts): the fleet bench uses it too.
export { restartablePort } from '../../bench/peers/util.js';

export function tmpDir(prefix = 'cgw-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface ModbusMap {
  port?: number;
  kiosk?: { unit: number; intervalMs: number; cards: number[]; seed?: number };
  serial?: string;
  ignoreMissingUnits?: boolean;
  /** Answered to Read Device Identification (FC 43/14) by every unit (but a failing or noIdentity one), e.g. { VendorName: 'Eastron' }. */
  identity?: Record<string, string>;
  units: Record<string, {
    failing?: boolean;
    /** Answers FC 43 with exception 1 ILLEGAL FUNCTION although `identity` is set (a device without it). */
    noIdentity?: boolean;
    hr?: Record<string, number>;
    ir?: Record<string, number>;
    co?: Record<string, number>;
    di?: Record<string, number>;
    typed?: { kind: 'hr' | 'ir'; address: number; type: string; order?: string; value: number }[];
  }>;
}

export interface RequestLine {
  unit: number;
  fc: number;
  address: number;
  count: number;
}

/** A pymodbus server on 127.0.0.1 serving `map`; `requests` collects every request it saw. */
export class PymodbusServer {
  proc: ChildProcess | null = null;
  readonly requests: RequestLine[] = [];
  /** Sessions served in kiosk mode: counter, card, then systolic, diastolic, pulse, weight and glucose raw words. */
  readonly events: { count: number; card: number; values: number[] }[] = [];
  stderr = '';
  private file: string;

  constructor(readonly map: ModbusMap) {
    this.file = path.join(tmpDir('cgw-map-'), 'map.json');
    fs.writeFileSync(this.file, JSON.stringify(map));
  }

  get port(): number {
    return this.map.port!;
  }

  static async start(map: ModbusMap): Promise<PymodbusServer> {
    if (!map.serial && !map.port) map.port = await freePort();
    const s = new PymodbusServer(map);
    await s.start();
    return s;
  }

  async start(): Promise<void> {
    const proc = spawn(PYTHON, [MODBUS_SERVER, this.file], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    let buf = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`pymodbus did not start: ${this.stderr}`)), 15000);
      proc.once('exit', (code) => reject(new Error(`pymodbus exited ${code}: ${this.stderr}`)));
      proc.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line === 'READY') {
            clearTimeout(timer);
            resolve();
          } else if (line.startsWith('EVENT ')) {
            const [, count, card, ...values] = line.split(' ').map(Number);
            this.events.push({ count: count!, card: card!, values });
          } else if (line.startsWith('REQ ')) {
            const [, unit, fc, address, count] = line.split(' ').map(Number);
            this.requests.push({ unit: unit!, fc: fc!, address: address!, count: count! });
          }
        }
      });
    });
    if (this.map.port) await waitForPort(this.map.port);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  countFor(unit: number): number {
    return this.requests.filter((r) => r.unit === unit).length;
  }
}

export async function waitForPort(port: number, timeoutMs = 10000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createConnection({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`port ${port} did not open`);
    await sleep(50);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns something truthy. An async `fn` is awaited, and a rejection
 * (a server not up yet) counts as "not yet". */
export async function waitFor<T>(fn: () => T | undefined | false | null | Promise<T | undefined | false | null>, timeoutMs = 10000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = fn();
    const v = r instanceof Promise ? await r.catch(() => undefined) : r;
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** mosquitto_sub against a broker; collects "topic payload" lines (-v), retained ones included. */
export class MosquittoSub {
  readonly lines: { topic: string; payload: string; retained?: boolean }[] = [];
  private proc: ChildProcess;
  private ready: Promise<void>;

  constructor(port: number, topic: string, extra: string[] = []) {
    // -F '%r %t %p': retain flag, topic, payload; one message per line.
    this.proc = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-t', topic, '-F', '%r %t %p', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const a = line.indexOf(' ');
        const b = line.indexOf(' ', a + 1);
        this.lines.push({ retained: line.slice(0, a) === '1', topic: line.slice(a + 1, b), payload: line.slice(b + 1) });
      }
    });
    this.ready = new Promise((resolve) => setTimeout(resolve, 300));
  }

  async started(): Promise<void> {
    await this.ready;
  }

  on(topic: string) {
    return this.lines.filter((l) => l.topic === topic);
  }

  stop(): void {
    this.proc.kill('SIGTERM');
  }
}
