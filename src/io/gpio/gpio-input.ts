// One configured GPIO input (door contact, alarm contact, pulse counter). Edge interrupts when the
// backend delivers them, else polling; both debounce the same way. Counter totals are persisted
// on every increment so a crash or power cut loses no pulse.
import type { Logger } from '../../log.js';
import type { GpioBackend, GpioLine, Level } from './line.js';
import { monoNow, type MonoClock } from '../../time/monotonic.js';

export interface GpioInputConfig {
  id: string;
  line: number;
  chip?: string;
  activeLow: boolean;
  debounceMs: number;
  pollMs: number;
  reportMs: number;
  kind: 'contact' | 'alarm' | 'counter';
}

export interface CounterStore {
  load(id: string): number | undefined;
  save(id: string, value: number): void;
}

/** contact/alarm: true when active; counter: the running total. */
export interface GpioSink {
  (value: boolean | number, ts: number): void;
}

export interface GpioInputStats {
  mode: 'interrupt' | 'polling' | 'unavailable' | 'stopped';
  number: number | null;
  level: Level | null;
  edges: number;
  count: number | null;
  lastChange: number | null;
  lastError: string;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class GpioInput {
  readonly stats: GpioInputStats = { mode: 'stopped', number: null, level: null, edges: 0, count: null, lastChange: null, lastError: '' };
  private line: GpioLine | null = null;
  private count = 0;
  private pollTimer: NodeJS.Timeout | null = null;
  private reportTimer: NodeJS.Timeout | null = null;
  private debounceTimer: NodeJS.Timeout | null = null;
  /** Polling debounce: the raw level last read and since when (monotonic) it has been read unchanged. */
  private raw: Level | null = null;
  private rawSince = 0;

  constructor(
    private readonly cfg: GpioInputConfig,
    private readonly backend: GpioBackend,
    private readonly counters: CounterStore,
    private readonly sink: GpioSink,
    private readonly log: Logger,
    /** Wall clock for the stamps of values and lastChange. */
    private readonly now: () => number = Date.now,
    /** Monotonic clock for the polling debounce: a wall-clock step must not hold a level back. */
    private readonly mono: MonoClock = monoNow,
  ) {}

  start(): void {
    if (this.line) return;
    const { id } = this.cfg;
    let level: Level;
    try {
      const reason = this.backend.unavailable();
      if (reason) throw new Error(`${this.backend.name} GPIO unavailable: ${reason}`);
      this.stats.number = this.backend.resolve(this.cfg.line, this.cfg.chip);
      this.line = this.backend.open(this.stats.number, { activeLow: this.cfg.activeLow, edges: true });
      level = this.line.read();
      if (this.cfg.kind === 'counter') this.count = this.counters.load(id) ?? 0;
    } catch (e) {
      this.closeLine();
      this.stats.mode = 'unavailable';
      this.stats.lastError = message(e);
      this.log.warn({ gpio: id, line: this.cfg.line, chip: this.cfg.chip, reason: this.stats.lastError }, `gpio ${id}: input disabled: ${this.stats.lastError}`);
      return;
    }
    this.stats.level = level;
    this.raw = level;
    this.rawSince = this.mono();
    if (this.cfg.kind === 'counter') this.stats.count = this.count;
    this.emit();

    const line = this.line;
    try {
      line.watch((lvl) => this.onEdge(lvl));
      this.stats.mode = 'interrupt';
    } catch (e) {
      this.stats.mode = 'polling';
      this.log.warn(
        { gpio: id, number: line.number, pollMs: this.cfg.pollMs, reason: message(e) },
        `gpio ${id}: edge interrupts unavailable (${message(e)}), polling every ${this.cfg.pollMs} ms`,
      );
      this.pollTimer = setInterval(() => this.poll(), this.cfg.pollMs);
    }
    // Aggregation windows need samples even when the input never changes.
    if (this.cfg.reportMs > 0) this.reportTimer = setInterval(() => this.emit(), this.cfg.reportMs);
  }

  stop(): void {
    for (const t of [this.pollTimer, this.reportTimer]) if (t) clearInterval(t);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.pollTimer = this.reportTimer = this.debounceTimer = null;
    this.closeLine();
    this.stats.mode = 'stopped';
  }

  /** Interrupt mode: every edge restarts the debounce timer; the level is read once the line is quiet. */
  private onEdge(level: Level): void {
    if (!this.line) return;
    this.stats.edges++;
    if (this.cfg.debounceMs <= 0) return this.accept(level);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      const lvl = this.read();
      if (lvl !== null) this.accept(lvl);
    }, this.cfg.debounceMs);
  }

  /** Polling mode: a level counts once it has been read unchanged across at least debounceMs. */
  private poll(): void {
    const lvl = this.read();
    if (lvl === null) return;
    const t = this.mono();
    if (lvl !== this.raw) {
      if (this.raw !== null) this.stats.edges++;
      this.raw = lvl;
      this.rawSince = t;
    }
    if (t - this.rawSince >= this.cfg.debounceMs) this.accept(lvl);
  }

  private read(): Level | null {
    try {
      return this.line ? this.line.read() : null;
    } catch (e) {
      this.error('read failed', e);
      return null;
    }
  }

  private accept(level: Level): void {
    const prev = this.stats.level;
    if (level === prev) return;
    this.stats.level = level;
    this.stats.lastChange = this.now();
    if (this.cfg.kind !== 'counter') return this.emit();
    if (prev !== 0 || level !== 1) return;
    this.count++;
    this.stats.count = this.count;
    try {
      this.counters.save(this.cfg.id, this.count);
    } catch (e) {
      this.error('counter not persisted', e);
    }
    this.emit();
  }

  private emit(): void {
    if (this.stats.level === null) return;
    this.sink(this.cfg.kind === 'counter' ? this.count : this.stats.level === 1, this.now());
  }

  /** Logs a repeating failure once, not on every poll. */
  private error(what: string, e: unknown): void {
    const text = `${what}: ${message(e)}`;
    if (text !== this.stats.lastError) this.log.warn({ gpio: this.cfg.id, reason: text }, `gpio ${this.cfg.id}: ${text}`);
    this.stats.lastError = text;
  }

  private closeLine(): void {
    try {
      this.line?.close();
    } catch {
      /* backends should not throw here; a failing close must not stop the others */
    }
    this.line = null;
  }
}
