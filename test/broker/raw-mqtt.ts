// Hand-made MQTT 3.1.1 packets for raw-socket tests (fuzzing, oversized packets): no client
// library in the way, so the bytes are exactly what the test says.
import net from 'node:net';

/** Remaining Length varint (MQTT 3.1.1 section 2.2.3). */
export function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

const str = (s: string | Buffer) => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
};

export function packet(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte]), varint(body.length), body]);
}

export function connectPacket(clientId: string, username?: string, password?: string, keepalive = 30, clean = true): Buffer {
  let flags = clean ? 0x02 : 0x00; // clean session
  if (username !== undefined) flags |= 0x80;
  if (password !== undefined) flags |= 0x40;
  const ka = Buffer.alloc(2);
  ka.writeUInt16BE(keepalive);
  const body = Buffer.concat([
    str('MQTT'),
    Buffer.from([4, flags]),
    ka,
    str(clientId),
    ...(username !== undefined ? [str(username)] : []),
    ...(password !== undefined ? [str(password)] : []),
  ]);
  return packet(0x10, body);
}

export function publishPacket(topic: string, payload: Buffer | string): Buffer {
  return packet(0x30, Buffer.concat([str(topic), typeof payload === 'string' ? Buffer.from(payload) : payload]));
}

/** PUBLISH with QoS 1 or 2 and a packet identifier (MQTT 3.1.1 section 3.3.2.2). */
export function publishQosPacket(topic: string, payload: Buffer | string, qos: 1 | 2, id: number, retain = false): Buffer {
  const mid = Buffer.alloc(2);
  mid.writeUInt16BE(id);
  return packet(0x30 | (qos << 1) | (retain ? 1 : 0), Buffer.concat([str(topic), mid, typeof payload === 'string' ? Buffer.from(payload) : payload]));
}

export function subscribePacket(id: number, topic: string, qos: 0 | 1 | 2 = 0): Buffer {
  const mid = Buffer.alloc(2);
  mid.writeUInt16BE(id);
  return packet(0x82, Buffer.concat([mid, str(topic), Buffer.from([qos])]));
}

export const pingreq = Buffer.from([0xc0, 0x00]);

/** A raw TCP connection that records what came back and when it closed. */
export class RawClient {
  readonly socket: net.Socket;
  received = Buffer.alloc(0);
  closed = false;
  readonly done: Promise<void>;

  /** `localAddress`: another loopback address (127.0.0.2 ...) to act as another LAN host. */
  constructor(port: number, localAddress?: string) {
    this.socket = net.createConnection({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
    this.socket.on('data', (d: Buffer) => (this.received = Buffer.concat([this.received, d])));
    this.socket.on('error', () => undefined);
    this.done = new Promise((resolve) =>
      this.socket.once('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.socket.connecting) return resolve();
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }

  write(b: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.write(b, () => resolve());
    });
  }

  /** Resolves with the CONNACK return code, or undefined if the connection closed without one. */
  async connackOrClose(): Promise<number | undefined> {
    while (this.connack === undefined && !this.closed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.socket.off('data', done);
          this.socket.off('close', done);
          resolve();
        };
        this.socket.once('data', done);
        this.socket.once('close', done);
      });
    }
    return this.connack;
  }

  /** Packets of type `type` (high nibble of the first byte) received so far, whole packets only. */
  count(type: number): number {
    let n = 0;
    let i = 0;
    const b = this.received;
    while (i < b.length) {
      const t = b[i]! >> 4;
      let len = 0;
      let mul = 1;
      let j = i + 1;
      for (; j < b.length; j++) {
        len += (b[j]! & 0x7f) * mul;
        mul *= 128;
        if (!(b[j]! & 0x80)) break;
      }
      if (j >= b.length || j + 1 + len > b.length) break;
      if (t === type) n++;
      i = j + 1 + len;
    }
    return n;
  }

  /** CONNACK return code once one has arrived (MQTT 3.1.1 section 3.2.2.3). */
  get connack(): number | undefined {
    return this.received.length >= 4 && this.received[0] === 0x20 ? this.received[3] : undefined;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
