// Small helpers shared by the peer benchmarks: ports, waiting, and per-process CPU and memory
// from /proc (Linux only), so that each figure is the process under test alone.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
let hooked = false;

/** If the benchmark exits early (an exception, Ctrl-C): kill what it started, remove its temp folders. */
function hook(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
}

/** Every process a benchmark starts is registered here, so that no simulator, broker or peer
 * is left behind. */
export function track<T extends ChildProcess>(proc: T): T {
  hook();
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}

/** A new folder under the system temp dir, removed by removeTempDir or at exit. */
export function tempDir(prefix: string): string {
  hook();
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.add(d);
  return d;
}

export function removeTempDir(d: string): void {
  fs.rmSync(d, { recursive: true, force: true });
  dirs.delete(d);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A free port below the kernel's ephemeral range (32768–60999 here), for a server that is
 * stopped and started again on the same port within a test (a gateway restart, a broker outage): between the
 * two, a parallel test's freePort() or outgoing connection could take an ephemeral one. */
export async function restartablePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

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

export async function waitPort(port: number, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.createConnection({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`port ${port} did not open within ${ms} ms`);
    await sleep(50);
  }
}

export async function waitFor(fn: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

const TICK = 100; // USER_HZ: clock ticks per second in /proc/<pid>/stat on Linux

/** User and system CPU seconds of one process (not its children), from /proc/<pid>/stat. */
export function cpuTimes(pid: number): { user: number; sys: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state (field 3).
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(rest[11]) / TICK, sys: Number(rest[12]) / TICK }; // utime (14), stime (15)
}

/** Times the main thread of `pid` went to sleep and was woken (voluntary context switches): on
 * a VM an idle CPU's wake-up costs more than a round of polls' work, so this explains CPU. */
export function wakeups(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? NaN);
}

/** User + system CPU seconds of one process. */
export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.sys;
}

/** Peak (VmHWM) and current (VmRSS) resident set size, and the current anonymous (heap,
 * allocator) and file-backed (the node binary, addons) parts, in MiB. */
export function memory(pid: number): { hwm: number; rss: number; anon: number; file: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN);
  return { hwm: kb('VmHWM') / 1024, rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024, file: kb('RssFile') / 1024 };
}

/** A running daemon's V8 heap (used, total) and Node's external memory (Buffers) in MiB, from
 * prom-client's default series on its /metrics; NaN when it does not answer. */
export async function daemonMemory(webPort: number): Promise<{ heapUsed: number; heapTotal: number; external: number }> {
  const text = await fetch(`http://127.0.0.1:${webPort}/metrics`).then((r) => r.text(), () => '');
  const get = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / 1048576;
  return { heapUsed: get('cgw_nodejs_heap_size_used_bytes'), heapTotal: get('cgw_nodejs_heap_size_total_bytes'), external: get('cgw_nodejs_external_memory_bytes') };
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** The port a child process announces as {"port":N} on stdout; rejects naming `what` if it exits first. */
export function announcedPort(proc: ChildProcess, what: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /\{"port":(\d+)\}/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    proc.once('exit', (c) => reject(new Error(`${what} exited (${c})`)));
  });
}
