// One Modbus line or connection, one queue: every device on the bus takes turns, one
// request in flight at a time. Owns connect/reconnect with capped exponential backoff.
import type { Logger } from '../../log.js';
import type { ModbusTransport, ReadRequest, WriteRequest } from './transport.js';
import { ModbusError, ModbusLinkError } from './errors.js';

export interface BusOptions {
  id: string;
  timeoutMs: number;
  /** Extra attempts after a timeout or a damaged frame (not after an exception: the device did answer). */
  retries: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
}

interface Job {
  run: (timeoutMs: number) => Promise<number[]>;
  retries: number;
  resolve: (v: number[]) => void;
  reject: (e: Error) => void;
}

export type BusState = 'connecting' | 'up' | 'down' | 'stopped';

export class ModbusBus {
  private queue: Job[] = [];
  private busy = false;
  private state: BusState = 'stopped';
  private reconnectTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private upListeners: (() => void)[] = [];
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
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.failQueued(new ModbusLinkError(`bus ${this.opts.id} stopped`));
    await this.transport.close();
  }

  /** Queue one read. Rejects at once while the link is down, so that a poll never waits
   * for a reconnect and devices on a dead bus are marked offline promptly. */
  read(req: ReadRequest, opts?: { retries?: number }): Promise<number[]> {
    return this.enqueue((t) => this.transport.read(req, t), opts?.retries ?? this.opts.retries);
  }

  /** Queued like a read, never retried: a write whose confirmation was lost may have been applied. */
  async write(req: WriteRequest): Promise<void> {
    await this.enqueue((t) => this.transport.write(req, t).then(() => []), 0);
  }

  private enqueue(run: Job['run'], retries: number): Promise<number[]> {
    if (this.state !== 'up') {
      return Promise.reject(new ModbusLinkError(`bus ${this.opts.id} is ${this.state}${this.lastError ? `: ${this.lastError}` : ''}`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ run, retries, resolve, reject });
      if (!this.busy) void this.drain();
    });
  }

  get queueLength(): number {
    return this.queue.length;
  }

  private async drain(): Promise<void> {
    this.busy = true;
    try {
      while (this.queue.length > 0) {
        const job = this.queue.shift()!;
        let attempt = 0;
        for (;;) {
          try {
            job.resolve(await job.run(this.opts.timeoutMs));
            break;
          } catch (err) {
            if (err instanceof ModbusError && err.retryable && attempt < job.retries && this.state === 'up') {
              attempt++;
              continue;
            }
            job.reject(err as Error);
            break;
          }
        }
      }
    } finally {
      this.busy = false;
    }
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
    const jobs = this.queue;
    this.queue = [];
    for (const j of jobs) j.reject(err);
  }
}
