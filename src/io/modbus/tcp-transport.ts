// Modbus TCP link: MBAP framing from jsmodbus (its request/response codecs), our own
// transaction matching. jsmodbus' client keeps a queue per client and one unit id per client;
// a bus with several unit ids behind one TCP gateway needs one queue per connection and
// replies matched by transaction id, so the bus drives the codecs directly.
import net from 'node:net';
import jsmodbus from 'jsmodbus';
import type { ModbusTransport, ReadRequest, LinkStats, WriteRequest } from './transport.js';
import { emptyStats } from './transport.js';
import { FC, requestBody, unpack, writeBody, writeFc } from './pdu.js';
import { ModbusExceptionError, ModbusFrameError, ModbusLinkError, ModbusTimeoutError } from './errors.js';

const TCPRequest = jsmodbus.ModbusTCPRequest;
const TCPResponse = jsmodbus.ModbusTCPResponse;

/** MBAP header is 7 bytes; the length field counts unit id + PDU, PDU at most 253 bytes
 * (Modbus Messaging on TCP/IP Implementation Guide v1.0b, 3.1.3). */
const MAX_MBAP_LENGTH = 254;

/** What a reply must be: its function code, and how to take the values out of its body. */
interface Expect {
  unitId: number;
  fc: number;
  /** null: the body does not answer the request (wrong count); the message says what was asked. */
  decode: (body: ReplyBody) => number[] | null;
  asked: string;
}

interface ReplyBody {
  fc: number;
  isException: boolean;
  code?: number;
  valuesAsBuffer?: Buffer;
}

interface Pending extends Expect {
  tid: number;
  resolve: (v: number[]) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export interface TcpTransportOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
}

export class ModbusTcpTransport implements ModbusTransport {
  readonly stats: LinkStats = emptyStats();
  readonly endpoint: string;
  private socket: net.Socket | null = null;
  private rx: Buffer = Buffer.alloc(0);
  private tid = 0;
  private pending: Pending | null = null;
  private dropListeners: ((reason: string) => void)[] = [];

  constructor(private readonly opts: TcpTransportOptions) {
    this.endpoint = `${opts.host}:${opts.port}`;
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
        s.setKeepAlive(true, 10_000);
        s.on('data', (d) => this.onData(d));
        s.on('error', () => {
          /* 'close' follows and carries the drop */
        });
        s.on('close', () => this.dropped('connection closed by peer'));
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
    this.failPending(new ModbusLinkError('link closed'));
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.destroy();
    });
  }

  read(req: ReadRequest, timeoutMs: number): Promise<number[]> {
    return this.transact(requestBody(req), timeoutMs, {
      unitId: req.unitId,
      fc: FC[req.register],
      decode: (b) => (b.valuesAsBuffer ? unpack(req, b.valuesAsBuffer) : null),
      asked: `${req.count} ${req.register} values asked`,
    });
  }

  async write(req: WriteRequest, timeoutMs: number): Promise<void> {
    // The reply echoes address and value or quantity; its function code is what we check.
    await this.transact(writeBody(req), timeoutMs, { unitId: req.unitId, fc: writeFc(req), decode: () => [], asked: 'a write confirmation' });
  }

  private transact(body: { byteCount: number }, timeoutMs: number, expect: Expect): Promise<number[]> {
    const s = this.socket;
    if (!s) return Promise.reject(new ModbusLinkError(`not connected to ${this.endpoint}`));
    if (this.pending) return Promise.reject(new Error('ModbusTcpTransport: one request at a time'));
    this.tid = (this.tid + 1) & 0xffff;
    const frame = new TCPRequest(this.tid, 0, body.byteCount + 1, expect.unitId, body as never).createPayload();
    return new Promise<number[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        // A late reply carries this tid and is dropped as stale when it arrives.
        this.pending = null;
        this.stats.timeouts++;
        reject(new ModbusTimeoutError(timeoutMs));
      }, timeoutMs);
      this.pending = { ...expect, tid: this.tid, resolve, reject, timer };
      this.stats.requests++;
      this.stats.txBytes += frame.length;
      s.write(frame);
    });
  }

  private onData(chunk: Buffer): void {
    this.stats.rxBytes += chunk.length;
    this.rx = this.rx.length === 0 ? chunk : Buffer.concat([this.rx, chunk]);
    while (this.rx.length >= 7) {
      const length = this.rx.readUInt16BE(4);
      if (length < 2 || length > MAX_MBAP_LENGTH) {
        // The stream is desynchronised: no later byte can be trusted. Drop the link.
        this.stats.badFrames++;
        this.fail(new ModbusFrameError(`bad MBAP length ${length} from ${this.endpoint}`));
        this.socket?.destroy();
        return;
      }
      const size = 6 + length;
      if (this.rx.length < size) return;
      const frame = this.rx.subarray(0, size);
      this.rx = this.rx.subarray(size);
      this.onFrame(frame);
    }
  }

  private onFrame(frame: Buffer): void {
    const p = this.pending;
    const tid = frame.readUInt16BE(0);
    if (!p || tid !== p.tid || frame.readUInt16BE(2) !== 0 || frame[6] !== p.unitId) {
      this.stats.staleFrames++;
      return;
    }
    const res = TCPResponse.fromBuffer(frame);
    if (!res) {
      this.stats.badFrames++;
      return this.fail(new ModbusFrameError(`unparseable reply (${frame.toString('hex')})`));
    }
    const body = res.body as unknown as ReplyBody;
    if (body.isException) {
      this.stats.exceptions++;
      this.stats.responses++;
      return this.fail(new ModbusExceptionError(body.code ?? 0));
    }
    if (body.fc !== p.fc) {
      this.stats.badFrames++;
      return this.fail(new ModbusFrameError(`reply function ${body.fc} does not answer function ${p.fc}`));
    }
    const values = p.decode(body);
    if (!values) {
      this.stats.badFrames++;
      return this.fail(new ModbusFrameError(`reply carries ${body.valuesAsBuffer?.length ?? 0} bytes, ${p.asked}`));
    }
    this.stats.responses++;
    this.settle();
    p.resolve(values);
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

  private failPending(err: Error): void {
    this.fail(err);
  }

  private dropped(reason: string): void {
    const was = this.socket !== null;
    this.socket = null;
    this.failPending(new ModbusLinkError(`${reason} (${this.endpoint})`));
    if (was) for (const cb of this.dropListeners) cb(reason);
  }
}
