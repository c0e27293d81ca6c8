// A real Mosquitto 2.0 broker for tests: own temp dir (config, persistence db, log), plain listener on
// 127.0.0.1 and optionally a mutual-TLS listener. Never uses port 1883 or the system service.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { restartablePort, sleep, tmpDir, waitForPort } from './peers.js';

export const MOSQUITTO_BIN = '/usr/sbin/mosquitto';

export interface MosquittoOptions {
  /** Persist sessions/queues/retained messages to `<dir>/mosquitto.db` (autosave every second, and on SIGTERM). Default true. */
  persistence?: boolean;
  tls?: {
    caFile: string;
    certFile: string;
    keyFile: string;
    /** Require a client certificate signed by caFile. Default true. */
    requireCertificate?: boolean;
  };
  /** Plain listener port on 127.0.0.1; default a free port. */
  port?: number;
  /** TLS listener port on 127.0.0.1 (only with `tls`); default a free port. */
  tlsPort?: number;
}

const instances = new Set<Mosquitto>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort if a worker exits without afterAll(stopAll): never leave brokers behind.
  process.once('exit', () => {
    for (const m of instances) m.killSync();
  });
}

export class Mosquitto {
  readonly conf: string;
  private proc: ChildProcess | null = null;
  private output = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly tlsPort: number | undefined,
    private readonly opts: MosquittoOptions,
  ) {
    this.conf = path.join(dir, 'mosquitto.conf');
  }

  static async start(opts: MosquittoOptions = {}): Promise<Mosquitto> {
    installExitHook();
    // Free ports are picked then released, so another process may grab one before mosquitto binds it:
    // retry a few times with new ports when the caller did not fix them. Below the ephemeral
    // range, because restart() binds the same ports again after an outage.
    const fixedPorts = opts.port !== undefined && (!opts.tls || opts.tlsPort !== undefined);
    for (let attempt = 1; ; attempt++) {
      const port = opts.port ?? (await restartablePort());
      let tlsPort = opts.tls ? (opts.tlsPort ?? (await restartablePort())) : undefined;
      while (opts.tls && opts.tlsPort === undefined && tlsPort === port) tlsPort = await restartablePort();
      const m = new Mosquitto(tmpDir('cgw-mosq-'), port, tlsPort, opts);
      m.writeConfig();
      instances.add(m);
      try {
        await m.launch();
        return m;
      } catch (e) {
        instances.delete(m);
        if (fixedPorts || attempt >= 3 || !/Address already in use/i.test(m.log())) throw e;
      }
    }
  }

  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get pid(): number | undefined {
    return this.running ? this.proc!.pid : undefined;
  }

  /** Mosquitto's log file plus anything it printed on stdout/stderr (config errors go there). */
  log(): string {
    let file = '';
    try {
      file = fs.readFileSync(path.join(this.dir, 'mosquitto.log'), 'utf8');
    } catch {
      // not created yet
    }
    return this.output ? `${file}\n--- stdout/stderr ---\n${this.output}` : file;
  }

  /** Stop and wait for exit. SIGTERM (default) makes mosquitto save its persistence db first. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p) return;
    if (p.exitCode === null && p.signalCode === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
        p.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        p.kill(signal);
      });
    }
    this.proc = null;
  }

  /** Stop (SIGTERM) if running, then start again with the same config, ports and persistence db. */
  async restart(): Promise<void> {
    await this.stop('SIGTERM');
    instances.add(this);
    await this.launch();
  }

  /** Synchronous SIGKILL, for process-exit cleanup. */
  killSync(): void {
    if (this.running) this.proc!.kill('SIGKILL');
  }

  private writeConfig(): void {
    const persistence = this.opts.persistence ?? true;
    const lines = [
      'per_listener_settings false',
      'allow_anonymous true',
      // As root mosquitto would drop to user "mosquitto", which cannot reach our 0700 temp dir or 0600 keys.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      `listener ${this.port} 127.0.0.1`,
    ];
    const tls = this.opts.tls;
    if (tls) {
      lines.push(
        `listener ${this.tlsPort} 127.0.0.1`,
        `cafile ${path.resolve(tls.caFile)}`,
        `certfile ${path.resolve(tls.certFile)}`,
        `keyfile ${path.resolve(tls.keyFile)}`,
        `require_certificate ${tls.requireCertificate ?? true}`,
        // Minimum version in 2.0 (TLS 1.3 also allowed).
        'tls_version tlsv1.2',
      );
    }
    if (persistence) {
      lines.push('persistence true', `persistence_location ${this.dir}/`, 'autosave_interval 1');
    } else {
      lines.push('persistence false');
    }
    lines.push(
      // 0 = unlimited: a consumer's persistent session must not drop a gateway backlog.
      'max_queued_messages 0',
      // 0 = no maximum (default 20).
      'max_inflight_messages 0',
      `log_dest file ${path.join(this.dir, 'mosquitto.log')}`,
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'connection_messages true',
      'log_timestamp_format %Y-%m-%dT%H:%M:%S',
      '',
    );
    fs.writeFileSync(this.conf, lines.join('\n'));
  }

  private async launch(): Promise<void> {
    let logOffset = 0;
    try {
      logOffset = fs.statSync(path.join(this.dir, 'mosquitto.log')).size;
    } catch {
      // first start
    }
    const proc = spawn(MOSQUITTO_BIN, ['-c', this.conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const collect = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-8000);
    };
    proc.stdout!.on('data', collect);
    proc.stderr!.on('data', collect);
    const exited = new Promise<'exited'>((resolve) => {
      proc.once('exit', () => resolve('exited'));
      proc.once('error', (e) => {
        this.output += `\nspawn error: ${e.message}`;
        resolve('exited');
      });
    });
    const ready = (async () => {
      await waitForPort(this.port, 10_000);
      if (this.tlsPort !== undefined) await waitForPort(this.tlsPort, 10_000);
      // Someone else could own a port we picked; mosquitto logs "running" only once all its listeners are bound.
      const logFile = path.join(this.dir, 'mosquitto.log');
      const from = logOffset;
      for (const until = Date.now() + 10_000; ; ) {
        let text = '';
        try {
          text = fs.readFileSync(logFile).subarray(from).toString('utf8');
        } catch {
          // not created yet
        }
        if (/mosquitto version \S+ running/.test(text)) break;
        if (Date.now() > until) throw new Error('no "running" line in the log');
        await sleep(25);
      }
      return 'ready' as const;
    })();
    ready.catch(() => undefined);
    try {
      const first = await Promise.race([ready, exited]);
      // The ports answering is only proof if our process is still the one alive.
      if (first === 'exited' || !this.running) throw new Error('exited');
    } catch (e) {
      await this.stop('SIGKILL');
      await sleep(20);
      const why = (e as Error).message === 'exited' ? `exited early (code ${proc.exitCode}, signal ${proc.signalCode})` : (e as Error).message;
      throw new Error(`mosquitto on ${this.port}${this.tlsPort ? `/${this.tlsPort}` : ''} failed to start: ${why}\n${this.log()}`);
    }
  }
}

/** Stop every broker started by this module (for afterAll). */
export async function stopAll(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  const all = [...instances];
  instances.clear();
  await Promise.all(all.map((m) => m.stop(signal)));
}
