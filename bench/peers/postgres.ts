// A throwaway PostgreSQL 15 cluster for the platform consumer's tests and benchmarks: initdb
// into a temp folder, pg_ctl start on a free loopback port, one database, trust auth on
// loopback only. As root it runs as the `postgres` user (initdb refuses root), so the folder
// is handed to that user. Debian's postgresql-15 package provides the binaries (.ci/run and
// test/setup-peers.sh install it).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { freePort, removeTempDir, tempDir } from './util.js';

export const PG_BIN = '/usr/lib/postgresql/15/bin';

const running = new Set<PgCluster>();
let hooked = false;

function hook(): void {
  if (hooked) return;
  hooked = true;
  // Never leave a server behind: a crashed test or bench stops its clusters here.
  process.once('exit', () => {
    for (const c of running) c.stopSync('immediate');
  });
}

export interface PgClusterOptions {
  /** Loopback port; default a free one. */
  port?: number;
  /** Extra server settings (name -> value), e.g. { max_connections: '200' }. */
  settings?: Record<string, string>;
}

export class PgCluster {
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly database: string,
    private readonly asUser: string | null,
  ) {}

  /** postgres://postgres@127.0.0.1:<port>/<database> */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${this.database}`;
  }

  /** A new, empty database in this cluster (a test's own: no rows carried over); its URL. */
  async createDatabase(name = `t${Math.random().toString(16).slice(2, 10)}`): Promise<string> {
    const admin = new pg.Client(this.url);
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    return this.url.replace(/\/[^/]+$/, `/${name}`);
  }

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  static available(): boolean {
    return fs.existsSync(path.join(PG_BIN, 'initdb')) && fs.existsSync(path.join(PG_BIN, 'pg_ctl'));
  }

  static async start(o: PgClusterOptions = {}): Promise<PgCluster> {
    if (!PgCluster.available()) throw new Error(`PostgreSQL 15 is not installed (${PG_BIN}/initdb): apt-get install -y postgresql-15`);
    hook();
    const dir = tempDir('cgw-pg-');
    const asUser = process.getuid?.() === 0 ? 'postgres' : null;
    if (asUser) {
      const pw = spawnSync('id', ['-u', asUser], { encoding: 'utf8' });
      const gid = spawnSync('id', ['-g', asUser], { encoding: 'utf8' });
      if (pw.status !== 0) throw new Error(`running as root, but there is no "${asUser}" user to run PostgreSQL as (apt-get install -y postgresql-15 creates it)`);
      fs.chownSync(dir, Number(pw.stdout.trim()), Number(gid.stdout.trim()));
    }
    const c = new PgCluster(dir, o.port ?? (await freePort()), 'cgw', asUser);
    c.run('initdb', ['-D', c.dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8', '--no-instructions']);
    const conf = [
      'listen_addresses = ' + "'127.0.0.1'",
      `port = ${c.port}`,
      `unix_socket_directories = '${dir}'`,
      // Durable as in production: what the consumer acknowledges must survive a crash.
      'fsync = on',
      'synchronous_commit = on',
      ...Object.entries(o.settings ?? {}).map(([k, v]) => `${k} = '${v}'`),
      '',
    ].join('\n');
    fs.appendFileSync(path.join(c.dataDir, 'postgresql.conf'), conf);
    c.startServer();
    running.add(c);
    c.run('psql', ['-h', '127.0.0.1', '-p', String(c.port), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-q', '-c', `CREATE DATABASE ${c.database}`]);
    return c;
  }

  /** pg_ctl stop; `immediate` is a crash (no checkpoint: recovery at the next start). */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    this.stopSync(mode);
  }

  stopSync(mode: 'fast' | 'immediate' = 'fast'): void {
    if (!running.has(this)) return;
    this.run('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', 'stop'], true);
    running.delete(this);
  }

  /** Starts the server again on the same folder and port (after stop()). */
  async restart(): Promise<void> {
    this.startServer();
    running.add(this);
  }

  /** Stops the server and removes its folder. */
  async destroy(): Promise<void> {
    this.stopSync('immediate');
    removeTempDir(this.dir);
  }

  private startServer(): void {
    this.run('pg_ctl', ['-D', this.dataDir, '-l', path.join(this.dir, 'server.log'), '-w', '-t', '60', 'start']);
  }

  private run(bin: string, args: string[], quiet = false): void {
    const cmd = path.join(PG_BIN, bin);
    const r = this.asUser ? spawnSync('runuser', ['-u', this.asUser, '--', cmd, ...args], { encoding: 'utf8', cwd: this.dir }) : spawnSync(cmd, args, { encoding: 'utf8', cwd: this.dir });
    if (r.status !== 0 && !quiet) {
      let log = '';
      try {
        log = fs.readFileSync(path.join(this.dir, 'server.log'), 'utf8').slice(-2000);
      } catch {
        /* no log yet */
      }
      throw new Error(`${bin} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}${log ? `\nserver.log:\n${log}` : ''}`);
    }
  }
}
