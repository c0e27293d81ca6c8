// Polls one Modbus device on its bus at a fixed rate. A device that stops answering is
// marked offline and probed with exponential backoff (without retries), so a dead device
// costs the shared bus little and the live ones keep their rate.
import type { Logger } from '../../log.js';
import type { Hole, Point, Profile, RegisterKind } from '../../config/profile-schema.js';
import type { Facility, Quality } from '../../types.js';
import type { ModbusBus } from './bus.js';
import { ModbusError, ModbusExceptionError, ModbusFrameError, ModbusLinkError, ModbusTimeoutError } from './errors.js';
import { bisectionCut, groupsBlock, planReads, pointSpan, registerGroups, unusedRanges, type ReadBlock, type RegisterGroup } from './read-plan.js';
import { monoNow, type MonoClock } from '../../time/monotonic.js';

export interface PolledDevice {
  id: string;
  facility: Facility;
  unitId: number;
  pollMs: number;
  maxGap: number;
  profile: Profile;
}

/** Where poll results go: the pipeline decodes, scales and checks them. */
export interface PollSink {
  block(device: PolledDevice, block: ReadBlock, values: number[], ts: number): void;
  failed(device: PolledDevice, points: readonly Point[], quality: Quality, detail: string, ts: number): void;
  availability(device: PolledDevice, online: boolean, reason?: string): void;
  /** After every scan in which the device answered: readings of one scan belong together. */
  scanDone(device: PolledDevice, ts: number): void;
}

export interface PollerOptions {
  offlineBackoffMaxMs: number;
  /** Clock for scheduling and liveness (tests inject one); reading stamps stay on Date.now. */
  mono?: MonoClock;
}

export interface DeviceStats {
  polls: number;
  failedPolls: number;
  requests: number;
  lastSuccess: number | null;
  lastError: string;
  online: boolean | null;
  learnedHoles: Hole[];
  unsupportedPoints: string[];
  /** Failed requests by cause, after the bus' retries (the bus counts every attempt). */
  errors: { timeouts: number; exceptions: number; lineErrors: number; linkErrors: number };
  /** Duration of the last scan and the sum of all (for average latency), in ms. */
  lastScanMs: number | null;
  scanMsTotal: number;
  /** When the last scan ended, or when polling started (wall time, for people). */
  lastScanEnd: number | null;
}

const ILLEGAL_DATA_ADDRESS = 2;
const REFUSED = new ModbusExceptionError(ILLEGAL_DATA_ADDRESS).message;

export class DevicePoller {
  private timer: NodeJS.Timeout | null = null;
  /** Scans on the bus' poll clock (online), else on `timer`. */
  private onClock = false;
  /** A tick came during a scan. */
  private tickMissed = false;
  private scanStarted = 0;
  private running = false;
  private polling: Promise<void> | null = null;
  private failures = 0;
  private plan: ReadBlock[];
  private readonly learned: Hole[] = [];
  private readonly unsupported = new Set<Point>();
  private readonly mono: MonoClock;
  /** lastScanEnd on the monotonic clock: the watchdog's sign of life, immune to clock steps. */
  private lastScanEndMono: number | null = null;
  readonly stats: DeviceStats;

  constructor(
    readonly device: PolledDevice,
    private readonly bus: ModbusBus,
    private readonly sink: PollSink,
    private readonly opts: PollerOptions,
    private readonly log: Logger,
  ) {
    this.mono = opts.mono ?? monoNow;
    this.plan = this.replan();
    this.stats = { polls: 0, failedPolls: 0, requests: 0, lastSuccess: null, lastError: '', online: null, learnedHoles: this.learned, unsupportedPoints: [], errors: { timeouts: 0, exceptions: 0, lineErrors: 0, linkErrors: 0 }, lastScanMs: null, scanMsTotal: 0, lastScanEnd: null };
    bus.onUp(() => {
      // A fresh link: probe now rather than waiting out an offline backoff.
      if (this.running && this.stats.online !== true) this.schedule(0);
    });
  }

  /** The current read plan (for the web page, the bench and the tests). */
  get readPlan(): readonly ReadBlock[] {
    return this.plan;
  }

  start(): void {
    this.running = true;
    this.stats.lastScanEnd = Date.now();
    this.lastScanEndMono = this.mono();
    this.schedule(0);
  }

