// Whether the box's wall clock is synchronised (a Raspberry Pi has no RTC: it boots with the
// time saved at shutdown, often days old, until NTP answers). Read from the time daemon the
// OS runs: systemd-timesyncd's flag file (/run is a tmpfs, so the file exists only once this
// boot has synced), `timedatectl show -p NTPSynchronized`, or chrony's leap status.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export type ClockSyncSource = 'timesyncd' | 'timedatectl' | 'chrony' | 'none';
export type ClockSyncSetting = ClockSyncSource | 'auto';

export interface ClockSyncOptions {
  sync: ClockSyncSetting;
  /** systemd-timesyncd's flag (systemd >= 239 touches it at each sync). */
  syncFile: string;
}

/** Asking a command costs a fork: every 30 s; the flag file is a stat: every 2 s. */
const COMMAND_EVERY_MS = 30_000;
const FILE_EVERY_MS = 2_000;

/** `auto`: timesyncd when its runtime folder exists (it is running), else chrony when chronyc
 * is on the PATH, else none (the state is then unknown, null, and nothing is flagged). */
export function resolveSyncSource(o: ClockSyncOptions, env: NodeJS.ProcessEnv = process.env): ClockSyncSource {
  if (o.sync !== 'auto') return o.sync;
  if (fs.existsSync(path.dirname(o.syncFile))) return 'timesyncd';
  const dirs = (env.PATH ?? '/usr/bin:/bin').split(':');
  if (dirs.some((d) => d && fs.existsSync(path.join(d, 'chronyc')))) return 'chrony';
  return 'none';
}

/** chronyc tracking's "Leap status : Normal" means synchronised; "Not synchronised" not. */
export function parseChronyTracking(out: string): boolean | null {
  const m = /^Leap status\s*:\s*(.+)$/m.exec(out);
  if (!m) return null;
  return !/not synchronised/i.test(m[1]!);
}

/** timedatectl show -p NTPSynchronized --value: "yes" or "no". */
export function parseTimedatectl(out: string): boolean | null {
  const v = out.trim();
  return v === 'yes' ? true : v === 'no' ? false : null;
}

export class ClockSync {
  /** Resolved in start() (auto looks at the file system). */
  source: ClockSyncSource = 'none';
  /** null: unknown (no source, or the source has not answered yet). */
  synchronized: boolean | null = null;
  private timer: NodeJS.Timeout | null = null;
  private asking = false;
  private readonly listeners: ((synced: boolean | null) => void)[] = [];

  constructor(private readonly opts: ClockSyncOptions) {}

  onChange(fn: (synced: boolean | null) => void): void {
    this.listeners.push(fn);
  }

  start(): void {
    this.source = resolveSyncSource(this.opts);
    if (this.source === 'none') return;
    // The flag file is read at once, so the first window already knows; a command answers later.
    this.check();
    this.timer = setInterval(() => this.check(), this.source === 'timesyncd' ? FILE_EVERY_MS : COMMAND_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private set(v: boolean | null): void {
    if (v === this.synchronized) return;
    this.synchronized = v;
    for (const fn of this.listeners) fn(v);
  }

  private check(): void {
    switch (this.source) {
      case 'timesyncd':
        this.set(fs.existsSync(this.opts.syncFile));
        return;
      case 'timedatectl':
        return this.ask('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], parseTimedatectl);
      case 'chrony':
        return this.ask('chronyc', ['-n', 'tracking'], parseChronyTracking);
      case 'none':
        return;
    }
  }

  private ask(cmd: string, args: string[], parse: (out: string) => boolean | null): void {
    if (this.asking) return;
    this.asking = true;
    execFile(cmd, args, { timeout: 5000 }, (err, stdout) => {
      this.asking = false;
      // A daemon that cannot be asked says nothing about the clock: unknown, not "unsynced".
      this.set(err ? null : parse(String(stdout)));
    });
  }
}
