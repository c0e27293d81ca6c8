// A throwaway Mosquitto for the benchmarks: own temp dir, no persistence, one loopback
// listener on a free port. (bench/ is compiled on its own, so it cannot reuse test/helpers.)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, removeTempDir, tempDir, track, waitPort } from './util.js';

export const MOSQUITTO_BIN = '/usr/sbin/mosquitto';

export class BenchMosquitto {
  private constructor(
    readonly proc: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {}

  get pid(): number {
    return this.proc.pid!;
  }

  static async start(): Promise<BenchMosquitto> {
    for (let attempt = 1; ; attempt++) {
      const dir = tempDir('cgw-peers-mosq-');
      const port = await freePort();
      const conf = path.join(dir, 'mosquitto.conf');
      fs.writeFileSync(
        conf,
        [
          `listener ${port} 127.0.0.1`,
          'allow_anonymous true',
          'persistence false',
          // No silent drops: every message counts (0 = unlimited).
          'max_queued_messages 0',
          'max_inflight_messages 0',
          // As root mosquitto would drop to user "mosquitto"; stay root so the temp dir is ours.
          ...(process.getuid?.() === 0 ? ['user root'] : []),
          'log_dest stderr',
          'log_type error',
          '',
        ].join('\n'),
      );
      const proc = track(spawn(MOSQUITTO_BIN, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] }));
      let err = '';
      proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
      try {
        await Promise.race([
          waitPort(port, 10_000),
          new Promise((_, reject) => proc.once('exit', (c) => reject(new Error(`mosquitto exited (${c}): ${err}`)))),
        ]);
        return new BenchMosquitto(proc, port, dir);
      } catch (e) {
        proc.kill('SIGKILL');
        removeTempDir(dir);
        if (attempt >= 3) throw e;
      }
    }
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      await new Promise<void>((r) => {
        this.proc.once('exit', () => r());
        this.proc.kill('SIGTERM');
        setTimeout(() => this.proc.kill('SIGKILL'), 5000).unref();
      });
    }
    removeTempDir(this.dir);
  }
}

export function mosquittoVersion(): string {
  // `mosquitto -h` prints "mosquitto version X.Y.Z" (and exits non-zero).
  const r = spawnSync(MOSQUITTO_BIN, ['-h'], { encoding: 'utf8' });
  return /mosquitto version (\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
}
