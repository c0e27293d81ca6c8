// Bytes on the wire per Modbus RTU scan of every shipped profile: as planned (maxGap 10),
// the byte minimum under the same limits, one request per point, and what a real scan put on
// a socat pty line to a pymodbus RTU server (the gateway's own link counters). Then the scan
// time those bytes imply at 9600 baud 8N1, before any device turnaround.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import type { Profile } from '../src/config/profile-schema.js';
import { parseSiteConfig } from '../src/config/site-config.js';
import { planReads, pointSpan } from '../src/io/modbus/read-plan.js';
import { Gateway } from '../src/main.js';
import { silentLogger } from '../src/log.js';
import { minimumRtuBytes, rtuReadBytes } from './minimum-requests.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PYMODBUS_SERVER = path.resolve('test/peers/modbus_server.py');

export interface WireRow {
  profile: string;
  requests: number;
  planned: number;
  minimum: number;
  perPoint: number;
  measured: number | null;
  /** Scan time at 9600 8N1 with no device turnaround: characters plus t3.5 before each frame. */
  scanMs9600: number;
}

/** 10 bits per character at 8N1; t3.5 before every frame (request and reply). */
export function scanMsAt(bytes: number, frames: number, baud: number): number {
  const charMs = 10_000 / baud;
  return bytes * charMs + frames * 3.5 * charMs;
}

export async function rtuWireBench(profiles: ReadonlyMap<string, Profile>): Promise<WireRow[]> {
  const rows: WireRow[] = [];
  for (const p of profiles.values()) {
    const plan = planReads(p.points, p.holes, { maxGap: 10, maxRegisters: p.maxRegistersPerRead });
    const planned = plan.reduce((n, b) => n + rtuReadBytes(b.register, b.count), 0);
    const perPoint = p.points.reduce((n, x) => n + rtuReadBytes(x.register, pointSpan(x).to - pointSpan(x).from + 1), 0);
    rows.push({
      profile: p.id,
      requests: plan.length,
      planned,
      minimum: minimumRtuBytes(p, 10),
      perPoint,
      measured: await measuredScanBytes(p, profiles).catch((err: Error) => {
        console.log(`   (${p.id}: live measurement failed: ${err.message})`);
        return null;
      }),
      scanMs9600: scanMsAt(planned, plan.length * 2, 9600),
    });
  }
  return rows;
}

/** One real scan over a socat pty pair against pymodbus serving zeros at every planned address. */
async function measuredScanBytes(p: Profile, profiles: ReadonlyMap<string, Profile>): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-wire-'));
  const gw = path.join(dir, 'gw');
  const dev = path.join(dir, 'dev');
  const procs: ChildProcess[] = [];
  let g: Gateway | null = null;
  try {
    procs.push(spawn('socat', [`pty,raw,echo=0,link=${gw}`, `pty,raw,echo=0,link=${dev}`], { stdio: 'ignore' }));
    for (let i = 0; i < 100 && !(fs.existsSync(gw) && fs.existsSync(dev)); i++) await sleep(20);
    const unit: Record<string, Record<string, number>> = { hr: {}, ir: {}, co: {}, di: {} };
    const key = { holding: 'hr', input: 'ir', coil: 'co', discrete: 'di' } as const;
    for (const b of planReads(p.points, p.holes, { maxGap: 10, maxRegisters: p.maxRegistersPerRead })) {
      for (let a = b.start; a < b.start + b.count; a++) unit[key[b.register]]![String(a)] = 0;
    }
    const map = path.join(dir, 'map.json');
    fs.writeFileSync(map, JSON.stringify({ serial: dev, baudrate: 9600, units: { '1': unit } }));
    const server = spawn('/usr/bin/python3', [PYMODBUS_SERVER, map], { stdio: ['ignore', 'pipe', 'ignore'] });
    procs.push(server);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('pymodbus did not start')), 15000);
      server.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('READY')) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    const cfg = {
      site: { communityCode: '330106001001', gatewayId: 'gw-bench' },
      localBroker: { host: '127.0.0.1', port: 0, anonymous: 'loopback' },
      web: { host: '127.0.0.1', port: 0, https: false },
      storage: { path: path.join(dir, 'bench.db') },
      uplink: { url: 'mqtt://127.0.0.1:1884' },
      buses: [{ id: 'rs485', type: 'modbus-rtu', path: gw, baudRate: 9600 }],
      devices: [{ id: 'dev', facility: 'canteen', profile: p.id, bus: 'rs485', unitId: 1, pollMs: 3_600_000 }],
    };
    const r = parseSiteConfig(stringify(cfg), profiles);
    if (!r.ok) throw new Error(r.errors.join('; '));
    g = new Gateway(r.config, profiles, silentLogger());
    let scanned = false;
    g.events.on('scan', () => (scanned = true));
    await g.start();
    for (let i = 0; i < 250 && !scanned; i++) await sleep(20);
    if (!scanned) throw new Error('no scan completed');
    const s = g.buses.get('rs485')!.transport.stats;
    return s.txBytes + s.rxBytes;
  } finally {
    await g?.stop();
    for (const c of procs) c.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
