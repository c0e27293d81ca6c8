// A virtual RS-485 line: socat joins two ptys, the gateway opens one end and the device (a
// pymodbus RTU server or a scripted responder) the other. With `monitor`, socat's hex dump
// (-x) records every transfer with its direction, so a test can check the frames on the wire.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir, waitFor } from './peers.js';

export interface WireChunk {
  /** 'gw' = written by the gateway's end (A), 'dev' = written by the device's end (B). */
  from: 'gw' | 'dev';
  bytes: Buffer;
}

export class SocatLine {
  proc: ChildProcess | null = null;
  readonly a: string;
  readonly b: string;
  private dump = '';

  constructor(dir = tmpDir('cgw-rtu-')) {
    this.a = path.join(dir, 'gw');
    this.b = path.join(dir, 'dev');
  }

  static async start(opts: { monitor?: boolean } = {}): Promise<SocatLine> {
    const l = new SocatLine();
    await l.start(opts);
    return l;
  }

  async start(opts: { monitor?: boolean } = {}): Promise<void> {
    for (const f of [this.a, this.b]) fs.rmSync(f, { force: true });
    this.dump = '';
    const args = [...(opts.monitor ? ['-x'] : []), `pty,raw,echo=0,link=${this.a}`, `pty,raw,echo=0,link=${this.b}`];
    const proc = spawn('socat', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    proc.stderr!.on('data', (d: Buffer) => {
      this.dump += d.toString();
    });
    await waitFor(() => fs.existsSync(this.a) && fs.existsSync(this.b), 5000, 'socat ptys');
  }

  /** Kills socat: both ptys vanish, as when a USB adapter is unplugged. */
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  /** Transfers seen so far, in order. socat -x prints "> date length=N from=.. to=.." (left
   * to right, A to B: the gateway writing) or "<" (B to A) and then the bytes in hex. */
  chunks(): WireChunk[] {
    const out: WireChunk[] = [];
    const lines = this.dump.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const m = /^([<>]) \S+ \S+\s+length=(\d+)/.exec(lines[i]!);
      if (!m) continue;
      const hex: string[] = [];
      for (let j = i + 1; j < lines.length && /^ [0-9a-f]{2}( |$)/.test(lines[j]!); j++) hex.push(lines[j]!.trim());
      const bytes = Buffer.from(hex.join(' ').replace(/\s+/g, ''), 'hex');
      if (bytes.length === Number(m[2])) out.push({ from: m[1] === '>' ? 'gw' : 'dev', bytes });
    }
    return out;
  }
}
