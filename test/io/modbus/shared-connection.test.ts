// One misbehaving unit must not cost its neighbours behind the same Modbus TCP endpoint (a
// TCP-to-RTU converter with several units is the usual case; issue 15): a scripted endpoint
// serves a good unit and a garbage-answering one on one connection, and the good unit keeps
// at least 90 % of its readings, with one request at a time and with several in flight.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ModbusBus } from '../../../src/io/modbus/bus.js';
import { ModbusTcpTransport } from '../../../src/io/modbus/tcp-transport.js';
import { silentLogger } from '../../../src/log.js';
import { seededRandom } from '../../../src/sim/random.js';

let server: net.Server | null = null;
let bus: ModbusBus | null = null;
afterEach(async () => {
  await bus?.stop();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = bus = null;
});

function reply(tid: number, unit: number, words: number[], byteCount = words.length * 2, lengthField = 3 + words.length * 2): Buffer {
  const b = Buffer.alloc(9 + words.length * 2);
  b.writeUInt16BE(tid, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(lengthField, 4);
  b[6] = unit;
  b[7] = 3;
  b[8] = byteCount;
  words.forEach((w, i) => b.writeUInt16BE(w, 9 + 2 * i));
  return b;
}

/** Unit 1 answers its register value 250 after 2 ms; unit 2 answers garbage of five kinds. */
async function endpoint(): Promise<{ port: number; garbageKinds: Map<string, number> }> {
  const random = seededRandom(15);
  const garbageKinds = new Map<string, number>();
  server = net.createServer((sock) => {
    sock.on('data', (d) => {
      for (let o = 0; o + 12 <= d.length; o += 12) {
        const tid = d.readUInt16BE(o);
        const unit = d[o + 6]!;
        const count = d.readUInt16BE(o + 10);
        if (unit === 1) {
          setTimeout(() => sock.write(reply(tid, 1, Array.from({ length: count }, () => 250))), 2);
          continue;
        }
        const kinds = ['length lies', 'random bytes', 'bad byte count', 'corrupt header', 'silence'] as const;
        const kind = kinds[Math.floor(random() * kinds.length)]!;
        garbageKinds.set(kind, (garbageKinds.get(kind) ?? 0) + 1);
        let out: Buffer | null;
        switch (kind) {
          case 'length lies': // says fewer bytes than it sends: the rest is left in the stream
            out = Buffer.concat([reply(tid, 2, [7, 7, 7], 6, 5), Buffer.from([0xfa, 0, 0xfa, 0])]);
            break;
          case 'random bytes':
            out = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 30) }, () => Math.floor(random() * 256)));
            break;
          case 'bad byte count':
            out = reply(tid, 2, [1, 2], 9);
            break;
          case 'corrupt header':
            out = Buffer.from([tid >> 8, tid & 255, 0, 0, 0xfa, 0x00, 2, 3, 0]);
            break;
          default:
            out = null;
        }
        if (out) setTimeout(() => sock.write(out), 1 + Math.floor(random() * 3));
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, garbageKinds };
}

async function goodShare(maxInFlight: number): Promise<{ share: number; kinds: Map<string, number>; drops: string[] }> {
  const { port, garbageKinds } = await endpoint();
  bus = new ModbusBus({ id: 'conv', timeoutMs: 60, retries: 1, reconnectMinMs: 50, reconnectMaxMs: 200 }, new ModbusTcpTransport({ host: '127.0.0.1', port, connectTimeoutMs: 1000, maxInFlight }), silentLogger());
  const drops: string[] = [];
  bus.transport.onDrop((r) => drops.push(r));
  await bus.start();
  let good = 0;
  const rounds = 80;
  for (let i = 0; i < rounds; i++) {
    // As a poll tick does: both units' scans queued at once.
    const [a] = await Promise.allSettled([
      bus.read({ unitId: 1, register: 'holding', start: 0, count: 4 }),
      bus.read({ unitId: 2, register: 'holding', start: 0, count: 4 }),
    ]);
    if (a.status === 'fulfilled') {
      expect(a.value).toEqual([250, 250, 250, 250]);
      good++;
    }
  }
  return { share: good / rounds, kinds: garbageKinds, drops };
}

describe('a garbage-answering unit behind the same Modbus TCP endpoint', () => {
  it('costs the good unit on the same connection less than 10 % of its readings (one request at a time)', async () => {
    const { share, kinds, drops } = await goodShare(1);
    expect([...kinds.keys()].sort()).toEqual(['bad byte count', 'corrupt header', 'length lies', 'random bytes', 'silence']);
    expect(share).toBeGreaterThanOrEqual(0.9);
    expect(drops).toEqual([]);
  });

  it('and with both units in flight at once', async () => {
    const { share, drops } = await goodShare(2);
    expect(share).toBeGreaterThanOrEqual(0.9);
    expect(drops).toEqual([]);
  });
});
