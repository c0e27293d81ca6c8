// Modbus RTU link over a serial port (RS-485 adapter). One request on the line at a time:
// the bus above owns the queue shared by every device on the line (jsmodbus' RTU client
// queues per client, which would interleave two devices' frames on one wire).
//
// RTU has no length field and no transaction id, so the reply's length comes from the
// request, and safety comes from silence: a request is sent only after the line has been
// quiet for t3.5 (Modbus over Serial Line v1.02, 2.5.1.1), and after a timeout or a damaged
// frame only after a longer quiet, so that a late reply to the old request cannot be taken
// for the answer to the next one.
import { SerialPortStream } from '@serialport/stream';
import crc16modbus from 'crc/crc16modbus';
import jsmodbus from 'jsmodbus';
import type { ModbusTransport, ReadRequest, LinkStats, WriteRequest } from './transport.js';
import { emptyStats } from './transport.js';
import { FC, requestBody, replyDataBytes, unpack, writeBody, writeFc } from './pdu.js';
import { serialBinding } from './serial-binding.js';
import { ModbusExceptionError, ModbusFrameError, ModbusLineError, ModbusLinkError, ModbusTimeoutError } from './errors.js';
import { monoNow, type MonoClock } from '../../time/monotonic.js';
import { FC_MEI, deviceIdBodyLength, deviceIdRequestBody, parseDeviceIdBody, type DeviceIdPart } from './device-id.js';

const RTURequest = jsmodbus.ModbusRTURequest;

export interface RtuTransportOptions {
  path: string;
  baudRate: number;
  parity: 'none' | 'even' | 'odd';
  dataBits: 7 | 8;
  stopBits: 1 | 2;
}

interface Pending {
  unitId: number;
  fc: number;
  /** Values from a reply's data bytes; null if they do not answer the request. */
  decode: (data: Buffer) => number[] | DeviceIdPart | null;
  asked: string;
  resolve: (v: never) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** Longest wait for a babbling line to go quiet before sending anyway. */
const MAX_QUIET_WAIT_MS = 1000;

export class ModbusRtuTransport implements ModbusTransport {
  readonly stats: LinkStats = emptyStats();
  readonly endpoint: string;
  readonly maxInFlight = 1;
  /** One character on the wire (start + data + parity + stop bits), in ms. */
  readonly charMs: number;
  /** The inter-frame silence t3.5; fixed at 1.75 ms above 19200 baud (spec 2.5.1.1). */
  readonly t35Ms: number;
  /** Silence required after a timeout or a damaged frame before the next request. */
  readonly recoverQuietMs: number;
  private port: SerialPortStream | null = null;
  private rx: Buffer = Buffer.alloc(0);
  private pending: Pending | null = null;
  /** When a byte last went out or came in, on the monotonic clock: a wall-clock step must not
   * turn the t3.5 silence into an hour's pause (or no pause at all). */
  private lastActivity = 0;
  private needRecovery = false;
  private dropListeners: ((reason: string) => void)[] = [];

  constructor(
    private readonly opts: RtuTransportOptions,
    private readonly mono: MonoClock = monoNow,
  ) {
    this.endpoint = `${opts.path}@${opts.baudRate}`;
    const bits = 1 + opts.dataBits + (opts.parity === 'none' ? 0 : 1) + opts.stopBits;
    this.charMs = (bits * 1000) / opts.baudRate;
    this.t35Ms = opts.baudRate > 19200 ? 1.75 : 3.5 * this.charMs;
    // USB adapters deliver bytes in bursts every few ms, so the recovery quiet has a floor.
    this.recoverQuietMs = Math.max(50, 10 * this.t35Ms);
  }

  get isOpen(): boolean {
    return this.port !== null;
  }

  onDrop(cb: (reason: string) => void): void {
    this.dropListeners.push(cb);
  }