  /** Longest a healthy poller may go without finishing a scan: a scan stuck for longer
   * means a promise that never settles, and the service watchdog should restart us. */
  get stallLimitMs(): number {
    return Math.max(60_000, 3 * this.device.pollMs, 2 * this.opts.offlineBackoffMaxMs);
  }

  /** null while polling as it should, else why not (for the service watchdog). `mono` is a
   * time on this poller's monotonic clock, so a step of the wall clock never looks like a stall. */
  stalled(mono = this.mono()): string | null {
    if (!this.running || this.lastScanEndMono === null) return null;
    const quiet = mono - this.lastScanEndMono;
    return quiet > this.stallLimitMs ? `device ${this.device.id}: no scan finished for ${Math.round(quiet / 1000)} s` : null;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.leaveClock();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.polling;
  }

  /** A scan after `delay` ms on the poller's own timer: the first one, a probe when the link
   * comes up, and the offline backoff. */
  private schedule(delay: number): void {
    if (!this.running) return;
    this.leaveClock();
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(this.onTimer, delay);
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.scan();
  };

  /** While online, scans follow the bus' clock for this pollMs (one timer for all its devices). */
  private readonly onTick = (): void => {
    if (!this.running) return;
    if (this.polling) {
      // Still scanning: the next scan starts as soon as this one ends, as before.
      this.tickMissed = true;
      return;
    }
    // Just joined right after a scan: wait for the next tick rather than scan twice at once.
    if (this.mono() - this.scanStarted < this.device.pollMs / 2) return;
    this.scan();
  };

  private leaveClock(): void {
    if (!this.onClock) return;
    this.onClock = false;
    this.tickMissed = false;
    this.bus.clock(this.device.pollMs).leave(this.onTick);
  }

  private scan(): void {
    if (!this.running) return;
    if (this.polling) {
      // One scan at a time (a probe when the link comes up may land during one): after it.
      this.tickMissed = true;
      return;
    }
    this.scanStarted = this.mono();
    this.polling = this.pollOnce().then(undefined, this.onPollError).finally(this.onScanEnd);
  }

  private readonly onPollError = (err: Error): void => {
    // A bug in one device's handling must not stop the daemon or the other devices.
    this.stats.lastError = err.message;
    this.log.error({ device: this.device.id, err }, 'poll failed unexpectedly');
  };

  private readonly onScanEnd = (): void => {
    this.polling = null;
    const end = this.mono();
    const took = end - this.scanStarted;
    this.lastScanEndMono = end;
    this.stats.lastScanEnd = Date.now();
    this.stats.lastScanMs = took;
    this.stats.scanMsTotal += took;
    if (!this.running) return;
    if (this.stats.online === false) {
      this.tickMissed = false;
      // Exponential backoff while offline, on its own timer.
      this.schedule(Math.max(0, this.scanStarted + Math.min(this.opts.offlineBackoffMaxMs, this.device.pollMs * 2 ** Math.min(this.failures, 16)) - end));
      return;
    }
    // Fixed rate while online.
    if (!this.onClock && !this.timer) {
      this.onClock = true;
      this.bus.clock(this.device.pollMs).join(this.onTick);
    }
    if (this.tickMissed) {
      this.tickMissed = false;
      this.scan();
    }
  };

  /** One scan of every block. Exported for the bench and tests. */
  async pollOnce(): Promise<void> {
    this.stats.polls++;
    const offline = this.stats.online === false;
    let answered = false;
    let lastErr: ModbusError | null = null;
    // The plan as it is now: a split below plans again, for the next scan.
    const plan = this.plan;
    for (let i = 0; i < plan.length; i++) {
      const block = plan[i]!;
      try {
        const values = await this.read(block, offline);
        this.sink.block(this.device, block, values, Date.now());
        answered = true;
      } catch (err) {
        this.countError(err);
        if (!(err instanceof ModbusError)) throw err;
        if (err instanceof ModbusExceptionError && !err.deviceSilent) {
          answered = true;
          if (err.code === ILLEGAL_DATA_ADDRESS) {
            await this.splitRefusedBlock(block, plan, offline);
          } else {
            this.sink.failed(this.device, block.points, 'exception', err.message, Date.now());
          }
          continue;
        }
        // Silent device, broken link or garbage: stop this scan; the bus is better spent on others.
        lastErr = err;
        if (err instanceof ModbusLinkError || !answered) break;
        this.sink.failed(this.device, block.points, err.quality, err.message, Date.now());
      }
    }
    if (answered) {
      this.failures = 0;
      this.stats.lastSuccess = Date.now();
      this.setOnline(true);
      this.sink.scanDone(this.device, this.stats.lastSuccess);
    } else if (lastErr) {
      this.failures++;
      this.stats.failedPolls++;
      this.stats.lastError = lastErr.message;
      if (this.stats.online !== false) {
        this.sink.failed(this.device, this.device.profile.points.filter((p) => !this.unsupported.has(p)), lastErr.quality, lastErr.message, Date.now());
        this.setOnline(false, lastErr.message);
      }
    }
  }

