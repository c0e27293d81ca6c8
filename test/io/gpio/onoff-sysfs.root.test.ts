// The real onoff (and its epoll binding) against a fake /sys/class/gpio on a tmpfs, in a private
// mount namespace so nothing shows on the host. Edges cannot fire on tmpfs (epoll refuses regular
// files), so this checks the polling fallback, the sysfs files onoff writes, and counter persistence.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const DIST = path.resolve('dist/src/io/gpio');
const SRC = path.resolve('src/io/gpio');
const FIXTURE = path.resolve('test/fixtures/gpio/onoff-fake-sysfs.mjs');

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root for unshare -m (fake sysfs)';
  if (spawnSync('unshare', ['--version']).error) return 'needs unshare (util-linux) for the fake sysfs';
  const probe = spawnSync('unshare', ['-m', 'true'], { encoding: 'utf8' });
  if (probe.status !== 0) return `unshare -m is refused here (${probe.stderr.trim()}): needs CAP_SYS_ADMIN for the fake sysfs`;
  return null;
}
const skip = skipReason();

/** The child imports the built JS; a missing or older build would test the wrong code. */
function checkDist(): void {
  for (const f of fs.readdirSync(SRC).filter((n) => n.endsWith('.ts'))) {
    const js = path.join(DIST, f.replace(/\.ts$/, '.js'));
    if (!fs.existsSync(js)) throw new Error(`${js} is missing: build first (npx tsc -p tsconfig.json; npm test does this)`);
    if (fs.statSync(js).mtimeMs < fs.statSync(path.join(SRC, f)).mtimeMs) throw new Error(`${js} is older than src/io/gpio/${f}: rebuild (npx tsc -p tsconfig.json)`);
  }
}

interface Result {
  unavailable: string | null;
  resolved: number;
  contactStart: { mode: string; number: number; level: number };
  activeLowWhileOpen: string;
  direction: string;
  edge: string;
  afterRise: boolean[];
  afterGlitch: boolean[];
  door: boolean[];
  contactStopped: string;
  unexported: string;
  activeLowCounter: string;
  run1: number[];
  storedAfterRun1: Record<string, number>;
  run2: number[];
  storedAfterRun2: Record<string, number>;
  absent: string;
  absentStats: { mode: string; lastError: string };
  logs: string[];
}

describe('onoff on a fake sysfs (root)', () => {
  it.skipIf(skip !== null)(`real onoff: resolve, open, polling fallback, debounce, counter restart${skip ? ` [skipped: ${skip}]` : ''}`, () => {
    checkDist();
    // --make-rprivate first: otherwise the tmpfs could propagate to the host's /sys/class.
    const r = spawnSync(
      'unshare',
      ['-m', 'sh', '-c', 'mount --make-rprivate / && mount -t tmpfs none /sys/class && exec node "$0" "$1"', FIXTURE, DIST],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(r.stderr, 'child stderr').toBe('');
    expect(r.status, `child exit (stdout: ${r.stdout})`).toBe(0);
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Result;

    expect(res.unavailable).toBeNull();
    expect(res.resolved).toBe(529);
    // epoll refuses the tmpfs value file, so the input polls.
    expect(res.contactStart).toMatchObject({ mode: 'polling', number: 529, level: 0 });
    expect(res.logs[0]).toBe('gpio door-1: edge interrupts unavailable (epoll on /sys/class/gpio/gpio529/value failed: Operation not permitted), polling every 10 ms');
    expect(res.activeLowWhileOpen).toBe('1');
    expect(res.direction).toBe('in');
    expect(res.edge).toBe('both');
    expect(res.afterRise).toEqual([false, true]);
    expect(res.afterGlitch).toEqual([false, true]); // the 20 ms dip was not reported
    expect(res.door).toEqual([false, true, false]);
    expect(res.contactStopped).toBe('stopped');
    expect(res.unexported).toBe('529');

    expect(res.activeLowCounter).toBe('0');
    expect(res.run1).toEqual([0, 1, 2, 3]);
    expect(res.storedAfterRun1).toEqual({ 'meter-1': 3 });
    expect(res.run2).toEqual([3, 4]);
    expect(res.storedAfterRun2).toEqual({ 'meter-1': 4 });

    expect(res.absent).toBe('/sys/class/gpio is absent: this kernel has no sysfs GPIO (Raspberry Pi 5 on current Raspberry Pi OS); GPIO inputs are disabled');
    expect(res.absentStats.mode).toBe('unavailable');
    expect(res.absentStats.lastError).toContain('/sys/class/gpio is absent');
  });
});
