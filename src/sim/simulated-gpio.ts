// A GpioBackend with no hardware behind it, for demos: each opened line changes its logical level
// at seeded random times, like a door contact, an emergency call button or a pulse output.
// GpioInput opens lines itself, so how a line behaves is given per line number to the
// constructor, not at open(). Same seed, same line: same sequence of levels and durations.
import type { GpioBackend, GpioLine, Level } from '../io/gpio/line.js';
import { seededRandom } from './random.js';

export type GpioBehaviour =
  /** Closed (inactive) most of the time; open (active) for 5..30 s about every 2..10 min. */
  | { kind: 'door' }
  /** Emergency call: pressed (active) for 2..5 s about once an hour, never in the first 10 min. */
  | { kind: 'button' }
  /** Short active pulses (100 ms) at about `perMinute` per minute (a meter's pulse output). */
  | { kind: 'pulses'; perMinute: number };

export interface SimulatedGpioOptions {
  /** Wall clock for the stamps of history(); Date.now by default. */
  now?: () => number;
  /** Behaviour per line number (the number open() gets); lines not listed behave as doors. */
  lines?: ReadonlyMap<number, GpioBehaviour> | Readonly<Record<number, GpioBehaviour>>;
}

export interface LevelChange {
  ts: number;
  level: Level;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
export const PULSE_MS = 100;
/** A pulse and the shortest gap after it: the fastest train that still looks like pulses. */
export const MAX_PULSES_PER_MINUTE = MINUTE / (2 * PULSE_MS);
/** The button's first press comes no sooner, so a demo starts quiet. */
export const BUTTON_QUIET_MS = 10 * MINUTE;
/** history() keeps this many changes per line: a demo runs for days. */
const HISTORY = 1000;

/** One stream per line, independent of the order lines are opened in. */
function lineRandom(seed: number, line: number): () => number {
  return seededRandom((seed ^ Math.imul(line + 1, 0x9e3779b1)) >>> 0);
}

const uniform = (r: () => number, lo: number, hi: number) => lo + r() * (hi - lo);
/** Exponential with this mean: presses of a call button have no rhythm. */
const exponential = (r: () => number, mean: number) => -mean * Math.log(1 - r());

/** How long the line stays inactive before the next activation, and how long it stays active. */
interface Timing {
  quiet(first: boolean): number;
  active(): number;
}

function timing(b: GpioBehaviour, r: () => number): Timing {
  switch (b.kind) {
    case 'door':
      return { quiet: () => uniform(r, 2 * MINUTE, 10 * MINUTE), active: () => uniform(r, 5 * SECOND, 30 * SECOND) };
    case 'button':
      return {
        // Mean about an hour either way: 10 min + 50 min mean for the first, 60 min mean after.
        quiet: (first) => (first ? BUTTON_QUIET_MS + exponential(r, 50 * MINUTE) : Math.max(MINUTE, exponential(r, 60 * MINUTE))),
        active: () => uniform(r, 2 * SECOND, 5 * SECOND),
      };
    case 'pulses': {
      const period = MINUTE / b.perMinute;
      // +-50 % jitter around the period, never closer than one pulse width to the next pulse.
      return { quiet: () => Math.max(PULSE_MS, period * (0.5 + r()) - PULSE_MS), active: () => PULSE_MS };
    }
  }
}

class SimulatedLine implements GpioLine {
  private level: Level = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly listeners: ((level: Level) => void)[] = [];
  private closed = false;
  readonly changes: LevelChange[] = [];

  constructor(
    readonly number: number,
    private readonly timing: Timing,
    private readonly edges: boolean,
    private readonly now: () => number,
    private readonly onClose: () => void,
  ) {
    this.wait(this.timing.quiet(true));
  }

  read(): Level {
    if (this.closed) throw new Error(`simulated GPIO line ${this.number} is closed`);
    return this.level;
  }

  watch(cb: (level: Level) => void): void {
    // Like a line opened without edge detection: GpioInput then polls read().
    if (!this.edges) throw new Error(`simulated GPIO line ${this.number} was opened without edges`);
    if (this.closed) throw new Error(`simulated GPIO line ${this.number} is closed`);
    this.listeners.push(cb);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.listeners.length = 0;
    this.onClose();
  }

  private wait(ms: number): void {
    this.timer = setTimeout(() => this.flip(), Math.round(ms));
    // A demo's timers must not keep the process alive on their own.
    this.timer.unref();
  }

  private flip(): void {
    this.timer = null;
    if (this.closed) return;
    this.level = this.level === 1 ? 0 : 1;
    this.changes.push({ ts: this.now(), level: this.level });
    if (this.changes.length > HISTORY) this.changes.splice(0, this.changes.length - HISTORY);
    this.wait(this.level === 1 ? this.timing.active() : this.timing.quiet(false));
    for (const cb of [...this.listeners]) cb(this.level);
  }
}

export class SimulatedGpio implements GpioBackend {
  readonly name = 'simulated';
  private readonly now: () => number;
  private readonly behaviours = new Map<number, GpioBehaviour>();
  private readonly opened = new Map<number, SimulatedLine>();

  constructor(
    private readonly seed: number,
    opts: SimulatedGpioOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    const entries = opts.lines instanceof Map ? [...opts.lines] : Object.entries(opts.lines ?? {}).map(([k, v]) => [Number(k), v] as const);
    for (const [line, b] of entries) {
      if (b.kind === 'pulses' && !(b.perMinute > 0 && b.perMinute <= MAX_PULSES_PER_MINUTE)) {
        throw new RangeError(`simulated GPIO line ${line}: perMinute must be above 0 and at most ${MAX_PULSES_PER_MINUTE} (${PULSE_MS} ms pulses), got ${b.perMinute}`);
      }
      this.behaviours.set(line, b);
    }
  }

  unavailable(): string | null {
    return null;
  }

  /** No chips to look up: the configured line number is the line. */
  resolve(line: number, _chip?: string): number {
    return line;
  }

  /** activeLow only says how the physical level maps to the logical one; a simulated line has
   * only the logical level, so it behaves the same either way. */
  open(number: number, opts: { activeLow: boolean; edges: boolean }): GpioLine {
    // One owner per line, as with sysfs export.
    if (this.opened.has(number)) throw new Error(`simulated GPIO line ${number} is already open`);
    const behaviour = this.behaviours.get(number) ?? { kind: 'door' };
    const line = new SimulatedLine(number, timing(behaviour, lineRandom(this.seed, number)), opts.edges, this.now, () => this.opened.delete(number));
    this.opened.set(number, line);
    return line;
  }

  /** The level changes of an open line so far (the last 1000), oldest first; [] when not open. */
  history(number: number): readonly LevelChange[] {
    return this.opened.get(number)?.changes ?? [];
  }
}