  private read(block: ReadBlock, offline: boolean): Promise<number[]> {
    this.stats.requests++;
    // Failures are counted where they are caught (countError): no extra promise per request.
    return this.bus.read({ unitId: this.device.unitId, register: block.register, start: block.start, count: block.count }, offline ? { retries: 0 } : undefined);
  }

  private countError(err: unknown): void {
    const e = this.stats.errors;
    if (err instanceof ModbusTimeoutError) e.timeouts++;
    else if (err instanceof ModbusExceptionError) e.exceptions++;
    else if (err instanceof ModbusLinkError) e.linkErrors++;
    else if (err instanceof ModbusFrameError) e.lineErrors++;
  }

  /** A merged read was refused with ILLEGAL DATA ADDRESS (MBAP v1.1b3, 7: some address of the
   * request is not valid in the device): this firmware lacks something in the block. Find it by
   * bisection, delivering every part the device accepts, and plan again so later scans never ask
   * for it. Learned holes are only what was proven: a refused point's span, the gap between two
   * accepted halves of a refused part, and a gap refused when probed alone. */
  private async splitRefusedBlock(block: ReadBlock, plan: readonly ReadBlock[], offline: boolean): Promise<void> {
    const before = { requests: this.stats.requests, holes: this.learned.length };
    const run: Learning = { register: block.register, offline, accepted: [], incomplete: false };
    await this.bisect(run, registerGroups(block.points), 'read');
    // Without this, a gap that no accepted read spanned (beside a refused half) would be merged
    // on the next scan, and a hole there refused again: learning ends in this scan.
    if (!run.incomplete) await this.probeUntestedGaps(run, block, plan);
    this.plan = this.replan();
    this.log.warn(
      {
        device: this.device.id,
        block: `${block.register}@${block.start}+${block.count}`,
        unsupported: this.stats.unsupportedPoints,
        holes: this.learned.slice(before.holes).map((h) => `${h.from}-${h.to}`),
        requests: this.stats.requests - before.requests,
      },
      'device refused a merged read; split it and learned its holes',
    );
  }

  /** Reads `groups` as one part and returns whether it was accepted; refused, the part is cut
   * in two and each half learned in turn. `refused`: this very part was refused already
   * ('read'), or must hold the refusal by elimination ('inferred'). */
  private async bisect(run: Learning, groups: RegisterGroup[], refused?: 'read' | 'inferred'): Promise<boolean> {
    // A point is declared unsupported only when a read of it alone was refused: a device that
    // refuses long reads with exception 2 would make the elimination wrong, and lose points.
    if (!refused || (refused === 'inferred' && groups.length === 1)) {
      const part = groupsBlock(run.register, groups);
      if (await this.learnRead(run, part)) return true;
      if (run.lastFailure !== 'refused') return false;
    }
    if (groups.length === 1) {
      await this.refusedGroup(run, groups[0]!);
      return false;
    }
    const cut = bisectionCut(groups);
    const from = groups[cut - 1]!.to + 1;
    const to = groups[cut]!.from - 1;
    const left = await this.bisect(run, groups.slice(0, cut));
    // The left half accepted and no address between the halves: the refusal is in the right
    // half, no need to ask for it whole.
    const right = await this.bisect(run, groups.slice(cut), left && from > to ? 'inferred' : undefined);
    // Both halves accepted, the whole refused: the unused addresses between them hold the hole.
    if (left && right && from <= to) this.learned.push({ register: run.register, from, to });
    return false;
  }

