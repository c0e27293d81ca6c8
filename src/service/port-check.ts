// Before the daemon opens anything, every address it will listen on is tried: a second
// instance that clashes on one port must not first start its broker, simulator and uplink (the
// uplink would take the running instance's MQTT client id and knock it off the platform).
import fs from 'node:fs';
import net from 'node:net';

export interface Listener {
  /** As the listener names itself in its own error ("web server", "local broker", ...). */
  what: string;
  host: string;
  port: number;
}

export interface BusyListener extends Listener {
  /** EADDRINUSE, EACCES (a port below 1024), EADDRNOTAVAIL (no such address on this box). */
  code: string;
  /** Who holds the port ("held by pid 1234: node ..."), when this process can see it. */
  holder?: string;
}

/** Binds every listener (port 0 means "any" and is skipped) and closes them all again; returns
 * those that could not bind. All probes are held open together, so two listeners of the same
 * config on one port are found too. A race remains between this probe and the real bind (another
 * process may take a port in between): harmless, that start then fails on the real bind as it
 * did before, only later. */
export async function busyListeners(listeners: readonly Listener[]): Promise<BusyListener[]> {
  const open: { l: Listener; server: net.Server }[] = [];
  const busy: BusyListener[] = [];
  try {
    for (const l of listeners) {
      if (l.port === 0) continue;
      const server = net.createServer();
      const code = await new Promise<string | null>((resolve) => {
        server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
        server.listen({ port: l.port, host: l.host, exclusive: true }, () => resolve(null));
      });
      if (code === null) {
        open.push({ l, server });
        continue;
      }
      const ours = open.find((o) => o.l.port === l.port);
      const pid = !ours && code === 'EADDRINUSE' ? portHolder(l.port) : undefined;
      busy.push({ ...l, code, holder: ours ? `this config puts its ${ours.l.what} on ${ours.l.host}:${ours.l.port} too` : pid && `held by ${pid}` });
    }
  } finally {
    await Promise.all(open.map((o) => new Promise((resolve) => o.server.close(resolve))));
  }
  return busy;
}

/** One message naming every busy listener (the format of each listener's own bind error). */
export function busyMessage(busy: readonly BusyListener[]): string {
  const lines = busy.map((b) => {
    const who = b.holder ?? (b.code === 'EADDRINUSE' ? `held by a process this user cannot see (as root: ss -ltnp 'sport = :${b.port}')` : undefined);
    return `  ${b.what} cannot listen on ${b.host}:${b.port}: ${b.code}${who ? ` (${who})` : ''}`;
  });
  return `${busy.length === 1 ? 'a port is' : `${busy.length} ports are`} not available, nothing was started:\n${lines.join('\n')}`;
}

/** The process listening on TCP `port`, from /proc (Linux): "pid 1234: node dist/src/cli.js run".
 * Another user's process shows only to root; undefined when not found. */
export function portHolder(port: number, proc = '/proc'): string | undefined {
  const inodes = new Set<string>();
  for (const table of ['net/tcp', 'net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(`${proc}/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st ... inode; st 0A = LISTEN.
      if (f.length < 10 || f[3] !== '0A') continue;
      if (Number.parseInt(f[1]!.split(':').at(-1)!, 16) === port && f[9] !== '0') inodes.add(f[9]!);
    }
  }
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = fs.readdirSync(proc).filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`${proc}/${pid}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = fs.readlinkSync(`${proc}/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1]!)) return `pid ${pid}: ${commandLine(`${proc}/${pid}`)}`;
    }
  }
  return undefined;
}

function commandLine(dir: string): string {
  try {
    const argv = fs.readFileSync(`${dir}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    return argv.length > 160 ? `${argv.slice(0, 157)}...` : argv || '?';
  } catch {
    return '?';
  }
}
