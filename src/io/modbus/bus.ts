// One Modbus line or connection, one queue: every device on the bus takes turns, one
// request in flight at a time, or up to the link's maxInFlight on a Modbus TCP connection
// that allows it (then one per unit id at a time: a device behind a gateway answers in
// turn). Owns connect/reconnect with capped exponential backoff.
import type { Logger } from '../../log.js';
import type { ModbusTransport, ReadRequest, WriteRequest } from './transport.js';
import { ModbusError, ModbusLinkError } from './errors.js';
import { PollClock } from './poll-clock.js';
import type { DeviceIdPart } from './device-id.js';

export interface BusOptions {
  id: string;
  timeoutMs: number;
  /** Extra attempts after a timeout or a damaged frame (not after an exception: the device did answer). */
  retries: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
}

interface Job {
  read: ReadRequest | null;
  write: WriteRequest | null;
  /** Read Device Identification from this object id (when read and write are null). */
  identify: { unitId: number; objectId: number } | null;
  /** Answer timeout; the bus' own unless the caller set one. */
  timeoutMs: number;
  /** Low priority (a bus scan): runs only when no other job waits or is on the link. */
  low: boolean;
  retries: number;
  attempt: number;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

const NO_VALUES: number[] = [];
const unitOf = (job: Job): number => (job.read ?? job.write ?? job.identify)!.unitId & 0xff;

export interface RequestOptions {
  retries?: number;
  /** Answer timeout for this request (a scan probes with a short one). */
  timeoutMs?: number;
  /** 'low': only when nothing else waits or is on the link, one at a time, and never part of
   * a round of polls; a configured device's poll waits for at most one such request. */
  priority?: 'normal' | 'low';
}

export type BusState = 'connecting' | 'up' | 'down' | 'stopped';

export class ModbusBus {
  private queue: Job[] = [];
  /** Low-priority jobs (a bus scan), behind every job of `queue`. */
  private lowQueue: Job[] = [];
  /** Jobs on the link now (each settled by its reply or failure), of them low priority. */
  private inFlight = 0;
  private lowInFlight = 0;
  /** launchLow is due in the check phase. */
  private lowSoon = false;
  /** Jobs in flight per unit id. */
  private readonly unitBusy = new Uint8Array(256);
  private state: BusState = 'stopped';
  private reconnectTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private upListeners: (() => void)[] = [];
  private roundListeners: ((open: boolean) => void)[] = [];
  /** A round of polls is open: requests queued or on the link, or handled this turn. */
  private roundOpen = false;
  private readonly clocks = new Map<number, PollClock>();
  lastError = '';

  constructor(
    readonly opts: BusOptions,
    readonly transport: ModbusTransport,
    private readonly log: Logger,
  ) {
    transport.onDrop((reason) => {
      if (this.state === 'stopped') return;
      this.log.warn({ bus: opts.id, endpoint: transport.endpoint, reason }, 'modbus link dropped');
      this.lastError = reason;
      this.state = 'down';
      this.failQueued(new ModbusLinkError(`bus ${opts.id} is down: ${reason}`));
      this.scheduleReconnect();
    });
  }

  get status(): BusState {
    return this.state;
  }

  /** Called each time the link comes up, so devices can poll at once instead of waiting out backoff. */
  /** The poll clock its devices polled every `periodMs` share (poll-clock.ts). */
  clock(periodMs: number): PollClock {
    let c = this.clocks.get(periodMs);
    if (!c) this.clocks.set(periodMs, (c = new PollClock(periodMs)));
    return c;
  }

  /** `cb(true)` when a request is queued on an idle bus (a round of polls starts), `cb(false)`
   * in the turn after the queue ran empty, once the last reply's readings were handled (the
   * round ended), and on stop. One true, then one false. */
  onRound(cb: (open: boolean) => void): void {
    this.roundListeners.push(cb);
  }

  private setRound(open: boolean): void {
    if (this.roundOpen === open) return;
    this.roundOpen = open;
    for (const cb of this.roundListeners) cb(open);
  }

  onUp(cb: () => void): void {
    this.upListeners.push(cb);
  }

  /** Resolves after the first connection attempt, whichever way it went, so that devices do
   * not start polling into a link that is still connecting. */
  start(): Promise<void> {
    this.state = 'connecting';
    return this.connect();
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    this.setRound(false);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.failQueued(new ModbusLinkError(`bus ${this.opts.id} stopped`));
    await this.transport.close();
  }

  /** Queue one read. Rejects at once while the link is down, so that a poll never waits
   * for a reconnect and devices on a dead bus are marked offline promptly. */
  read(req: ReadRequest, opts?: RequestOptions): Promise<number[]> {
    return this.enqueue(req, null, null, opts) as Promise<number[]>;
  }

  /** Queued like a read, never retried: a write whose confirmation was lost may have been applied. */
  async write(req: WriteRequest): Promise<void> {
    await this.enqueue(null, req, null, { retries: 0 });
  }

  /** One Read Device Identification request (FC 43/14), through the queue like a read. */
  identify(unitId: number, objectId: number, opts?: RequestOptions): Promise<DeviceIdPart> {
    return this.enqueue(null, null, { unitId, objectId }, opts) as Promise<DeviceIdPart>;
  }