  /** One register group refused: points of one span are unsupported together; where the
   * group's points cover different spans (a word inside a float), each span is asked alone,
   * except the whole group's span, already refused. */
  private async refusedGroup(run: Learning, group: RegisterGroup): Promise<void> {
    const bySpan = new Map<string, { from: number; to: number; points: Point[] }>();
    for (const p of group.points) {
      const s = pointSpan(p);
      const k = `${s.from}-${s.to}`;
      const e = bySpan.get(k);
      if (e) e.points.push(p);
      else bySpan.set(k, { ...s, points: [p] });
    }
    for (const s of bySpan.values()) {
      if (s.from !== group.from || s.to !== group.to) {
        if (await this.learnRead(run, { register: run.register, start: s.from, count: s.to - s.from + 1, points: s.points })) continue;
        if (run.lastFailure !== 'refused') continue;
      }
      this.markUnsupported(run.register, s);
    }
  }

  private markUnsupported(register: RegisterKind, span: { from: number; to: number; points: Point[] }): void {
    for (const p of span.points) {
      this.unsupported.add(p);
      this.stats.unsupportedPoints.push(p.id);
    }
    this.learned.push({ register, from: span.from, to: span.to });
    this.sink.failed(this.device, span.points, 'exception', `${REFUSED}: point not supported by this device`, Date.now());
  }

  /** A read while learning: accepted, its values are delivered. Refused with ILLEGAL DATA
   * ADDRESS, the caller learns from it; any other Modbus error marks its points failed with
   * their quality (the rest of the learning goes on); anything else is a bug and rethrows. */
  private async learnRead(run: Learning, part: ReadBlock): Promise<boolean> {
    try {
      const values = await this.read(part, run.offline);
      if (part.points.length) this.sink.block(this.device, part, values, Date.now());
      run.accepted.push({ from: part.start, to: part.start + part.count - 1 });
      return true;
    } catch (err) {
      this.countError(err);
      if (!(err instanceof ModbusError)) throw err;
      if (err instanceof ModbusExceptionError && err.code === ILLEGAL_DATA_ADDRESS) {
        run.lastFailure = 'refused';
      } else {
        run.lastFailure = 'failed';
        run.incomplete = true;
        if (part.points.length) this.sink.failed(this.device, part.points, err.quality, err.message, Date.now());
      }
      return false;
    }
  }

  /** The gaps the new plan would read that no accepted read spanned: inside the refused block,
   * and between two blocks of the scan's plan (a block split by a learned hole may now reach its
   * neighbour within the size limit). The other blocks' own gaps are judged by their own reads.
   * Each is read alone (no point's data, just the unused addresses); refused, it is a hole. */
  private async probeUntestedGaps(run: Learning, block: ReadBlock, plan: readonly ReadBlock[]): Promise<void> {
    const inside = (a: { from: number; to: number }, g: { from: number; to: number }) => a.from <= g.from && a.to >= g.to;
    const judged = (g: { from: number; to: number }) =>
      run.accepted.some((a) => inside(a, g)) || plan.some((b) => b !== block && b.register === block.register && inside({ from: b.start, to: b.start + b.count - 1 }, g));
    for (;;) {
      const gap = this.replan()
        .filter((b) => b.register === block.register)
        .flatMap(unusedRanges)
        .find((g) => !judged(g));
      if (!gap) return;
      if (await this.learnRead(run, { register: block.register, start: gap.from, count: gap.to - gap.from + 1, points: [] })) continue;
      if (run.lastFailure !== 'refused') return;
      this.learned.push({ register: block.register, from: gap.from, to: gap.to });
    }
  }

  private replan(): ReadBlock[] {
    const pts = this.device.profile.points.filter((p) => !this.unsupported.has(p));
    return planReads(pts, [...this.device.profile.holes, ...this.learned], {
      maxGap: this.device.maxGap,
      maxRegisters: this.device.profile.maxRegistersPerRead,
    });
  }

  private setOnline(online: boolean, reason?: string): void {
    if (this.stats.online === online) return;
    this.stats.online = online;
    if (online) this.log.info({ device: this.device.id }, 'device online');
    else this.log.warn({ device: this.device.id, reason }, 'device offline, polling with backoff');
    this.sink.availability(this.device, online, reason);
  }
}

/** One learning pass over a refused block. */
interface Learning {
  register: RegisterKind;
  offline: boolean;
  /** Address ranges the device accepted in this pass (reads and probes). */
  accepted: { from: number; to: number }[];
  /** Why the last refused-or-failed read was not accepted. */
  lastFailure?: 'refused' | 'failed';
  /** A read failed otherwise than by refusal: what it covered stays unknown. */
  incomplete: boolean;
}