  open(): Promise<void> {
    if (this.port) return Promise.resolve();
    const { path, baudRate, parity, dataBits, stopBits } = this.opts;
    return new Promise((resolve, reject) => {
      const p = new SerialPortStream({ binding: serialBinding(), path, baudRate, parity, dataBits, stopBits, autoOpen: false });
      p.open((err) => {
        if (err) {
          reject(new ModbusLinkError(`open serial port ${path} failed: ${err.message}`));
          return;
        }
        this.port = p;
        this.rx = Buffer.alloc(0);
        this.lastActivity = this.mono();
        p.on('data', (d: Buffer) => this.onData(d));
        p.on('error', () => {
          /* 'close' follows with the reason */
        });
        // serialport sets err.disconnected when the device went away (adapter unplugged,
        // pty closed); a plain close is our own.
        p.on('close', (e: (Error & { disconnected?: boolean }) | null) =>
          this.dropped(e?.disconnected ? `serial port ${path} disconnected (adapter unplugged?)` : `serial port ${path} closed${e ? `: ${e.message}` : ''}`),
        );
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    const p = this.port;
    if (!p) return;
    this.port = null;
    this.fail(new ModbusLinkError('link closed'));
    if (!p.isOpen) return;
    await new Promise<void>((resolve) => p.close(() => resolve()));
  }

  read(req: ReadRequest, timeoutMs: number): Promise<number[]> {
    return this.transact(requestBody(req), timeoutMs, {
      unitId: req.unitId,
      fc: FC[req.register],
      decode: (data) => (data.length === replyDataBytes(req) ? unpack(req, data) : null),
      asked: `${req.count} ${req.register} values asked`,
    }) as Promise<number[]>;
  }

  async write(req: WriteRequest, timeoutMs: number): Promise<void> {
    await this.transact(writeBody(req), timeoutMs, { unitId: req.unitId, fc: writeFc(req), decode: () => [], asked: 'a write confirmation' });
  }

  identify(unitId: number, objectId: number, timeoutMs: number): Promise<DeviceIdPart> {
    const pdu = Buffer.concat([Buffer.from([FC_MEI]), deviceIdRequestBody(objectId)]);
    // jsmodbus has no body for function 43; the request's PDU in the shape its codec takes.
    const body = { createPayload: () => pdu, byteCount: pdu.length, fc: FC_MEI };
    return this.transact(body, timeoutMs, { unitId, fc: FC_MEI, decode: parseDeviceIdBody, asked: 'a device identification' }) as Promise<DeviceIdPart>;
  }

  private async transact(body: object, timeoutMs: number, expect: Omit<Pending, 'resolve' | 'reject' | 'timer'>): Promise<unknown> {
    if (this.pending) throw new Error('ModbusRtuTransport: one request at a time');
    await this.waitForQuiet();
    const p = this.port;
    if (!p) throw new ModbusLinkError(`serial port ${this.opts.path} is not open`);
    if (this.rx.length > 0) {
      this.stats.staleFrames++;
      this.stats.discardedBytes += this.rx.length;
    }
    this.rx = Buffer.alloc(0);
    const frame = new RTURequest(expect.unitId, body as never).createPayload();
    // The timeout counts from the end of our own frame on the wire.
    const limit = timeoutMs + Math.ceil(frame.length * this.charMs);
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => this.timedOut(timeoutMs), limit);
      this.pending = { ...expect, resolve, reject, timer };
      this.stats.requests++;
      this.stats.txBytes += frame.length;
      this.lastActivity = this.mono();
      p.write(frame);
    });
  }

  /** Waits until nothing has arrived for t3.5 (or the recovery quiet after trouble). */
  private async waitForQuiet(): Promise<void> {
    const need = this.needRecovery ? this.recoverQuietMs : this.t35Ms;
    const deadline = this.mono() + MAX_QUIET_WAIT_MS;
    for (;;) {
      const now = this.mono();
      const quietFor = now - this.lastActivity;
      if (quietFor >= need || now >= deadline) break;
      // Never sleep past the deadline, whatever the clock said.
      await new Promise((r) => setTimeout(r, Math.max(1, Math.ceil(Math.min(need - quietFor, deadline - now)))));
    }
    this.needRecovery = false;
  }

  private onData(chunk: Buffer): void {
    this.lastActivity = this.mono();
    this.stats.rxBytes += chunk.length;
    this.rx = this.rx.length === 0 ? chunk : Buffer.concat([this.rx, chunk]);
    if (this.pending) this.parse(this.pending);
  }

  private parse(p: Pending): void {
    while (this.rx.length >= 2 && this.pending === p) {
      const fc = this.rx[1]!;
      let size: number;
      if (fc >= 1 && fc <= 4) {
        if (this.rx.length < 3) return;
        size = 3 + this.rx[2]! + 2;
      } else if (fc === 5 || fc === 6 || fc === 15 || fc === 16) {
        size = 8; // the echo of address and value or quantity
      } else if (fc === FC_MEI) {
        const body = deviceIdBodyLength(this.rx, 2);
        if (body === -1) return;
        if (Number.isNaN(body)) {
          this.stats.badFrames++;
          return this.lineFault(new ModbusLineError('crc', `garbage on the line (${hex(this.rx)})`));
        }
        size = 2 + body + 2;
      } else if ([0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x8f, 0x90, 0xab].includes(fc)) {
        size = 5;
      } else {
        // Not a reply to anything we send: noise, or a frame we cannot delimit.
        this.stats.badFrames++;
        return this.lineFault(new ModbusLineError('crc', `garbage on the line (${hex(this.rx)})`));
      }
      if (this.rx.length < size) return;
      const frame = this.rx.subarray(0, size);
      if (crc16modbus(frame.subarray(0, size - 2)) !== frame.readUInt16LE(size - 2)) {
        this.stats.crcErrors++;
        return this.lineFault(new ModbusLineError('crc', `CRC error in reply from unit ${frame[0]} (${hex(frame)})`));
      }
      this.rx = this.rx.subarray(size);
      if (frame[0] !== p.unitId) {
        // A late answer from another unit to an earlier request: valid, but not ours.
        this.stats.staleFrames++;
        continue;
      }
      if ((fc & 0x7f) !== p.fc) {
        // The unit asked answers another function: a reply (or an exception, function | 0x80,
        // Modbus Application Protocol v1.1b3, 7) must carry the request's function code.
        this.stats.badFrames++;
        return this.fail(new ModbusFrameError(`reply function ${fc} from unit ${frame[0]} does not answer function ${p.fc} (${hex(frame)})`));
      }
      this.onFrame(p, frame);
    }
  }

  private onFrame(p: Pending, frame: Buffer): void {
    if (frame[1]! & 0x80) {
      this.stats.exceptions++;
      this.stats.responses++;
      return this.fail(new ModbusExceptionError(frame[2]!));
    }
    const data = frame.subarray(p.fc <= 4 ? 3 : 2, frame.length - 2);
    const values = p.decode(data);
    if (!values) {
      this.stats.badFrames++;
      return this.fail(new ModbusFrameError(`reply carries ${data.length} bytes, ${p.asked}`));
    }
    this.stats.responses++;
    this.settle();
    (p.resolve as (v: unknown) => void)(values);
  }

  private timedOut(timeoutMs: number): void {
    const got = this.rx.length;
    this.needRecovery = true;
    // The quiet counts from now: a reply still on its way must land before the next request
    // goes out, where it is discarded, not after, where it would pass for the next answer.
    this.lastActivity = this.mono();
    if (got > 0) {
      this.stats.shortFrames++;
      this.fail(new ModbusLineError('short', `short frame: ${got} bytes then silence (${hex(this.rx)})`));
    } else {
      this.stats.timeouts++;
      this.fail(new ModbusTimeoutError(timeoutMs));
    }
  }

  /** A damaged frame: nothing after it on the line can be delimited, so drop what we have
   * and let the next request wait for the recovery quiet. */
  private lineFault(err: ModbusLineError): void {
    this.stats.discardedBytes += this.rx.length;
    this.rx = Buffer.alloc(0);
    this.needRecovery = true;
    this.fail(err);
  }

  private settle(): void {
    if (this.pending) clearTimeout(this.pending.timer);
    this.pending = null;
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.settle();
    p?.reject(err);
  }

  private dropped(reason: string): void {
    const was = this.port !== null;
    this.port = null;
    this.fail(new ModbusLinkError(reason));
    if (was) for (const cb of this.dropListeners) cb(reason);
  }
}

function hex(b: Buffer): string {
  return b.length > 32 ? `${b.subarray(0, 32).toString('hex')}…` : b.toString('hex');
}
