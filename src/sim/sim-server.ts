// The built-in simulated site: a Modbus TCP server on loopback serving one simulated device
// per configured unit id. Requests are parsed with jsmodbus' MBAP codec; replies are framed
// here. Counts requests per unit so tests and the bench can check read planning.
import net from 'node:net';
import jsmodbus from 'jsmodbus';
import type { Logger } from '../log.js';
import type { RegisterKind } from '../config/profile-schema.js';
import type { SimulatedDevice } from './simulated-device.js';

const TCPRequest = jsmodbus.ModbusTCPRequest;
const KIND_BY_FC: Record<number, RegisterKind> = { 1: 'coil', 2: 'discrete', 3: 'holding', 4: 'input' };

export class SimServer {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  readonly requests = new Map<number, number>();

  constructor(
    private readonly host: string,
    private readonly port: number,
    readonly units: ReadonlyMap<number, SimulatedDevice>,
    private readonly log: Logger,
  ) {}

  get boundPort(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : this.port;
  }

  async start(): Promise<void> {
    const server = net.createServer((s) => this.serve(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`simulator cannot listen on ${this.host}:${this.port}: ${err.code ?? err.message}`)));
      server.listen(this.port, this.host, () => resolve());
    });
    this.server = server;
    this.log.info({ host: this.host, port: this.boundPort, units: [...this.units.keys()] }, 'simulated Modbus TCP devices listening');
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    let rx = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('data', (chunk) => {
      rx = rx.length ? Buffer.concat([rx, chunk]) : chunk;
      while (rx.length >= 7) {
        const len = rx.readUInt16BE(4);
        if (len < 2 || len > 254) {
          socket.destroy();
          return;
        }
        if (rx.length < 6 + len) break;
        const frame = rx.subarray(0, 6 + len);
        rx = rx.subarray(6 + len);
        const reply = this.answer(frame);
        if (reply) socket.write(reply);
      }
    });
  }

  private answer(frame: Buffer): Buffer | null {
    const tid = frame.readUInt16BE(0);
    const unit = frame[6]!;
    const fc = frame[7]!;
    const dev = this.units.get(unit);
    if (!dev) return null; // no such unit: stay silent, as a device that is not there
    this.requests.set(unit, (this.requests.get(unit) ?? 0) + 1);
    if (fc === 5 || fc === 6 || fc === 15 || fc === 16) return writeReply(dev, frame);
    const req = TCPRequest.fromBuffer(frame);
    const kind = KIND_BY_FC[fc];
    const body = req?.body as unknown as { start?: number; count?: number } | undefined;
    if (!kind) return exception(tid, unit, fc, 1); // ILLEGAL FUNCTION
    if (!body || body.start === undefined || body.count === undefined) return exception(tid, unit, fc, 3);
    const max = kind === 'coil' || kind === 'discrete' ? 2000 : 125;
    if (body.count < 1 || body.count > max) return exception(tid, unit, fc, 3);
    const values = dev.read(kind, body.start, body.count);
    if (!values) return exception(tid, unit, fc, 2);
    let data: Buffer;
    if (kind === 'coil' || kind === 'discrete') {
      data = Buffer.alloc(Math.ceil(values.length / 8));
      values.forEach((v, i) => {
        if (v) data[i >> 3]! |= 1 << (i & 7);
      });
    } else {
      data = Buffer.alloc(values.length * 2);
      values.forEach((v, i) => data.writeUInt16BE(v & 0xffff, 2 * i));
    }
    const out = Buffer.alloc(9 + data.length);
    out.writeUInt16BE(tid, 0);
    out.writeUInt16BE(0, 2);
    out.writeUInt16BE(3 + data.length, 4);
    out[6] = unit;
    out[7] = fc;
    out[8] = data.length;
    data.copy(out, 9);
    return out;
  }
}

/** FC 05/06/15/16 (Modbus Application Protocol v1.1b3, 6.5, 6.6, 6.11, 6.12): the reply
 * echoes the address and the value (single) or the quantity (multiple). */
function writeReply(dev: SimulatedDevice, frame: Buffer): Buffer {
  const tid = frame.readUInt16BE(0);
  const unit = frame[6]!;
  const fc = frame[7]!;
  if (frame.length < 12) return exception(tid, unit, fc, 3);
  const address = frame.readUInt16BE(8);
  let values: number[];
  if (fc === 5 || fc === 6) {
    const v = frame.readUInt16BE(10);
    if (fc === 5 && v !== 0xff00 && v !== 0) return exception(tid, unit, fc, 3);
    values = [fc === 5 ? (v ? 1 : 0) : v];
  } else {
    const qty = frame.readUInt16BE(10);
    const bytes = frame[12] ?? 0;
    if (frame.length < 13 + bytes || qty < 1) return exception(tid, unit, fc, 3);
    values = Array.from({ length: qty }, (_, i) => (fc === 15 ? (frame[13 + (i >> 3)]! >> (i & 7)) & 1 : frame.readUInt16BE(13 + 2 * i)));
  }
  if (!dev.accept(fc === 5 || fc === 15 ? 'coil' : 'holding', address, values)) return exception(tid, unit, fc, 2);
  const out = Buffer.alloc(12);
  frame.copy(out, 0, 0, 12);
  out.writeUInt16BE(6, 4);
  return out;
}

function exception(tid: number, unit: number, fc: number, code: number): Buffer {
  const out = Buffer.alloc(9);
  out.writeUInt16BE(tid, 0);
  out.writeUInt16BE(0, 2);
  out.writeUInt16BE(3, 4);
  out[6] = unit;
  out[7] = fc | 0x80;
  out[8] = code;
  return out;
}
