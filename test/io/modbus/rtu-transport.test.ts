// The Modbus RTU link against a scripted device on the far end of a socat pty pair that
// misbehaves on purpose: CRC errors, short frames, garbage, late replies, exceptions. A damaged
// reply is counted and retried by the bus; a late reply is never taken for the next answer.
import { SerialPort } from 'serialport';
import crc16modbus from 'crc/crc16modbus';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ModbusRtuTransport } from '../../../src/io/modbus/rtu-transport.js';
import { ModbusBus } from '../../../src/io/modbus/bus.js';
import { ModbusExceptionError, ModbusFrameError, ModbusLineError, ModbusTimeoutError } from '../../../src/io/modbus/errors.js';
import { seededRandom } from '../../../src/sim/random.js';
import { silentLogger } from '../../../src/log.js';
import { SocatLine } from '../../helpers/socat.js';
import { sleep, waitFor } from '../../helpers/peers.js';

interface Req {
  unit: number;
  fc: number;
  start: number;
  count: number;
}
type Script = (req: Req, n: number, dev: SerialPort) => void;

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

function withCrc(body: number[]): Buffer {
  const b = Buffer.alloc(body.length + 2);
  Buffer.from(body).copy(b);
  b.writeUInt16LE(crc16modbus(b.subarray(0, body.length)), body.length);
  return b;
}

/** A read-registers reply carrying `words`. */
function reply(unit: number, fc: number, words: number[]): Buffer {
  return withCrc([unit, fc, words.length * 2, ...words.flatMap((w) => [w >> 8, w & 0xff])]);
}

async function scripted(script: Script, baudRate = 9600): Promise<{ t: ModbusRtuTransport; seen: Req[] }> {
  const line = await SocatLine.start();
  cleanups.push(() => line.stop());
  const dev = new SerialPort({ path: line.b, baudRate, autoOpen: false });
  await new Promise<void>((res, rej) => dev.open((e) => (e ? rej(e) : res())));
  cleanups.push(() => new Promise<void>((r) => (dev.isOpen ? dev.close(() => r()) : r())));
  const seen: Req[] = [];
  let rx = Buffer.alloc(0);
  dev.on('data', (d: Buffer) => {
    rx = Buffer.concat([rx, d]);
    while (rx.length >= 8) {
      const frame = rx.subarray(0, 8);
      rx = rx.subarray(8);
      expect(crc16modbus(frame.subarray(0, 6))).toBe(frame.readUInt16LE(6));
      const req = { unit: frame[0]!, fc: frame[1]!, start: frame.readUInt16BE(2), count: frame.readUInt16BE(4) };
      seen.push(req);
      script(req, seen.length, dev);
    }
  });
  const t = new ModbusRtuTransport({ path: line.a, baudRate, parity: 'none', dataBits: 8, stopBits: 1 });
  await t.open();
  cleanups.push(() => t.close());
  return { t, seen };
}

async function busOver(t: ModbusRtuTransport, retries = 1): Promise<ModbusBus> {
  // 300 ms: a pty on a loaded machine can take over 150 ms to deliver a reply.
  const bus = new ModbusBus({ id: 'rs485', timeoutMs: 300, retries, reconnectMinMs: 100, reconnectMaxMs: 400 }, t, silentLogger());
  cleanups.push(() => bus.stop());
  await bus.start();
  return bus;
}

const read = { unitId: 1, register: 'holding' as const, start: 0, count: 2 };