  private enqueue(read: ReadRequest | null, write: WriteRequest | null, identify: Job['identify'], opts: RequestOptions | undefined): Promise<unknown> {
    if (this.state !== 'up') {
      return Promise.reject(new ModbusLinkError(`bus ${this.opts.id} is ${this.state}${this.lastError ? `: ${this.lastError}` : ''}`));
    }
    const low = opts?.priority === 'low';
    return new Promise((resolve, reject) => {
      const job: Job = { read, write, identify, timeoutMs: opts?.timeoutMs ?? this.opts.timeoutMs, low, retries: opts?.retries ?? this.opts.retries, attempt: 0, resolve, reject };
      if (low) this.lowQueue.push(job);
      else {
        this.queue.push(job);
        this.setRound(true);
      }
      this.pump();
    });
  }

  get queueLength(): number {
    return this.queue.length + this.lowQueue.length;
  }

  /** Puts queued jobs on the link while it has room, each settled by the link's promise.
   * Callbacks, not an async loop: this is once per request (PERFORMANCE.md). */
  private pump(): void {
    const max = this.transport.maxInFlight;
    while (this.inFlight < max && this.queue.length > 0) {
      const i = max === 1 ? 0 : this.nextStartable();
      if (i < 0) break;
      const job = i === 0 ? this.queue.shift()! : this.queue.splice(i, 1)[0]!;
      this.launch(job);
    }
    // A low-priority job waits for the check phase of this turn: the reply just settled may
    // make its poller queue the device's next block in the microtasks after this, and that
    // block goes first (else a scan request slips in between every two blocks of a poll).
    if (this.inFlight === 0 && this.queue.length === 0 && this.lowQueue.length > 0 && !this.lowSoon) {
      this.lowSoon = true;
      setImmediate(this.launchLow);
    }
    // The poller handles the last reply in microtasks after this: the check phase of this
    // turn comes after them, and costs no wake-up.
    if (this.inFlight === this.lowInFlight && this.roundListeners.length > 0) setImmediate(this.endRound);
  }

  private readonly launchLow = (): void => {
    this.lowSoon = false;
    // A job queued meanwhile went out in its own pump, which comes back here when it is done.
    if (this.inFlight > 0 || this.queue.length > 0) return;
    const low = this.lowQueue.shift();
    if (low) this.launch(low);
  };

  private launch(job: Job): void {
    this.inFlight++;
    if (job.low) this.lowInFlight++;
    this.unitBusy[unitOf(job)]!++;
    this.tryJob(job);
  }

  /** The first queued job whose unit has nothing in flight (a unit's jobs stay in order). */
  private nextStartable(): number {
    for (let i = 0; i < this.queue.length; i++) if (this.unitBusy[unitOf(this.queue[i]!)] === 0) return i;
    return -1;
  }

  private readonly endRound = (): void => {
    if (this.inFlight === this.lowInFlight && this.queue.length === 0) this.setRound(false);
  };

  private tryJob(job: Job): void {
    const t = job.timeoutMs;
    let p: Promise<unknown>;
    try {
      if (job.read) p = this.transport.read(job.read, t);
      else if (job.write) p = this.transport.write(job.write, t);
      else p = this.transport.identify(job.identify!.unitId, job.identify!.objectId, t);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (v) => this.jobDone(job, v),
      (err: unknown) => this.jobFailed(job, err),
    );
  }

  private jobDone(job: Job, v: unknown): void {
    this.release(job);
    job.resolve(job.write ? NO_VALUES : v);
    this.pump();
  }

  private jobFailed(job: Job, err: unknown): void {
    if (err instanceof ModbusError && err.retryable && job.attempt < job.retries && this.state === 'up') {
      job.attempt++;
      this.tryJob(job);
      return;
    }
    this.release(job);
    job.reject(err as Error);
    this.pump();
  }

  private release(job: Job): void {
    this.inFlight--;
    if (job.low) this.lowInFlight--;
    this.unitBusy[unitOf(job)]!--;
  }

  private async connect(): Promise<void> {
    if (this.state === 'stopped') return;
    try {
      await this.transport.open();
      if (this.stopped()) {
        await this.transport.close();
        return;
      }
      this.attempt = 0;
      this.state = 'up';
      this.lastError = '';
      this.log.info({ bus: this.opts.id, endpoint: this.transport.endpoint }, 'modbus link up');
      for (const cb of this.upListeners) cb();
    } catch (err) {
      this.lastError = (err as Error).message;
      if (this.stopped()) return;
      this.state = 'down';
      if (this.attempt === 0) this.log.warn({ bus: this.opts.id, err: this.lastError }, 'modbus link unavailable, retrying with backoff');
      this.scheduleReconnect();
    }
  }

  /** Re-reads the state after an await (stop() may have run meanwhile). */
  private stopped(): boolean {
    return this.state === 'stopped';
  }

  private scheduleReconnect(): void {
    if (this.state === 'stopped' || this.reconnectTimer) return;
    const base = Math.min(this.opts.reconnectMaxMs, this.opts.reconnectMinMs * 2 ** this.attempt);
    // Jitter spreads the reconnects of many buses (and many gateways) after a shared outage.
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.state = 'connecting';
      void this.connect();
    }, delay);
    this.reconnectTimer.unref?.();
  }

  private failQueued(err: Error): void {
    const jobs = [...this.queue, ...this.lowQueue];
    this.queue = [];
    this.lowQueue = [];
    for (const j of jobs) j.reject(err);
  }
}
