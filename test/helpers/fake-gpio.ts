// An in-memory GPIO backend: lines whose level a test sets, and whose edge callback fires
// when watch() succeeded. Edge interrupts cannot exist on a fake sysfs, so this is how the
// interrupt path is exercised.
import { GpioError } from '../../src/io/gpio/errors.js';
import type { GpioBackend, GpioLine, Level } from '../../src/io/gpio/line.js';

export class FakeLine implements GpioLine {
  level: Level = 0;
  reads = 0;
  closed = false;
  private cb: ((level: Level) => void) | null = null;
  constructor(readonly number: number, readonly opts: { activeLow: boolean; edges: boolean }, private readonly watchError: string | null) {}
  read(): Level {
    this.reads++;
    return this.level;
  }
  watch(cb: (level: Level) => void): void {
    if (this.watchError) throw new Error(this.watchError);
    this.cb = cb;
  }
  close(): void {
    this.closed = true;
    this.cb = null;
  }
  /** Changes the pin; fires the edge callback only if watch() succeeded. */
  set(level: Level): void {
    this.level = level;
    this.cb?.(level);
  }
}

export class FakeBackend implements GpioBackend {
  readonly name = 'fake';
  reason: string | null = null;
  watchError: string | null = null;
  openError: string | null = null;
  initial: Level = 0;
  lines: FakeLine[] = [];
  unavailable(): string | null {
    return this.reason;
  }
  resolve(line: number, chip: string | undefined): number {
    if (chip !== undefined && chip !== 'pinctrl-bcm2711') throw new GpioError(`gpio line ${line}: no GPIO chip labelled "${chip}"`);
    return 512 + line;
  }
  open(number: number, opts: { activeLow: boolean; edges: boolean }): FakeLine {
    if (this.openError) throw new Error(this.openError);
    const l = new FakeLine(number, opts, this.watchError);
    l.level = this.initial;
    this.lines.push(l);
    return l;
  }
  get line(): FakeLine {
    return this.lines[this.lines.length - 1]!;
  }
}
