// The fleet benchmark's Mosquitto: persistence on (the consumers' persistent sessions and the
// QoS 1 messages queued for them survive the outage's restart), one loopback listener on a
// fixed port below the ephemeral range, so that it can be stopped for the outage and started
// again on the same port. Its CPU is kept across restarts (each run's process adds its own).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MOSQUITTO_BIN } from '../peers/mosquitto.js';
import { cpuSeconds, restartablePort, tempDir, track, waitPort } from '../peers/util.js';

export class FleetBroker {
  private proc: ChildProcess | null = null;
  private cpuDone = 0;
  private err = '';
  readonly dir = tempDir('cgw-fleet-mosq-');

  private constructor(readonly port: number) {}

  static async start(): Promise<FleetBroker> {
    const b = new FleetBroker(await restartablePort());
    fs.writeFileSync(
      path.join(b.dir, 'mosquitto.conf'),
      [
        `listener ${b.port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence true',
        `persistence_location ${b.dir}/`,
        // No silent drops: every message counts (0 = unlimited).
        'max_queued_messages 0',
        'max_inflight_messages 0',
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        'log_dest stderr',
        'log_type error',
        '',
      ].join('\n'),
    );
    await b.run();
    return b;
  }

  get pid(): number | null {
    return this.proc?.pid ?? null;
  }

  get running(): boolean {
    return this.proc !== null;
  }

  /** CPU seconds of every Mosquitto process this broker has been so far. */
  cpu(): number {
    let now = 0;
    try {
      if (this.proc?.pid) now = cpuSeconds(this.proc.pid);
    } catch {
      /* exiting */
    }
    return this.cpuDone + now;
  }

  async run(): Promise<void> {
    const proc = track(spawn(MOSQUITTO_BIN, ['-c', path.join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] }));
    proc.stderr!.on('data', (d: Buffer) => (this.err = (this.err + d.toString()).slice(-4000)));
    this.proc = proc;
    await Promise.race([
      waitPort(this.port, 20_000),
      new Promise((_, reject) => proc.once('exit', (c) => reject(new Error(`mosquitto exited (${c}): ${this.err}`)))),
    ]);
  }

  /** SIGTERM: Mosquitto saves its persistence file and exits. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    try {
      this.cpuDone += cpuSeconds(p.pid!);
    } catch {
      /* gone */
    }
    this.proc = null;
    if (p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGTERM');
      setTimeout(() => p.kill('SIGKILL'), 10_000).unref();
    });
  }
}
