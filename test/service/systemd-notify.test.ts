// SystemdNotifier against real AF_UNIX datagram sockets: a unix-dgram receiver bound to a temp
// path stands in for systemd's /run/systemd/notify; python3 receives on an abstract name.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { pino } from 'pino';
import type { Logger } from '../../src/log.js';
import { afterEach, describe, expect, it } from 'vitest';
import { SystemdNotifier } from '../../src/service/systemd-notify.js';
import { tmpDir } from '../helpers/peers.js';
import { receiver } from '../helpers/notify-socket.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(10);
  }
}

function captureLog(): { log: Logger; lines: () => Array<Record<string, unknown>> } {
  const raw: string[] = [];
  const log: Logger = pino({ level: 'debug' }, { write: (s: string) => raw.push(s) });
  return { log, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const cleanup: Array<() => void> = [];
afterEach(() => {
  while (cleanup.length) cleanup.pop()!();
});

describe('SystemdNotifier', () => {
  it('sends READY=1 with STATUS, STATUS and STOPPING=1 to the socket path', async () => {
    const rx = receiver();
    cleanup.push(rx.close);
    const n = new SystemdNotifier({ NOTIFY_SOCKET: rx.path });
    cleanup.push(() => n.close());
    expect(n.enabled).toBe(true);
    expect(n.watchdogMs).toBeNull();
    n.ready('7 devices, uplink connecting');
    n.status('draining\n1200 items');
    n.stopping();
    await until(() => rx.got.length >= 3);
    expect(rx.got).toEqual(['READY=1\nSTATUS=7 devices, uplink connecting', 'STATUS=draining 1200 items', 'STOPPING=1']);
  });

  it('pings WATCHDOG=1 while alive and stops for good after a reason, logged once', async () => {
    const rx = receiver();
    cleanup.push(rx.close);
    const { log, lines } = captureLog();
    const n = new SystemdNotifier(
      { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid) },
      log,
    );
    cleanup.push(() => n.close());
    expect(n.watchdogMs).toBe(200);
    let alive: true | string = true;
    let checks = 0;
    n.startWatchdog(() => {
      checks++;
      return alive;
    });
    // Immediately, then every 100 ms.
    await until(() => rx.got.filter((m) => m === 'WATCHDOG=1').length >= 4, 2000);
    alive = 'modbus loop stalled for 95 s';
    await until(() => rx.got.some((m) => m.startsWith('STATUS=stuck')), 2000);
    const pings = rx.got.filter((m) => m === 'WATCHDOG=1').length;
    const checksAtStop = checks;
    await sleep(450);
    expect(rx.got.filter((m) => m === 'WATCHDOG=1').length).toBe(pings);
    expect(checks).toBe(checksAtStop); // no more checks either: the timer is gone
    expect(rx.got.at(-1)).toBe('STATUS=stuck: modbus loop stalled for 95 s');
    const stuck = lines().filter((l) => l.reason === 'modbus loop stalled for 95 s');
    expect(stuck).toHaveLength(1);
    expect(stuck[0]!.level).toBe(50); // error
    expect(String(stuck[0]!.msg)).toMatch(/watchdog/);
  });

  it('treats false and a throwing check as not alive', async () => {
    const rx = receiver();
    cleanup.push(rx.close);
    const { log, lines } = captureLog();
    const n = new SystemdNotifier({ NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '200000' }, log);
    cleanup.push(() => n.close());
    expect(n.watchdogMs).toBe(200); // WATCHDOG_PID absent: the watchdog is ours
    n.startWatchdog(() => false);
    await until(() => rx.got.length >= 1);
    expect(rx.got).toEqual(['STATUS=stuck: not alive']);
    const m = new SystemdNotifier({ NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '200000' }, log);
    cleanup.push(() => m.close());
    m.startWatchdog(() => {
      throw new Error('boom');
    });
    await until(() => rx.got.length >= 2);
    expect(rx.got[1]).toBe('STATUS=stuck: liveness check failed: boom');
    expect(lines().filter((l) => l.level === 50)).toHaveLength(2);
  });

  it('has no watchdog when WATCHDOG_PID names another process', async () => {
    const rx = receiver();
    cleanup.push(rx.close);
    const n = new SystemdNotifier({ NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid + 1) });
    cleanup.push(() => n.close());
    expect(n.enabled).toBe(true);
    expect(n.watchdogMs).toBeNull();
    let checks = 0;
    n.startWatchdog(() => {
      checks++;
      return true;
    });
    await sleep(250);
    expect(checks).toBe(0);
    expect(rx.got).toEqual([]);
  });

  it('is a no-op without NOTIFY_SOCKET: no socket, no timer, no throw', async () => {
    const n = new SystemdNotifier({ WATCHDOG_USEC: '200000' });
    expect(n.enabled).toBe(false);
    expect(n.watchdogMs).toBeNull();
    let checks = 0;
    expect(() => {
      n.ready('x');
      n.status('y');
      n.startWatchdog(() => {
        checks++;
        return true;
      });
      n.stopping();
      n.close();
    }).not.toThrow();
    await sleep(150);
    expect(checks).toBe(0);
    const internals = n as unknown as { sock: unknown; timer: unknown };
    expect(internals.sock).toBeNull();
    expect(internals.timer).toBeNull();
    expect(new SystemdNotifier({}).enabled).toBe(false);
    expect(new SystemdNotifier({ NOTIFY_SOCKET: 'relative/path' }).enabled).toBe(false);
  });

  it('logs a send error instead of throwing, once per kind of failure', () => {
    const { log, lines } = captureLog();
    const n = new SystemdNotifier({ NOTIFY_SOCKET: path.join(tmpDir('cgw-notify-'), 'absent') }, log);
    cleanup.push(() => n.close());
    expect(() => {
      n.status('a');
      n.status('b');
      n.status('c');
    }).not.toThrow();
    const warns = lines().filter((l) => l.level === 40);
    expect(warns).toHaveLength(1);
    expect(String(warns[0]!.err)).toMatch(/ENOENT|ECONNREFUSED/);
  });

  it('sends to an abstract socket name ("@...")', async () => {
    const name = `cgw-notify-test-${process.pid}-${Date.now()}`;
    // python3 (a test peer already, for pymodbus) binds the abstract name on its own, so the
    // receiving side does not share the notifier's workaround for unix-dgram.
    const py: ChildProcess = spawn(
      'python3',
      [
        '-c',
        [
          'import json, socket, sys',
          's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
          "s.bind('\\0' + sys.argv[1])",
          "print('bound', flush=True)",
          'while True:',
          '    print(json.dumps(s.recv(4096).decode()), flush=True)',
        ].join('\n'),
        name,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    cleanup.push(() => py.kill());
    const out: string[] = [];
    let spawnError: Error | null = null;
    py.on('error', (err) => (spawnError = err));
    py.stdout!.setEncoding('utf8');
    let buffered = '';
    py.stdout!.on('data', (chunk: string) => {
      buffered += chunk;
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      out.push(...parts);
    });
    await until(() => out.includes('bound') || spawnError !== null, 5000);
    if (spawnError) throw new Error(`python3 is needed for this test (apt-get install python3): ${String(spawnError)}`);

    const { log, lines } = captureLog();
    const n = new SystemdNotifier({ NOTIFY_SOCKET: `@${name}`, WATCHDOG_USEC: '200000' }, log);
    cleanup.push(() => n.close());
    expect(n.enabled).toBe(true);
    n.ready('abstract ok');
    n.startWatchdog(() => true);
    await until(() => out.filter((l) => l === JSON.stringify('WATCHDOG=1')).length >= 2);
    expect(out[1]).toBe(JSON.stringify('READY=1\nSTATUS=abstract ok'));
    expect(lines().filter((l) => (l.level as number) >= 40)).toEqual([]);
  });
});
