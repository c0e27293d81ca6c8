// The Modbus TCP link against a scripted server that misbehaves on purpose: late replies,
// wrong byte counts, a broken MBAP header, exceptions. Each reply is checked at the edge.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ModbusTcpTransport } from '../../../src/io/modbus/tcp-transport.js';
import { ModbusExceptionError, ModbusFrameError, ModbusLinkError, ModbusTimeoutError } from '../../../src/io/modbus/errors.js';

type Script = (req: { tid: number; unit: number; fc: number; start: number; count: number }, sock: net.Socket) => void;

let server: net.Server | null = null;
let transport: ModbusTcpTransport | null = null;
afterEach(async () => {
  await transport?.close();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = null;
  transport = null;
});

async function scripted(script: Script, maxInFlight = 1): Promise<ModbusTcpTransport> {
  server = net.createServer((sock) => {
    sock.on('data', (d) => {
      for (let o = 0; o + 12 <= d.length; o += 12) {
        script({ tid: d.readUInt16BE(o), unit: d[o + 6]!, fc: d[o + 7]!, start: d.readUInt16BE(o + 8), count: d.readUInt16BE(o + 10) }, sock);
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  transport = new ModbusTcpTransport({ host: '127.0.0.1', port, connectTimeoutMs: 1000, maxInFlight });
  await transport.open();
  return transport;
}

/** A well-formed read-registers reply carrying `words`, with an optional wrong byte count. */
function reply(tid: number, unit: number, fc: number, words: number[], byteCount = words.length * 2): Buffer {
  const b = Buffer.alloc(9 + words.length * 2);
  b.writeUInt16BE(tid, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(3 + words.length * 2, 4);
  b[6] = unit;
  b[7] = fc;
  b[8] = byteCount;
  words.forEach((w, i) => b.writeUInt16BE(w, 9 + 2 * i));
  return b;
}

const hr = (start: number, count: number) => ({ unitId: 1, register: 'holding' as const, start, count });

describe('Modbus TCP transport', () => {
  it('reads registers and answers exceptions as ModbusExceptionError', async () => {
    const t = await scripted((q, s) => {
      if (q.start === 99) s.write(Buffer.from([q.tid >> 8, q.tid & 255, 0, 0, 0, 3, q.unit, q.fc | 0x80, 2]));
      else s.write(reply(q.tid, q.unit, q.fc, Array.from({ length: q.count }, (_, i) => q.start + i)));
    });
    expect(await t.read(hr(10, 3), 500)).toEqual([10, 11, 12]);
    const err = await t.read(hr(99, 1), 500).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModbusExceptionError);
    expect((err as ModbusExceptionError).code).toBe(2);
    expect((err as Error).message).toBe('modbus exception 2 ILLEGAL DATA ADDRESS');
  });

  it('drops a late reply to a timed-out request instead of taking it for the next answer', async () => {
    let first = true;
    const t = await scripted((q, s) => {
      const words = [q.start === 1 ? 111 : 222];
      if (first) {
        first = false;
        setTimeout(() => s.write(reply(q.tid, q.unit, q.fc, words)), 150); // arrives after the timeout
      } else setTimeout(() => s.write(reply(q.tid, q.unit, q.fc, words)), 100);
    });
    await expect(t.read(hr(1, 1), 80)).rejects.toBeInstanceOf(ModbusTimeoutError);
    // The stale reply (111) lands while this request waits; only 222 answers it.
    expect(await t.read(hr(2, 1), 500)).toEqual([222]);
    expect(t.stats.staleFrames).toBe(1);
    expect(t.stats.timeouts).toBe(1);
  });

  it('refuses a reply whose byte count does not match the request, and keeps the link', async () => {
    let n = 0;
    const t = await scripted((q, s) => {
      n++;
      s.write(n === 1 ? reply(q.tid, q.unit, q.fc, [1, 2], 4) : reply(q.tid, q.unit, q.fc, [7, 8, 9]));
    });
    const err = await t.read(hr(0, 3), 500).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModbusFrameError);
    expect((err as Error).message).toMatch(/reply carries 4 bytes, 3 holding values asked/);
    expect(t.isOpen).toBe(true);
    expect(await t.read(hr(0, 3), 500)).toEqual([7, 8, 9]);
  });

  it('refuses a reply with another function code', async () => {
    const t = await scripted((q, s) => s.write(reply(q.tid, q.unit, 4, [5])));
    await expect(t.read(hr(0, 1), 500)).rejects.toThrow(/reply function 4 does not answer function 3/);
  });

  it('fails the request a corrupt MBAP header names, drops the bytes and keeps the link', async () => {
    let n = 0;
    const t = await scripted((q, s) => {
      // First a header with length 0xffff for this request, then a good reply.
      if (n++ === 0) s.write(Buffer.from([q.tid >> 8, q.tid & 255, 0, 0, 0xff, 0xff, 1, 3, 0]));
      else s.write(reply(q.tid, q.unit, q.fc, [42]));
    });
    const err = await t.read(hr(0, 1), 500).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModbusFrameError);
    expect((err as Error).message).toMatch(/bad MBAP header \(protocol id 0, length 65535\)/);
    expect(t.isOpen).toBe(true);
    expect(await t.read(hr(0, 1), 500)).toEqual([42]);
    expect(t.stats.badFrames).toBe(1);
    expect(t.stats.discardedBytes).toBe(9);
  });

  it('gets back in step after a reply whose length field lied and left bytes behind', async () => {
    let n = 0;
    const t = await scripted((q, s) => {
      if (n++ % 2 === 0) {
        // A garbage unit: says 5 bytes follow the length, sends 5 and then 6 more (the
        // issue's case: the next reply would be read from the wrong offset).
        const r = reply(q.tid, q.unit, q.fc, [1]);
        s.write(Buffer.concat([r, Buffer.from([0xfa, 0x00, 0xfa, 0x00, 0x12, 0x34])]));
      } else setTimeout(() => s.write(reply(q.tid, q.unit, q.fc, [250])), 5);
    });
    for (let i = 0; i < 5; i++) {
      expect(await t.read(hr(0, 1), 300)).toEqual([1]);
      expect(await t.read(hr(0, 1), 300)).toEqual([250]);
    }
    expect(t.isOpen).toBe(true);
    expect(t.stats.timeouts).toBe(0);
    expect(t.stats.discardedBytes).toBe(5 * 6);
  });

  it('finds the reply to a request in flight behind garbage in the same segment', async () => {
    const asked: { tid: number; unit: number }[] = [];
    const t = await scripted((q, s) => {
      asked.push({ tid: q.tid, unit: q.unit });
      if (asked.length < 2) return;
      const junk = Buffer.from([0x13, 0x37, 0x00, 0x05, 0xff, 0x00, 0x01, 0x02, 0x03]);
      s.write(Buffer.concat([junk, reply(asked[1]!.tid, 2, 3, [22]), junk, reply(asked[0]!.tid, 1, 3, [11])]));
    }, 2);
    const [a, b] = await Promise.all([t.read({ ...hr(0, 1), unitId: 1 }, 500), t.read({ ...hr(0, 1), unitId: 2 }, 500)]);
    expect([a, b]).toEqual([[11], [22]]);
    expect(t.stats).toMatchObject({ responses: 2, timeouts: 0, discardedBytes: 18 });
  });

  it('reconnects when the stream never gets back in step, and says why', async () => {
    const t = await scripted((q, s) => s.write(Buffer.from([0, 0, 0x77, 0x77, 0, 3, 9, 9, 9])));
    const dropped = new Promise<string>((r) => t.onDrop(r));
    for (let i = 0; i < 10 && t.isOpen; i++) await t.read(hr(i, 1), 100).catch(() => undefined);
    expect(await dropped).toBe(`10 damaged replies in a row from ${t.endpoint}, reconnecting`);
    expect(t.stats.badFrames).toBe(10);
  });

  it('names a reset by the peer as the reason the link dropped', async () => {
    const t = await scripted((_q, s) => s.resetAndDestroy());
    const dropped = new Promise<string>((r) => t.onDrop(r));
    await t.read(hr(0, 1), 500).catch(() => undefined);
    expect(await dropped).toMatch(/^connection error: .*ECONNRESET/);
  });

  it('ignores a reply from another unit id', async () => {
    const t = await scripted((q, s) => s.write(reply(q.tid, q.unit + 1, q.fc, [5])));
    await expect(t.read(hr(0, 1), 150)).rejects.toBeInstanceOf(ModbusTimeoutError);
    expect(t.stats.staleFrames).toBe(1);
  });

  it('counts an exception reply for another function code as a bad frame, not as the device\'s answer', async () => {
    // FC 04 | 0x80 answering an FC 03 request (Modbus Application Protocol v1.1b3, 7).
    const t = await scripted((q, s) => s.write(Buffer.from([q.tid >> 8, q.tid & 255, 0, 0, 0, 3, q.unit, 0x84, 2])));
    const err = await t.read(hr(0, 1), 500).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModbusFrameError);
    expect((err as Error).message).toMatch(/does not answer function 3/);
    expect(t.stats.badFrames).toBe(1);
    expect(t.stats.exceptions).toBe(0);
  });

  it('times out each request on its own deadline, with one timer re-armed per request', async () => {
    // Answers only even start addresses: odd ones must time out, however requests interleave.
    const t = await scripted((q, s) => {
      if (q.start % 2 === 0) s.write(reply(q.tid, q.unit, q.fc, [q.start]));
    });
    for (let i = 0; i < 6; i++) {
      if (i % 2 === 0) expect(await t.read(hr(i, 1), 60)).toEqual([i]);
      else await expect(t.read(hr(i, 1), 60)).rejects.toBeInstanceOf(ModbusTimeoutError);
    }
    // After a quiet spell longer than the timeout, and with another timeout, still on time.
    await new Promise((r) => setTimeout(r, 120));
    const t0 = performance.now();
    await expect(t.read(hr(7, 1), 150)).rejects.toBeInstanceOf(ModbusTimeoutError);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(145);
    expect(await t.read(hr(8, 1), 150)).toEqual([8]);
    expect(t.stats.timeouts).toBe(4);
  });
});

describe('Modbus TCP transport, several requests in flight (maxInFlight)', () => {
  const unit = (unitId: number, start = 0) => ({ unitId, register: 'holding' as const, start, count: 1 });

  it('sends them together and matches each reply to its request by transaction id, in any order', async () => {
    const got: { unit: number; tid: number }[] = [];
    const t = await scripted((q, s) => {
      got.push({ unit: q.unit, tid: q.tid });
      // Answers once all three are in, last first: only the transaction id tells them apart.
      if (got.length === 3) for (const r of [...got].reverse()) s.write(reply(r.tid, r.unit, 3, [r.unit * 100]));
    }, 3);
    const values = await Promise.all([t.read(unit(1), 500), t.read(unit(2), 500), t.read(unit(3), 500)]);
    expect(values).toEqual([[100], [200], [300]]);
    expect(new Set(got.map((g) => g.tid)).size).toBe(3);
    expect(t.stats).toMatchObject({ requests: 3, responses: 3, staleFrames: 0 });
  });

  it('times out the silent one alone: the others keep their replies', async () => {
    const t = await scripted((q, s) => {
      if (q.unit !== 2) setTimeout(() => s.write(reply(q.tid, q.unit, q.fc, [q.unit])), 20);
    }, 3);
    const [a, b, c] = await Promise.allSettled([t.read(unit(1), 150), t.read(unit(2), 150), t.read(unit(3), 150)]);
    expect(a).toEqual({ status: 'fulfilled', value: [1] });
    expect(b.status === 'rejected' && b.reason).toBeInstanceOf(ModbusTimeoutError);
    expect(c).toEqual({ status: 'fulfilled', value: [3] });
    // Still on time after a timeout among several: a request sent later keeps its own deadline.
    const late = t.read(unit(1, 5), 150);
    const t0 = performance.now();
    await expect(t.read(unit(2, 5), 150)).rejects.toBeInstanceOf(ModbusTimeoutError);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(145);
    expect(await late).toEqual([1]);
    expect(t.stats.timeouts).toBe(2);
  });

  it('refuses a request past maxInFlight, and a damaged reply fails only its own request', async () => {
    const t = await scripted((q, s) => {
      setTimeout(() => s.write(q.unit === 1 ? reply(q.tid, q.unit, q.fc, [1], 7) : reply(q.tid, q.unit, q.fc, [q.unit])), 20);
    }, 2);
    const a = t.read(unit(1), 500).catch((e: unknown) => e);
    const b = t.read(unit(2), 500);
    await expect(t.read(unit(3), 500)).rejects.toThrow(/2 request\(s\) at a time/);
    expect(await a).toBeInstanceOf(ModbusFrameError);
    expect(await b).toEqual([2]);
    expect(t.stats.badFrames).toBe(1);
    expect(t.isOpen).toBe(true);
  });

  it('fails every request in flight when the link drops', async () => {
    const t = await scripted((_q, s) => {
      if (_q.unit === 2) s.destroy();
    }, 3);
    const settled = await Promise.allSettled([t.read(unit(1), 1000), t.read(unit(2), 1000)]);
    expect(settled.map((r) => r.status === 'rejected' && r.reason instanceof ModbusLinkError)).toEqual([true, true]);
    expect(t.isOpen).toBe(false);
  });
});

describe('Modbus TCP transport, timeouts of different lengths in flight', () => {
  it('times out a later request with a shorter timeout on its own deadline', async () => {
    const t = await scripted(() => {}, 2);
    const long = t.read(hr(0, 1), 400).catch((e: unknown) => e);
    const t0 = performance.now();
    await expect(t.read({ ...hr(0, 1), unitId: 2 }, 40)).rejects.toBeInstanceOf(ModbusTimeoutError);
    expect(performance.now() - t0).toBeLessThan(300);
    expect(await long).toBeInstanceOf(ModbusTimeoutError);
  });
});
