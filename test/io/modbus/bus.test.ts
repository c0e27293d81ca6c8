// The bus' queue with several requests allowed in flight (a Modbus TCP link's maxInFlight),
// against a scripted server that records how many requests it holds at once, per unit and
// in all: never more than maxInFlight, never two for one unit, each unit's own in order.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ModbusBus } from '../../../src/io/modbus/bus.js';
import { ModbusTcpTransport } from '../../../src/io/modbus/tcp-transport.js';
import { ModbusTimeoutError } from '../../../src/io/modbus/errors.js';
import { silentLogger } from '../../../src/log.js';

let server: net.Server | null = null;
let bus: ModbusBus | null = null;
afterEach(async () => {
  await bus?.stop();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = bus = null;
});

interface Seen {
  held: number;
  maxHeld: number;
  heldPerUnit: Map<number, number>;
  maxPerUnit: number;
  order: string[];
}

/** Replies to unit u after `delayMs(u)` with the start address as the value; unit 9 never answers. */
async function slowServer(delayMs: (unit: number) => number): Promise<{ port: number; seen: Seen }> {
  const seen: Seen = { held: 0, maxHeld: 0, heldPerUnit: new Map(), maxPerUnit: 0, order: [] };
  server = net.createServer((sock) => {
    sock.on('data', (d) => {
      for (let o = 0; o + 12 <= d.length; o += 12) {
        const tid = d.readUInt16BE(o);
        const unit = d[o + 6]!;
        const start = d.readUInt16BE(o + 8);
        seen.order.push(`${unit}:${start}`);
        seen.maxHeld = Math.max(seen.maxHeld, ++seen.held);
        const perUnit = (seen.heldPerUnit.get(unit) ?? 0) + 1;
        seen.heldPerUnit.set(unit, perUnit);
        seen.maxPerUnit = Math.max(seen.maxPerUnit, perUnit);
        const done = () => {
          seen.held--;
          seen.heldPerUnit.set(unit, seen.heldPerUnit.get(unit)! - 1);
        };
        if (unit === 9) {
          setTimeout(done, 150);
          continue;
        }
        setTimeout(() => {
          done();
          sock.write(Buffer.from([tid >> 8, tid & 255, 0, 0, 0, 5, unit, 3, 2, start >> 8, start & 255]));
        }, delayMs(unit));
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, seen };
}

async function startBus(port: number, maxInFlight: number): Promise<ModbusBus> {
  bus = new ModbusBus({ id: 'plc', timeoutMs: 100, retries: 0, reconnectMinMs: 100, reconnectMaxMs: 400 }, new ModbusTcpTransport({ host: '127.0.0.1', port, connectTimeoutMs: 1000, maxInFlight }), silentLogger());
  await bus.start();
  return bus;
}

const read = (b: ModbusBus, unitId: number, start: number) => b.read({ unitId, register: 'holding', start, count: 1 });

describe('ModbusBus with several requests in flight', () => {
  it('keeps at most maxInFlight on the link, one per unit, each unit in the order asked', async () => {
    const { port, seen } = await slowServer((u) => 5 + u * 3);
    const b = await startBus(port, 3);
    // Four units, three requests each, all queued at once, a unit's together.
    const asked: Promise<number[]>[] = [];
    for (const u of [1, 2, 3, 4]) for (let start = 0; start < 3; start++) asked.push(read(b, u, start));
    const values = await Promise.all(asked);
    expect(values.map((v) => v[0])).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
    expect(seen.maxHeld).toBe(3);
    expect(seen.maxPerUnit).toBe(1);
    for (const u of [1, 2, 3, 4]) expect(seen.order.filter((x) => x.startsWith(`${u}:`))).toEqual([`${u}:0`, `${u}:1`, `${u}:2`]);
  });

  it('one at a time with maxInFlight 1 (the default)', async () => {
    const { port, seen } = await slowServer(() => 2);
    const b = await startBus(port, 1);
    await Promise.all([1, 2, 3, 4].map((u) => read(b, u, 0)));
    expect(seen.maxHeld).toBe(1);
    expect(seen.order).toEqual(['1:0', '2:0', '3:0', '4:0']);
  });

  it('a silent unit holds one slot for its timeout, not the bus', async () => {
    const { port } = await slowServer(() => 5);
    const b = await startBus(port, 2);
    const silent = read(b, 9, 0).catch((e: unknown) => e);
    const t0 = performance.now();
    // Six reads of unit 1 in turn while unit 9 waits out its 100 ms.
    for (let i = 0; i < 6; i++) expect(await read(b, 1, i)).toEqual([i]);
    expect(performance.now() - t0).toBeLessThan(100);
    expect(await silent).toBeInstanceOf(ModbusTimeoutError);
  });

  it('says a round ended only once nothing is queued or in flight', async () => {
    const { port } = await slowServer((u) => u * 10);
    const b = await startBus(port, 4);
    const seen: string[] = [];
    b.onRound((open) => seen.push(open ? 'open' : 'idle'));
    await Promise.all([1, 2, 3].map((u) => read(b, u, 0).then(() => seen.push(`u${u}`))));
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(['open', 'u1', 'u2', 'u3', 'idle']);
  });
});

describe('ModbusBus low-priority requests (a bus scan)', () => {
  it('run only when no poll waits, one at a time, and delay a poll by at most one request', async () => {
    // The first probe is slow (the polls arrive while it is on the link), the rest quick.
    const { port, seen } = await slowServer((u) => (u === 20 ? 250 : 5));
    const b = await startBus(port, 4);
    const rounds: boolean[] = [];
    b.onRound((open) => rounds.push(open));
    // A scan queues many probes; polls of units 1 and 2 arrive while it runs.
    const probes = [20, 21, 22, 23, 24, 25].map((u) => b.read({ unitId: u, register: 'holding', start: 0, count: 1 }, { priority: 'low', retries: 0, timeoutMs: 1000 }));
    expect(rounds).toEqual([]); // a scan opens no round of polls
    while (seen.order.length === 0) await new Promise((r) => setTimeout(r, 1)); // the first probe is on the link
    const polls = [read(b, 1, 0), read(b, 2, 0)];
    await Promise.all([...probes, ...polls]);
    // The polls went out at once beside the one probe in flight; the next probe only after them.
    expect(seen.maxHeld).toBe(3);
    expect(seen.order.slice(0, 3)).toEqual(['20:0', '1:0', '2:0']);
    expect(seen.order.slice(3)).toEqual(['21:0', '22:0', '23:0', '24:0', '25:0']);
    expect(rounds).toEqual([true, false]);
  });

  it('take their own timeout', async () => {
    const { port } = await slowServer(() => 5);
    const b = await startBus(port, 1);
    const t0 = performance.now();
    await expect(b.read({ unitId: 9, register: 'holding', start: 0, count: 1 }, { priority: 'low', timeoutMs: 30, retries: 0 })).rejects.toBeInstanceOf(ModbusTimeoutError);
    expect(performance.now() - t0).toBeLessThan(90); // the bus' own timeout is 100 ms
  });
});
