// Modbus TCP link: MBAP framing (Modbus Messaging on TCP/IP Implementation Guide v1.0b, 3.1)
// and our own transaction matching. A bus with several unit ids behind one TCP gateway needs
// one queue per connection and replies matched by transaction id, so the bus drives the frames
// directly. Reads are framed and parsed here without intermediate objects (the per-poll hot
// path, PERFORMANCE.md); write request bodies still come from jsmodbus' codecs (pdu.ts).
import net from 'node:net';
import jsmodbus from 'jsmodbus';
import type { ModbusTransport, ReadRequest, LinkStats, WriteRequest } from './transport.js';
import { emptyStats } from './transport.js';
import { FC, unpack, writeBody, writeFc } from './pdu.js';
import { ModbusExceptionError, ModbusFrameError, ModbusLinkError, ModbusTimeoutError } from './errors.js';
import { FC_MEI, deviceIdRequestBody, parseDeviceIdBody, type DeviceIdPart } from './device-id.js';
import { monoNow } from '../../time/monotonic.js';

const TCPRequest = jsmodbus.ModbusTCPRequest;

/** MBAP header is 7 bytes; the length field counts unit id + PDU, PDU at most 253 bytes
 * (Modbus Messaging on TCP/IP Implementation Guide v1.0b, 3.1.3). */
const MAX_MBAP_LENGTH = 254;
const MBAP = 7;
/** Damaged headers with no good reply between them before the link is reconnected. */
const MAX_DAMAGED_IN_A_ROW = 10;

/** A header that could start a reply: protocol id 0 and a length a PDU can have (3.1.3). */
function plausibleHeader(rx: Buffer, at: number): boolean {
  if (rx.length < at + MBAP || rx[at + 2] !== 0 || rx[at + 3] !== 0) return false;
  const length = rx.readUInt16BE(at + 4);
  return length >= 2 && length <= MAX_MBAP_LENGTH;
}

/** A request waiting for its reply. One object per slot of the transport, reused: a poll
 * allocates none. */
interface Pending {
  active: boolean;
  tid: number;
  unitId: number;
  fc: number;
  /** The read being answered, or null for a write (whose echo is checked by length only). */
  read: ReadRequest | null;
  timeoutMs: number;
  deadline: number;
  /** Register words for a read; a DeviceIdPart for a device identification. */
  resolve: (v: never) => void;
  reject: (e: Error) => void;
}

const NO_VALUES: number[] = [];
const noop = (): void => {};

export interface TcpTransportOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  /** Requests on the connection at once (default 1). More than one relies on the server
   * answering several transactions at once (Implementation Guide v1.0b, 3.1.3 and 4.2). */
  maxInFlight?: number;
}

const newPending = (): Pending => ({ active: false, tid: 0, unitId: 0, fc: 0, read: null, timeoutMs: 0, deadline: 0, resolve: noop, reject: noop });

export class ModbusTcpTransport implements ModbusTransport {
  readonly stats: LinkStats = emptyStats();
  readonly endpoint: string;
  private socket: net.Socket | null = null;
  private rx: Buffer = Buffer.alloc(0);
  private tid = 0;
  readonly maxInFlight: number;
  /** One slot per request allowed in flight; a reply is matched to its slot by transaction id. */
  private readonly slots: Pending[];
  private active = 0;
  /** One deadline timer per link, re-armed with refresh() for each request instead of a
   * timer made and cleared per request. While requests follow each other it never fires;
   * after the last one it fires once and finds nothing pending. With several in flight it
   * is due at the oldest one's deadline (a bus uses one timeout for all). */
  private deadlineTimer: NodeJS.Timeout | null = null;
  private deadlineTimerMs = 0;
  /** When the deadline timer fires (monotonic ms). */
  private deadlineDue = 0;
  private dropListeners: ((reason: string) => void)[] = [];
  /** Why the socket is closing, when this side (or a socket error) closed it: the drop's reason. */
  private closeReason: string | null = null;
  /** Damaged headers since the last good reply (a guard: reconnect if the stream never recovers). */
  private damagedInARow = 0;

  constructor(private readonly opts: TcpTransportOptions) {
    this.endpoint = `${opts.host}:${opts.port}`;
    this.maxInFlight = Math.max(1, Math.floor(opts.maxInFlight ?? 1));
    this.slots = Array.from({ length: this.maxInFlight }, newPending);
  }

  get isOpen(): boolean {
    return this.socket !== null;
  }

  onDrop(cb: (reason: string) => void): void {
    this.dropListeners.push(cb);
  }

