// The bus' end-of-round signal against a real pymodbus server.
import { afterEach, describe, expect, it } from 'vitest';
import { PymodbusServer, sleep } from '../../helpers/peers.js';
import { ModbusBus } from '../../../src/io/modbus/bus.js';
import { ModbusTcpTransport } from '../../../src/io/modbus/tcp-transport.js';
import { silentLogger } from '../../../src/log.js';

let server: PymodbusServer | null = null;
let bus: ModbusBus | null = null;
afterEach(async () => {
  await bus?.stop();
  await server?.stop();
  server = bus = null;
});

describe('ModbusBus.onRound', () => {
  it('says once that a round opened, and once that it ran empty after the last reply was handled', async () => {
    server = await PymodbusServer.start({ units: { '1': { hr: { '0': 7, '1': 8 } } } });
    bus = new ModbusBus({ id: 'plc', timeoutMs: 500, retries: 0, reconnectMinMs: 100, reconnectMaxMs: 400 }, new ModbusTcpTransport({ host: '127.0.0.1', port: server.port, connectTimeoutMs: 1000 }), silentLogger());
    await bus.start();
    const seen: string[] = [];
    bus.onRound((open) => seen.push(open ? 'open' : 'idle'));
    // As a poller does: the second block of a device is asked for only once the first came.
    const device = async (name: string) => {
      for (const start of [0, 1]) {
        const v = await bus!.read({ unitId: 1, register: 'holding', start, count: 1 });
        seen.push(`${name}${v[0]}`);
      }
    };
    await Promise.all([device('a'), device('b'), device('c')]);
    await sleep(50);
    expect(seen).toEqual(['open', 'a7', 'b7', 'c7', 'a8', 'b8', 'c8', 'idle']);
    await device('d');
    await sleep(50);
    expect(seen.slice(8)).toEqual(['open', 'd7', 'd8', 'idle']);
    // Stopped mid-round: the round is said to end (a listener must not wait for it forever).
    const inFlight = bus!.read({ unitId: 1, register: 'holding', start: 0, count: 1 }).catch(() => undefined);
    expect(seen.at(-1)).toBe('open');
    await bus!.stop();
    await inFlight;
    expect(seen.at(-1)).toBe('idle');
  });
});

describe('ModbusBus with several requests in flight, against pymodbus', () => {
  it('gets every unit its own values when their requests share the connection at once', async () => {
    const units = Object.fromEntries([1, 2, 3, 4, 5].map((u) => [String(u), { hr: { '0': u * 10, '1': u * 10 + 1 } }]));
    server = await PymodbusServer.start({ units });
    bus = new ModbusBus({ id: 'plc', timeoutMs: 500, retries: 0, reconnectMinMs: 100, reconnectMaxMs: 400 }, new ModbusTcpTransport({ host: '127.0.0.1', port: server.port, connectTimeoutMs: 1000, maxInFlight: 5 }), silentLogger());
    await bus.start();
    for (let round = 0; round < 20; round++) {
      const got = await Promise.all([1, 2, 3, 4, 5].map((unitId) => bus!.read({ unitId, register: 'holding', start: 0, count: 2 })));
      expect(got).toEqual([1, 2, 3, 4, 5].map((u) => [u * 10, u * 10 + 1]));
    }
    expect(bus.transport.stats).toMatchObject({ requests: 100, responses: 100, timeouts: 0, staleFrames: 0, badFrames: 0 });
  });
});
