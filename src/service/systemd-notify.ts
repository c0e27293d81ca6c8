// sd_notify(3) without libsystemd: READY=1, STATUS=, STOPPING=1 and WATCHDOG=1 datagrams to the
// AF_UNIX SOCK_DGRAM socket systemd names in $NOTIFY_SOCKET (Type=notify, WatchdogSec=; see
// systemd/community-gateway.service). Node has no AF_UNIX datagram sockets, so the `unix-dgram`
// addon sends them; it is loaded only when NOTIFY_SOCKET is set.
//
// Abstract socket names ("@name", a leading NUL byte on the wire): unix-dgram copies the address
// with strncpy and pads it to the full sockaddr_un, so it cannot name an abstract socket. For
// those, a short-lived `perl` (perl-base is Essential in Debian) connect()s our own socket,
// inherited as fd 3, to the abstract address; the socket stays connected and node sends on it,
// so the datagrams still come from the main PID (NotifyAccess=main). systemd itself uses a path
// (/run/systemd/notify); abstract names come from some container managers and test harnesses.
import { spawnSync } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { getSystemErrorName } from 'node:util';
import type { Logger } from '../log.js';

/** The part of unix-dgram's Socket used here (the package ships no types). */
interface DgramSocket extends EventEmitter {
  fd: number;
  connected?: boolean;
  send(buf: Buffer, callback: (err?: Error) => void): void;
  send(buf: Buffer, offset: number, length: number, path: string, callback: (err?: Error) => void): void;
  close(): void;
}

interface UnixDgram {
  createSocket(type: 'unix_dgram'): DgramSocket;
}

let unixDgram: UnixDgram | undefined;

function loadUnixDgram(): UnixDgram {
  unixDgram ??= createRequire(import.meta.url)('unix-dgram') as UnixDgram;
  return unixDgram;
}

/** sockaddr_un.sun_path holds 108 bytes; a path needs its NUL, an abstract name its leading NUL. */
const SUN_PATH_MAX = 107;

/** unix-dgram reports errors as "send -111"; turn the errno into its name. */
function describe(err: unknown): string {
  const e = err as { errno?: unknown; syscall?: unknown; message?: unknown };
  if (typeof e.errno === 'number' && e.errno < 0) {
    try {
      return `${String(e.syscall ?? 'socket')} ${getSystemErrorName(e.errno)}`;
    } catch {
      // not a known errno
    }
  }
  return String(e.message ?? err);
}

/** A NOTIFY_SOCKET value is one line of text per field: no newlines inside a field. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

/**
 * Connects (or binds) a socket this process owns to an abstract AF_UNIX name, by letting perl do
 * the connect() on the inherited descriptor. Throws with perl's reason when it fails.
 */
export function abstractSocketOp(fd: number, op: 'connect' | 'bind', name: string): void {
  const script =
    'use Socket; open(my $s, "+<&=3") or die "fd 3: $!\\n"; ' +
    `${op}($s, pack_sockaddr_un("\\0" . $ARGV[0])) or die "${op} \\@$ARGV[0]: $!\\n";`;
  const r = spawnSync('perl', ['-e', script, name], {
    stdio: ['ignore', 'ignore', 'pipe', fd],
    timeout: 5000,
    encoding: 'utf8',
  });
  if (r.error) throw new Error(`${op} @${name}: perl: ${r.error.message}`);
  if (r.status !== 0) throw new Error(r.stderr.trim() || `${op} @${name}: perl exited ${String(r.status ?? r.signal)}`);
}

export class SystemdNotifier {
  /** Socket path, or the abstract name without its "@". Null when disabled. */
  private readonly address: string | null = null;
  private readonly abstract: boolean = false;
  private readonly wdMs: number | null = null;
  private sock: DgramSocket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** The last send/open failure, logged once until a send works again. */
  private lastError: string | null = null;

  constructor(
    env: NodeJS.ProcessEnv = process.env,
    private readonly log?: Logger,
  ) {
    const raw = env.NOTIFY_SOCKET;
    if (!raw) return;
    const abstract = raw.startsWith('@');
    const address = abstract ? raw.slice(1) : raw;
    if (!abstract && !raw.startsWith('/')) {
      log?.warn({ NOTIFY_SOCKET: raw }, 'sd_notify: NOTIFY_SOCKET is neither an absolute path nor @name; not notifying systemd');
      return;
    }
    if (address.length === 0 || Buffer.byteLength(address) > SUN_PATH_MAX) {
      log?.warn({ NOTIFY_SOCKET: raw }, 'sd_notify: NOTIFY_SOCKET is empty or too long for a socket address; not notifying systemd');
      return;
    }
    this.address = address;
    this.abstract = abstract;

    const usec = Number(env.WATCHDOG_USEC);
    const pid = env.WATCHDOG_PID;
    const forUs = pid === undefined || pid === '' || Number(pid) === process.pid;
    if (Number.isSafeInteger(usec) && usec > 0 && forUs) this.wdMs = Math.max(1, Math.floor(usec / 1000));
  }