  open(): Promise<void> {
    if (this.socket) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ host: this.opts.host, port: this.opts.port });
      s.setNoDelay(true);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new ModbusLinkError(`connect to ${this.endpoint} timed out after ${this.opts.connectTimeoutMs} ms`));
      }, this.opts.connectTimeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        this.socket = s;
        this.rx = Buffer.alloc(0);
        this.closeReason = null;
        this.damagedInARow = 0;
        s.setKeepAlive(true, 10_000);
        s.on('data', (d) => this.onData(d));
        s.on('error', (err) => {
          // 'close' follows and carries the drop, with this as its reason.
          this.closeReason ??= `connection error: ${err.message}`;
        });
        s.on('close', () => this.dropped(this.closeReason ?? 'connection closed by peer'));
        resolve();
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        s.destroy();
        reject(new ModbusLinkError(`connect to ${this.endpoint} failed: ${err.message}`));
      });
    });
  }

  async close(): Promise<void> {
    const s = this.socket;
    if (!s) return;
    this.socket = null;
    this.failAll(new ModbusLinkError('link closed'));
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.destroy();
    });
  }

  read(req: ReadRequest, timeoutMs: number): Promise<number[]> {
    // MBAP + PDU of FC 01-04: function, start address, quantity (Modbus Application
    // Protocol v1.1b3, 6.1-6.4).
    const s = this.socket;
    if (!s) return Promise.reject(new ModbusLinkError(`not connected to ${this.endpoint}`));
    if (this.active >= this.maxInFlight) return Promise.reject(new Error(`ModbusTcpTransport: ${this.maxInFlight} request(s) at a time`));
    const tid = this.nextTid();
    const fc = FC[req.register];
    const frame = Buffer.allocUnsafe(12);
    frame.writeUInt16BE(tid, 0);
    frame.writeUInt16BE(0, 2);
    frame.writeUInt16BE(6, 4);
    frame[6] = req.unitId;
    frame[7] = fc;
    frame.writeUInt16BE(req.start, 8);
    frame.writeUInt16BE(req.count, 10);
    return this.transact(s, frame, tid, req.unitId, fc, req, timeoutMs) as Promise<number[]>;
  }

  identify(unitId: number, objectId: number, timeoutMs: number): Promise<DeviceIdPart> {
    const s = this.socket;
    if (!s) return Promise.reject(new ModbusLinkError(`not connected to ${this.endpoint}`));
    if (this.active >= this.maxInFlight) return Promise.reject(new Error(`ModbusTcpTransport: ${this.maxInFlight} request(s) at a time`));
    const tid = this.nextTid();
    const body = deviceIdRequestBody(objectId);
    const frame = Buffer.allocUnsafe(MBAP + 1 + body.length);
    frame.writeUInt16BE(tid, 0);
    frame.writeUInt16BE(0, 2);
    frame.writeUInt16BE(2 + body.length, 4);
    frame[6] = unitId;
    frame[7] = FC_MEI;
    body.copy(frame, 8);
    return this.transact(s, frame, tid, unitId, FC_MEI, null, timeoutMs) as Promise<DeviceIdPart>;
  }

  async write(req: WriteRequest, timeoutMs: number): Promise<void> {
    const s = this.socket;
    if (!s) throw new ModbusLinkError(`not connected to ${this.endpoint}`);
    if (this.active >= this.maxInFlight) throw new Error(`ModbusTcpTransport: ${this.maxInFlight} request(s) at a time`);
    const body = writeBody(req);
    const tid = this.nextTid();
    const frame = new TCPRequest(tid, 0, body.byteCount + 1, req.unitId, body as never).createPayload();
    // The reply echoes address and value or quantity; its function code is what we check.
    await this.transact(s, frame, tid, req.unitId, writeFc(req), null, timeoutMs);
  }

  private nextTid(): number {
    this.tid = (this.tid + 1) & 0xffff;
    return this.tid;
  }

  /** Writes of one turn leave in one segment: corked here, uncorked once the turn's
   * synchronous work (a poll tick queues every device's request) is done. */
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket?.uncork();
  };

  private transact(s: net.Socket, frame: Buffer, tid: number, unitId: number, fc: number, read: ReadRequest | null, timeoutMs: number): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      let p = this.slots[0]!;
      for (const q of this.slots) if (!q.active) { p = q; break; }
      p.active = true;
      p.tid = tid;
      p.unitId = unitId;
      p.fc = fc;
      p.read = read;
      p.timeoutMs = timeoutMs;
      p.deadline = monoNow() + timeoutMs;
      p.resolve = resolve;
      p.reject = reject;
      // The first in flight sets the deadline timer; later ones are due after it unless
      // they asked for a shorter timeout. With nothing in flight, whatever is buffered
      // answers nothing asked now (the rest of a damaged or late reply): dropped, so that it
      // cannot shift the next reply's framing.
      if (++this.active === 1) {
        this.armDeadline(timeoutMs);
        if (this.rx.length > 0) this.discard(this.rx.length);
      } else if (p.deadline < this.deadlineDue) this.newDeadlineTimer(timeoutMs);
      this.stats.requests++;
      this.stats.txBytes += frame.length;
      if (this.maxInFlight > 1 && !this.corked) {
        this.corked = true;
        s.cork();
        process.nextTick(this.uncork);
      }
      s.write(frame);
    });
  }

  private armDeadline(timeoutMs: number): void {
    // A timer keeps the delay it was made with; a bus uses one timeout, so this is a
    // refresh on every request but the first.
    if (this.deadlineTimer && this.deadlineTimerMs === timeoutMs) {
      this.deadlineTimer.refresh();
      this.deadlineDue = monoNow() + timeoutMs;
      return;
    }
    this.newDeadlineTimer(timeoutMs);
  }

  private newDeadlineTimer(ms: number): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimerMs = ms;
    this.deadlineDue = monoNow() + ms;
    this.deadlineTimer = setTimeout(() => this.onDeadline(), ms);
    this.deadlineTimer.unref();
  }

  private onDeadline(): void {
    const now = monoNow();
    let next = Infinity;
    for (const p of this.slots) {
      if (!p.active) continue;
      const left = p.deadline - now;
      if (left > 1) {
        // Not yet due (a guard, or a later request of several in flight); an early timeout
        // would cost a good reply, so wait out the rest.
        next = Math.min(next, left);
        continue;
      }
      // A late reply carries this tid and is dropped as stale when it arrives.
      this.stats.timeouts++;
      this.fail(p, new ModbusTimeoutError(p.timeoutMs));
    }
    if (next !== Infinity && this.active > 0) this.newDeadlineTimer(next);
  }

  private onData(chunk: Buffer): void {
    this.stats.rxBytes += chunk.length;
    this.rx = this.rx.length === 0 ? chunk : Buffer.concat([this.rx, chunk]);
    while (this.rx.length >= MBAP) {
      if (!plausibleHeader(this.rx, 0)) {
        // Out of step: a device answered garbage, or a reply's length field lied and left
        // bytes behind. Skip to the next header that answers a request in flight (matched by
        // transaction id, protocol id and unit: Implementation Guide v1.0b, 3.1.3), or drop
        // what is buffered; the requests in flight keep waiting for their own replies.
        this.stats.badFrames++;
        const owner = this.ownerOf(this.rx);
        if (owner) this.fail(owner, new ModbusFrameError(`bad MBAP header (protocol id ${this.rx.readUInt16BE(2)}, length ${this.rx.readUInt16BE(4)}) from ${this.endpoint}`));
        this.resync();
        if (this.socket && ++this.damagedInARow >= MAX_DAMAGED_IN_A_ROW) {
          this.closeWith(`${MAX_DAMAGED_IN_A_ROW} damaged replies in a row from ${this.endpoint}, reconnecting`);
          return;
        }
        continue;
      }
      const size = 6 + this.rx.readUInt16BE(4);
      if (this.rx.length < size) return;
      const frame = this.rx.subarray(0, size);
      this.rx = this.rx.subarray(size);
      if (this.onFrame(frame)) this.damagedInARow = 0;
      else if (this.rx.length >= MBAP && this.matchAt(0) === null) {
        // What follows a stale or damaged frame must start a reply to a request in flight;
        // if it does not, the frame's length may have lied about where it ended.
        this.resync();
      }
    }
  }

  /** The slot a header at `at` in the buffer would answer, or null. */
  private matchAt(at: number): Pending | null {
    const rx = this.rx;
    if (!plausibleHeader(rx, at)) return null;
    const tid = rx.readUInt16BE(at);
    for (const q of this.slots) if (q.active && q.tid === tid && q.unitId === rx[at + 6]) return q;
    return null;
  }

  /** The request a damaged header names by transaction id and unit, if any: its reply is
   * the damaged one, so it fails now (and is retried) rather than at its deadline. */
  private ownerOf(rx: Buffer): Pending | null {
    const tid = rx.readUInt16BE(0);
    for (const q of this.slots) if (q.active && q.tid === tid && q.unitId === rx[6]) return q;
    return null;
  }

  /** Drops buffered bytes up to the next header that answers a request in flight, or all. */
  private resync(): void {
    for (let i = 1; i + MBAP <= this.rx.length; i++) {
      if (this.matchAt(i)) {
        this.discard(i);
        return;
      }
    }
    this.discard(this.rx.length);
  }

  private discard(n: number): void {
    this.stats.discardedBytes += n;
    this.rx = n >= this.rx.length ? Buffer.alloc(0) : this.rx.subarray(n);
  }

  private closeWith(reason: string): void {
    this.closeReason = reason;
    this.socket?.destroy();
  }

  /** One complete MBAP frame. Checked at the edge: transaction, protocol id and unit must
   * be ours (else stale), then the function code, then the byte count against the request. */
  private onFrame(frame: Buffer): boolean {
    const tid = frame.readUInt16BE(0);
    let p: Pending | null = null;
    for (const q of this.slots) if (q.active && q.tid === tid) { p = q; break; }
    if (!p || frame.readUInt16BE(2) !== 0 || frame[6] !== p.unitId) {
      this.stats.staleFrames++;
      return false;
    }
    const fc = frame[MBAP];
    if (fc === undefined) {
      this.stats.badFrames++;
      return this.failFrame(p, new ModbusFrameError(`reply without a function code (${frame.toString('hex')})`));
    }
    if (fc & 0x80) {
      // An exception answers this request only with its function code | 0x80 (Modbus
      // Application Protocol v1.1b3, 7) and carries one exception code byte.
      if (fc !== (p.fc | 0x80) || frame.length !== MBAP + 2) {
        this.stats.badFrames++;
        return this.failFrame(p, new ModbusFrameError(`exception reply ${frame.toString('hex')} does not answer function ${p.fc}`));
      }
      this.stats.exceptions++;
      this.stats.responses++;
      this.fail(p, new ModbusExceptionError(frame[MBAP + 1]!));
      return true;
    }
    if (fc !== p.fc) {
      this.stats.badFrames++;
      return this.failFrame(p, new ModbusFrameError(`reply function ${fc} does not answer function ${p.fc}`));
    }
    let values: number[] | DeviceIdPart | null = NO_VALUES;
    if (p.fc === FC_MEI) {
      values = parseDeviceIdBody(frame.subarray(MBAP + 1));
      if (!values) {
        this.stats.badFrames++;
        return this.failFrame(p, new ModbusFrameError(`device identification reply ${frame.subarray(MBAP).toString('hex')} is malformed`));
      }
    } else if (p.read) {
      // Read reply: byte count, then the data (6.1-6.4); the count must fill the frame.
      const data = frame.length >= MBAP + 2 && frame[MBAP + 1] === frame.length - MBAP - 2 ? frame.subarray(MBAP + 2) : null;
      values = data ? unpack(p.read, data) : null;
      if (!values) {
        this.stats.badFrames++;
        return this.failFrame(p, new ModbusFrameError(`reply carries ${Math.max(0, frame.length - MBAP - 2)} bytes, ${p.read.count} ${p.read.register} values asked`));
      }
    } else if (frame.length !== MBAP + 5) {
      // Write reply: the echo of address and value or quantity (6.5, 6.6, 6.11, 6.12).
      this.stats.badFrames++;
      return this.failFrame(p, new ModbusFrameError(`reply carries ${frame.length - MBAP - 1} bytes, a write confirmation asked`));
    }
    this.stats.responses++;
    const resolve = p.resolve as (v: unknown) => void;
    this.settle(p);
    resolve(values);
    return true;
  }

  /** A damaged reply to `p`: fails it (the bus retries), false for onData. */
  private failFrame(p: Pending, err: Error): false {
    this.fail(p, err);
    return false;
  }

  private settle(p: Pending): void {
    p.active = false;
    p.read = null;
    p.resolve = noop;
    p.reject = noop;
    this.active--;
  }

  private fail(p: Pending, err: Error): void {
    if (!p.active) return;
    const reject = p.reject;
    this.settle(p);
    reject(err);
  }

  private failAll(err: Error): void {
    for (const p of this.slots) this.fail(p, err);
  }

  private dropped(reason: string): void {
    const was = this.socket !== null;
    this.socket = null;
    this.failAll(new ModbusLinkError(`${reason} (${this.endpoint})`));
    if (was) for (const cb of this.dropListeners) cb(reason);
  }
}