describe('Modbus RTU link', () => {
  it('computes the inter-frame silence from the line settings (spec 2.5.1.1)', () => {
    const t9600 = new ModbusRtuTransport({ path: '/dev/null', baudRate: 9600, parity: 'even', dataBits: 8, stopBits: 1 });
    expect(t9600.charMs).toBeCloseTo(11 / 9.6, 6); // 11 bits per character with parity
    expect(t9600.t35Ms).toBeCloseTo(3.5 * (11 / 9.6), 6);
    const t115 = new ModbusRtuTransport({ path: '/dev/null', baudRate: 115200, parity: 'none', dataBits: 8, stopBits: 1 });
    expect(t115.t35Ms).toBe(1.75);
  });

  it('reads registers and checks the CRC of the request it sends', async () => {
    const { t, seen } = await scripted((r, _n, dev) => dev.write(reply(r.unit, r.fc, [0x1234, 0xfffe])));
    await expect(t.read(read, 200)).resolves.toEqual([0x1234, 0xfffe]);
    expect(seen).toEqual([{ unit: 1, fc: 3, start: 0, count: 2 }]);
  });

  it('does not pause the line when the wall clock steps back an hour', async () => {
    const { t } = await scripted((r, _n, dev) => dev.write(reply(r.unit, r.fc, [1, 2])));
    await expect(t.read(read, 200)).resolves.toEqual([1, 2]);
    // NTP sets the clock back right after a reply: the quiet wait before the next request is
    // t3.5 on the monotonic clock (on the wall clock it was a 3,599,999 ms timer).
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 3_600_000);
    const timers = vi.spyOn(globalThis, 'setTimeout');
    await expect(t.read(read, 200)).resolves.toEqual([1, 2]);
    await expect(t.read(read, 200)).resolves.toEqual([1, 2]);
    const delays = timers.mock.calls.map((c) => Number(c[1] ?? 0));
    expect(Math.max(...delays)).toBeLessThan(1000);
  });

  it('counts a CRC error and the bus retries the request', async () => {
    const { t, seen } = await scripted((r, n, dev) => {
      const good = reply(r.unit, r.fc, [7, 8]);
      if (n === 1) good[good.length - 1]! ^= 0xff;
      dev.write(good);
    });
    await expect((await busOver(t)).read(read)).resolves.toEqual([7, 8]);
    expect(seen).toHaveLength(2);
    expect(t.stats).toMatchObject({ crcErrors: 1, responses: 1, requests: 2 });
  });

  it('counts a short frame and the bus retries the request', async () => {
    const { t } = await scripted((r, n, dev) => {
      const good = reply(r.unit, r.fc, [7, 8]);
      dev.write(n === 1 ? good.subarray(0, 5) : good);
    });
    await expect((await busOver(t)).read(read)).resolves.toEqual([7, 8]);
    expect(t.stats).toMatchObject({ shortFrames: 1, responses: 1 });
  });

  it('gives up after the retries with an error naming the damage', async () => {
    const { t } = await scripted((r, _n, dev) => dev.write(Buffer.from([r.unit, r.fc, 4, 0, 7, 0, 8, 0x00, 0x00])));
    const err = await (await busOver(t, 2)).read(read).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModbusLineError);
    expect((err as Error).message).toMatch(/^CRC error in reply from unit 1 \(0103040007000800 ?00\)$/);
    expect(t.stats.crcErrors).toBe(3);
  });

  it('treats garbage as a damaged frame, then waits for the line to go quiet before the next request', async () => {
    const sentAt: number[] = [];
    let garbageEndedAt = 0;
    const { t } = await scripted((r, n, dev) => {
      sentAt.push(Date.now());
      if (n === 1) {
        dev.write(Buffer.from([0x55, 0x99, 0x13]));
        garbageEndedAt = Date.now();
      } else dev.write(reply(r.unit, r.fc, [1, 2]));
    });
    await expect((await busOver(t)).read(read)).resolves.toEqual([1, 2]);
    expect(t.stats.badFrames).toBe(1);
    expect(sentAt[1]! - garbageEndedAt).toBeGreaterThanOrEqual(t.recoverQuietMs - 5);
  });

  it('never takes a late reply for the answer to the next request', async () => {
    // The device answers the first request 30 ms after the timeout, with a reply the next
    // request of the same shape would also accept. The next request must get its own answer.
    const { t } = await scripted((r, n, dev) => {
      // 110 ms: late, and well inside the 50 ms quiet that follows the 100 ms timeout.
      if (n === 1) setTimeout(() => dev.write(reply(r.unit, r.fc, [111, 111])), 110);
      else setTimeout(() => dev.write(reply(r.unit, r.fc, [222, 222])), 60);
    });
    await expect(t.read(read, 100)).rejects.toBeInstanceOf(ModbusTimeoutError);
    await expect(t.read(read, 300)).resolves.toEqual([222, 222]);
    expect(t.stats.staleFrames).toBeGreaterThanOrEqual(1);
  });

  it('passes a Modbus exception through unretried', async () => {
    const { t, seen } = await scripted((r, _n, dev) => dev.write(withCrc([r.unit, r.fc | 0x80, 2])));
    const err = await (await busOver(t)).read(read).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModbusExceptionError);
    expect((err as ModbusExceptionError).code).toBe(2);
    expect(seen).toHaveLength(1);
  });

  it('ignores a valid reply from another unit (a late answer) and takes its own', async () => {
    const { t } = await scripted((r, _n, dev) => {
      dev.write(Buffer.concat([reply(5, r.fc, [9, 9]), reply(r.unit, r.fc, [3, 4])]));
    });
    await expect(t.read(read, 300)).resolves.toEqual([3, 4]);
    expect(t.stats.staleFrames).toBe(1);
  });

  it('counts an exception for another function code from the unit asked as a bad frame', async () => {
    // FC 04 | 0x80 answering an FC 03 request (Modbus Application Protocol v1.1b3, 7).
    const { t } = await scripted((r, _n, dev) => dev.write(withCrc([r.unit, 0x84, 2])));
    const err = await t.read(read, 300).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModbusFrameError);
    expect((err as Error).message).toMatch(/^reply function 132 from unit 1 does not answer function 3/);
    expect(t.stats).toMatchObject({ badFrames: 1, exceptions: 0, staleFrames: 0 });
  });

  it('a garbage-answering unit on the line costs its neighbour no readings, only the line time of its own failures', async () => {
    const random = seededRandom(15);
    const kinds = new Map<string, number>();
    const { t } = await scripted((r, _n, dev) => {
      if (r.unit === 1) return void dev.write(reply(1, r.fc, [250, 250]));
      const kind = (['random bytes', 'crc', 'long count', 'wrong function', 'silence'] as const)[Math.floor(random() * 5)]!;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      if (kind === 'random bytes') dev.write(Buffer.from(Array.from({ length: 1 + Math.floor(random() * 20) }, () => Math.floor(random() * 256))));
      else if (kind === 'crc') dev.write(Buffer.from([2, 3, 4, 0, 1, 0, 2, 0, 0]));
      else if (kind === 'long count') dev.write(withCrc([2, 3, 40, 0, 1, 0, 2]));
      else if (kind === 'wrong function') dev.write(withCrc([2, 0x84, 2]));
    }, 38400);
    const bus = await busOver(t);
    let good = 0;
    const rounds = 40;
    for (let i = 0; i < rounds; i++) {
      const [a] = await Promise.allSettled([bus.read(read), bus.read({ ...read, unitId: 2 })]);
      if (a.status === 'fulfilled' && a.value[0] === 250) good++;
    }
    expect([...kinds.keys()].sort()).toEqual(['crc', 'long count', 'random bytes', 'silence', 'wrong function']);
    expect(good).toBe(rounds);
    expect(t.stats.staleFrames + t.stats.badFrames + t.stats.crcErrors + t.stats.shortFrames + t.stats.timeouts).toBeGreaterThan(0);
  });

  it('writes a register (FC 06) and a coil (FC 05), confirmed by the echo', async () => {
    const { t, seen } = await scripted((r, _n, dev) => dev.write(withCrc([r.unit, r.fc, r.start >> 8, r.start & 0xff, r.count >> 8, r.count & 0xff])));
    await t.write({ unitId: 4, register: 'holding', start: 7, values: [0x1234] }, 200);
    await t.write({ unitId: 4, register: 'coil', start: 16, values: [1] }, 200);
    expect(seen).toEqual([
      { unit: 4, fc: 6, start: 7, count: 0x1234 },
      { unit: 4, fc: 5, start: 16, count: 0xff00 },
    ]);
    expect(t.stats.responses).toBe(2);
  });

  it('reports the port vanishing as a drop', async () => {
    const line = await SocatLine.start();
    cleanups.push(() => line.stop());
    const t = new ModbusRtuTransport({ path: line.a, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1 });
    await t.open();
    cleanups.push(() => t.close());
    const drops: string[] = [];
    t.onDrop((r) => drops.push(r));
    // Let the read park in poll() first, so the hang-up arrives as a poll error; the other
    // way it shows up, a read of 0 bytes, is in test/io/modbus/serial-binding.test.ts.
    await sleep(100);
    await line.stop();
    await waitFor(() => drops.length > 0, 5000, 'the drop');
    expect(drops).toEqual([`serial port ${line.a} disconnected (adapter unplugged?)`]);
    expect(t.isOpen).toBe(false);
    await expect(t.open()).rejects.toThrow(`open serial port ${line.a} failed`);
  });
});