  /** True when started by systemd with Type=notify (NOTIFY_SOCKET set). */
  get enabled(): boolean {
    return this.address !== null;
  }

  /** WatchdogSec in ms when the watchdog is on for this process (WATCHDOG_USEC, and WATCHDOG_PID absent or equal to process.pid), else null. */
  get watchdogMs(): number | null {
    return this.wdMs;
  }

  /** READY=1: start-up is complete (with an optional STATUS= line for `systemctl status`). */
  ready(status?: string): void {
    this.send(status === undefined ? 'READY=1' : `READY=1\nSTATUS=${oneLine(status)}`);
  }

  /** STATUS=: free text shown by `systemctl status`. */
  status(text: string): void {
    this.send(`STATUS=${oneLine(text)}`);
  }

  /** STOPPING=1: a clean stop has begun. The watchdog pings end here too. */
  stopping(): void {
    this.stopWatchdog();
    this.send('STOPPING=1');
  }

  /**
   * Pings WATCHDOG=1 now and every watchdogMs/2, but only while isAlive() returns true; when it
   * returns false or a reason, the pings stop for good (so systemd kills and restarts the daemon
   * after WatchdogSec) and the reason is logged once and shown as STATUS=. A no-op without a
   * watchdog for this process. Calling it again replaces the previous check.
   */
  startWatchdog(isAlive: () => boolean | string): void {
    this.stopWatchdog();
    if (this.wdMs === null || this.closed) {
      this.log?.debug({ enabled: this.enabled }, 'sd_notify: no watchdog for this process');
      return;
    }
    const everyMs = Math.max(1, Math.floor(this.wdMs / 2));
    const tick = (): void => {
      let verdict: boolean | string;
      try {
        verdict = isAlive();
      } catch (err) {
        verdict = `liveness check failed: ${(err as Error).message}`;
      }
      if (verdict === true) {
        this.send('WATCHDOG=1');
        return;
      }
      this.stopWatchdog();
      const reason = typeof verdict === 'string' && verdict !== '' ? verdict : 'not alive';
      this.log?.error(
        { reason, watchdogMs: this.wdMs },
        'watchdog: stopped pinging systemd; it will restart the daemon after WatchdogSec',
      );
      this.send(`STATUS=stuck: ${oneLine(reason)}`);
    };
    this.timer = setInterval(tick, everyMs);
    this.timer.unref();
    tick();
  }

  /** Stops the watchdog pings and closes the socket; later calls are no-ops. */
  close(): void {
    this.stopWatchdog();
    this.closed = true;
    this.dropSocket();
  }

  private stopWatchdog(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private send(message: string): void {
    if (this.address === null || this.closed) return;
    const sock = this.open();
    if (!sock) return;
    const buf = Buffer.from(message);
    const done = (err?: Error): void => {
      if (err) {
        this.failed(describe(err), message.split('\n')[0]);
        // A connected (abstract) socket stays refused once the receiver went away: reconnect next time.
        if (this.abstract) this.dropSocket();
      } else if (this.lastError !== null) {
        this.log?.info({ NOTIFY_SOCKET: this.label() }, 'sd_notify: sending works again');
        this.lastError = null;
      }
    };
    try {
      if (this.abstract) sock.send(buf, done);
      else sock.send(buf, 0, buf.length, this.address, done);
    } catch (err) {
      done(err as Error);
    }
  }

  /** The socket, opened on first use. Null (and logged) when it cannot be opened. */
  private open(): DgramSocket | null {
    if (this.sock) return this.sock;
    let sock: DgramSocket | null = null;
    try {
      sock = loadUnixDgram().createSocket('unix_dgram');
      // Errors without a callback would be thrown as 'error' events; every send has a callback.
      sock.on('error', (err: Error) => this.failed(describe(err)));
      if (this.abstract && this.address !== null) {
        abstractSocketOp(sock.fd, 'connect', this.address);
        sock.connected = true;
      }
      this.sock = sock;
      return sock;
    } catch (err) {
      this.failed(`open: ${describe(err)}`);
      try {
        sock?.close();
      } catch {
        // already closed
      }
      return null;
    }
  }

  private dropSocket(): void {
    const sock = this.sock;
    this.sock = null;
    try {
      sock?.close();
    } catch (err) {
      this.log?.debug({ err: describe(err) }, 'sd_notify: closing the socket failed');
    }
  }

  /** Logs a failure once: repeats of the same error (a watchdog ping every 15 s) stay quiet. */
  private failed(reason: string, sending?: string): void {
    if (reason === this.lastError) return;
    this.lastError = reason;
    this.log?.warn({ NOTIFY_SOCKET: this.label(), err: reason, sending }, 'sd_notify: could not notify systemd');
  }

  private label(): string {
    return this.abstract ? `@${this.address ?? ''}` : (this.address ?? '');
  }
}
