// Read Device Identification (FC 43/14) against pymodbus, over Modbus TCP and over RTU on a
// socat pty line, through the bus queue as a scan sends it; and the parser at the edge.
import { afterEach, describe, expect, it } from 'vitest';
import { PymodbusServer } from '../../helpers/peers.js';
import { SocatLine } from '../../helpers/socat.js';
import { ModbusBus } from '../../../src/io/modbus/bus.js';
import { ModbusTcpTransport } from '../../../src/io/modbus/tcp-transport.js';
import { ModbusRtuTransport } from '../../../src/io/modbus/rtu-transport.js';
import { ModbusTimeoutError } from '../../../src/io/modbus/errors.js';
import { parseDeviceIdBody } from '../../../src/io/modbus/device-id.js';
import { silentLogger } from '../../../src/log.js';
import type { ModbusTransport } from '../../../src/io/modbus/transport.js';

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const identity = { VendorName: 'Eastron', ProductCode: 'SDM120', MajorMinorRevision: '2.1' };

async function busOn(t: ModbusTransport): Promise<ModbusBus> {
  const bus = new ModbusBus({ id: 'b', timeoutMs: 300, retries: 0, reconnectMinMs: 100, reconnectMaxMs: 400 }, t, silentLogger());
  cleanups.push(() => bus.stop());
  await bus.start();
  return bus;
}

describe('Read Device Identification against pymodbus', () => {
  it('over Modbus TCP: the basic objects of an identified unit, a timeout from a missing one', async () => {
    const s = await PymodbusServer.start({ identity, units: { '3': { hr: { '0': 1 } } } });
    cleanups.push(() => s.stop());
    const bus = await busOn(new ModbusTcpTransport({ host: '127.0.0.1', port: s.port, connectTimeoutMs: 1000 }));
    const part = await bus.identify(3, 0, { priority: 'low', timeoutMs: 200 });
    expect(part.next).toBeNull();
    expect(part.objects).toEqual([
      { id: 0, value: 'Eastron' },
      { id: 1, value: 'SDM120' },
      { id: 2, value: '2.1' },
    ]);
    await expect(bus.identify(9, 0, { timeoutMs: 100 })).rejects.toBeInstanceOf(ModbusTimeoutError);
    expect(bus.transport.stats).toMatchObject({ requests: 2, responses: 1, timeouts: 1, badFrames: 0 });
  });

  it('over RTU on an RS-485 line', async () => {
    const l = await SocatLine.start();
    cleanups.push(() => l.stop());
    const s = await PymodbusServer.start({ serial: l.b, identity, units: { '7': { hr: { '0': 1 } } } });
    cleanups.push(() => s.stop());
    const bus = await busOn(new ModbusRtuTransport({ path: l.a, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1 }));
    const part = await bus.identify(7, 0, { timeoutMs: 300 });
    expect(part.objects.map((o) => o.value)).toEqual(['Eastron', 'SDM120', '2.1']);
    // And the line is in step afterwards: a plain read still works.
    expect(await bus.read({ unitId: 7, register: 'holding', start: 0, count: 1 })).toEqual([1]);
  });
});

describe('device identification replies, checked at the edge', () => {
  const body = (objects: [number, string][], more = 0, next = 0) =>
    Buffer.from([0x0e, 0x01, 0x01, more, next, objects.length, ...objects.flatMap(([id, v]) => [id, v.length, ...Buffer.from(v, 'latin1')])]);

  it('parses objects and a stream that continues', () => {
    expect(parseDeviceIdBody(body([[0, 'ACME']], 0xff, 1))).toEqual({ conformity: 1, next: 1, objects: [{ id: 0, value: 'ACME' }] });
  });

  it('refuses a wrong MEI type, a length that runs past the frame, a bad more-follows byte, and shows control characters as ?', () => {
    const b = body([[0, 'ACME']]);
    expect(parseDeviceIdBody(Buffer.from([0x0d, ...b.subarray(1)]))).toBeNull();
    expect(parseDeviceIdBody(b.subarray(0, b.length - 1))).toBeNull();
    expect(parseDeviceIdBody(Buffer.concat([b, Buffer.from([0])]))).toBeNull();
    expect(parseDeviceIdBody(body([[0, 'A']], 0x12))).toBeNull();
    expect(parseDeviceIdBody(body([[0, 'A\u0007B']]))!.objects[0]!.value).toBe('A?B');
  });
});
