// Clock synchronisation state from the OS: timesyncd's flag file on a real file system, the
// command parsers with the daemons' real output formats, and auto's choice.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClockSync, parseChronyTracking, parseTimedatectl, resolveSyncSource } from '../../src/time/clock-sync.js';
import { tmpDir, waitFor } from '../helpers/peers.js';

let sync: ClockSync | null = null;
afterEach(() => {
  sync?.stop();
  sync = null;
});

/** Runs fn with `bin` first on the PATH (where ClockSync finds chronyc). */
async function withPath(bin: string, fn: () => Promise<void>): Promise<void> {
  const old = process.env.PATH;
  process.env.PATH = `${bin}:${old}`;
  try {
    await fn();
  } finally {
    process.env.PATH = old;
  }
}

describe('ClockSync', () => {
  it('timesyncd: unsynchronised until the flag file appears, and says so when it changes', async () => {
    const dir = tmpDir('cgw-timesync-');
    const flag = path.join(dir, 'synchronized');
    sync = new ClockSync({ sync: 'timesyncd', syncFile: flag });
    const changes: (boolean | null)[] = [];
    sync.onChange((v) => changes.push(v));
    sync.start();
    expect(sync.source).toBe('timesyncd');
    expect(sync.synchronized).toBe(false);
    fs.writeFileSync(flag, '');
    await waitFor(() => sync!.synchronized === true, 5000, 'synchronised');
    expect(changes).toEqual([false, true]);
  });

  it('auto: timesyncd when its runtime folder exists, chrony when chronyc is on the PATH, else none (unknown)', () => {
    const dir = tmpDir('cgw-timesync-');
    expect(resolveSyncSource({ sync: 'auto', syncFile: path.join(dir, 'synchronized') })).toBe('timesyncd');
    const bin = tmpDir('cgw-bin-');
    fs.writeFileSync(path.join(bin, 'chronyc'), '#!/bin/sh\n', { mode: 0o755 });
    expect(resolveSyncSource({ sync: 'auto', syncFile: '/nonexistent/timesync/synchronized' }, { PATH: bin })).toBe('chrony');
    expect(resolveSyncSource({ sync: 'auto', syncFile: '/nonexistent/timesync/synchronized' }, { PATH: path.join(bin, 'none') })).toBe('none');
    const none = new ClockSync({ sync: 'none', syncFile: '/x' });
    none.start();
    expect(none.synchronized).toBeNull();
  });

  it('reads chronyc tracking and timedatectl output', () => {
    expect(parseChronyTracking('Reference ID    : 00000000 ()\nStratum         : 0\nLeap status     : Not synchronised\n')).toBe(false);
    expect(parseChronyTracking('Reference ID    : C0A80001 (192.168.0.1)\nLeap status     : Normal\n')).toBe(true);
    expect(parseChronyTracking('506 Cannot talk to daemon\n')).toBeNull();
    expect(parseTimedatectl('yes\n')).toBe(true);
    expect(parseTimedatectl('no\n')).toBe(false);
    expect(parseTimedatectl('')).toBeNull();
  });

  it('chrony: asks chronyc tracking; a command that fails leaves the state unknown, not unsynchronised', async () => {
    const bin = tmpDir('cgw-bin-');
    fs.writeFileSync(path.join(bin, 'chronyc'), '#!/bin/sh\n[ "$1 $2" = "-n tracking" ] && echo "Leap status     : Normal"\n', { mode: 0o755 });
    await withPath(bin, async () => {
      sync = new ClockSync({ sync: 'chrony', syncFile: '/x' });
      sync.start();
      await waitFor(() => sync!.synchronized === true, 5000, 'chrony says synchronised');
      sync.stop();
    });
    fs.writeFileSync(path.join(bin, 'chronyc'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    await withPath(bin, async () => {
      sync = new ClockSync({ sync: 'chrony', syncFile: '/x' });
      sync.start();
      await new Promise((r) => setTimeout(r, 300));
      expect(sync.synchronized).toBeNull();
    });
  });
});
