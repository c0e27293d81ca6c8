// GpioBackend over the kernel's sysfs GPIO interface, through onoff. activeLow is written to the
// line's active_low file, so the kernel inverts and read() is already logical.
import onoff, { type Gpio as OnoffGpio } from 'onoff';
import type { GpioBackend, GpioLine, Level } from './line.js';
import { resolveLine, sysfsGpioAbsent } from './sysfs-chips.js';

const { Gpio } = onoff;

/** onoff hard-codes this path. */
const ONOFF_ROOT = '/sys/class/gpio';

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

class OnoffLine implements GpioLine {
  private closed = false;

  /** noEdges: why watch() cannot work, or null. */
  constructor(readonly number: number, private readonly gpio: OnoffGpio, private readonly noEdges: string | null) {}

  read(): Level {
    return this.gpio.readSync();
  }

  watch(cb: (level: Level) => void): void {
    if (this.noEdges) throw new Error(this.noEdges);
    try {
      this.gpio.watch((err, value) => {
        if (!err) cb(value);
      });
    } catch (e) {
      // onoff registered the listener before epoll refused the fd; drop it so close() is clean.
      // (unwatchAll clears the list first, then its own epoll remove fails: ignored.)
      try {
        this.gpio.unwatchAll();
      } catch {
        /* see above */
      }
      throw new Error(`epoll on ${ONOFF_ROOT}/gpio${this.number}/value failed: ${message(e)}`);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.gpio.unwatchAll();
    } catch {
      /* nothing was watched */
    }
    try {
      this.gpio.unexport();
    } catch {
      /* already unexported or sysfs gone: nothing left to release */
    }
  }
}

export class OnoffBackend implements GpioBackend {
  readonly name = 'sysfs (onoff)';

  constructor(private readonly root = ONOFF_ROOT) {}

  unavailable(): string | null {
    return (
      sysfsGpioAbsent(ONOFF_ROOT) ??
      (Gpio.accessible ? null : `${ONOFF_ROOT}/export is not writable: run the gateway as root or add its user to the gpio group`)
    );
  }

  resolve(line: number, chip: string | undefined): number {
    return resolveLine(line, chip, this.root).number;
  }

  open(number: number, opts: { activeLow: boolean; edges: boolean }): GpioLine {
    const make = (edge: 'both' | 'none') => new Gpio(number, 'in', edge, { activeLow: opts.activeLow });
    let gpio: OnoffGpio;
    let noEdges: string | null = opts.edges ? null : 'edge interrupts not requested';
    try {
      gpio = make(opts.edges ? 'both' : 'none');
    } catch (first) {
      // A pin without an edge file fails its first export in onoff; once exported, onoff tolerates it.
      try {
        gpio = make('none');
      } catch {
        throw first;
      }
      noEdges = `gpio${number} has no usable edge file (${message(first)})`;
    }
    if (!noEdges) {
      // onoff ignores a failed edge write on an already exported line; without edge=both no interrupt comes.
      let edge: string;
      try {
        edge = gpio.edge();
      } catch (e) {
        edge = `unreadable: ${message(e)}`;
      }
      if (edge !== 'both') noEdges = `gpio${number} edge is "${edge}", not "both"`;
    }
    return new OnoffLine(number, gpio, noEdges);
  }
}
