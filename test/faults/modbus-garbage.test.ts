// Fault: a Modbus TCP device that answers garbage, truncated frames and wrong unit ids. It is
// marked (comm_error, offline) and the others keep their rate: a device on another bus not
// at all affected, one sharing its TCP gateway at least 90 % (the stream gets back in step
// without dropping the link: test/io/modbus/shared-connection.test.ts).
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, sleep, waitFor } from '../helpers/peers.js';
import { baseConfig, makeGateway } from '../helpers/gateway.js';
import type { Gateway } from '../../src/main.js';
import type { Reading } from '../../src/types.js';

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** A TCP gateway with a healthy unit 1 (input registers 1..2) and a broken unit 9. */
async function misbehavingGateway(): Promise<{ port: number; served: Map<number, number> }> {
  const served = new Map<number, number>();
  let n = 0;
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    sock.on('data', (d) => {
      for (let o = 0; o + 12 <= d.length; o += 12) {
        const tid = d.readUInt16BE(o);
        const unit = d[o + 6]!;
        const fc = d[o + 7]!;
        const count = d.readUInt16BE(o + 10);
        served.set(unit, (served.get(unit) ?? 0) + 1);
        const reply = (u: number, words: number[]) => {
          const b = Buffer.alloc(9 + 2 * words.length);
          b.writeUInt16BE(tid, 0);
          b.writeUInt16BE(0, 2);
          b.writeUInt16BE(3 + 2 * words.length, 4);
          b[6] = u;
          b[7] = fc;
          b[8] = 2 * words.length;
          words.forEach((w, i) => b.writeUInt16BE(w, 9 + 2 * i));
          return b;
        };
        if (unit === 1) {
          sock.write(reply(1, Array.from({ length: count }, (_, i) => 200 + i)));
          continue;
        }
        switch (n++ % 4) {
          case 0: // random garbage, no MBAP framing
            sock.write(Buffer.from(Array.from({ length: 17 }, () => Math.floor(Math.random() * 256))));
            break;
          case 1: // truncated: the header announces more than ever comes
            sock.write(reply(unit, Array.from({ length: count }, () => 7)).subarray(0, 10));
            break;
          case 2: // a well-formed answer from the wrong unit
            sock.write(reply(77, Array.from({ length: count }, () => 7)));
            break;
          default: // a byte count that does not match the request
            sock.write(reply(unit, [1]));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as net.AddressInfo).port, served };
}

const scans = (g: Gateway, id: string) => g.pollers.find((p) => p.device.id === id)!.stats.polls;

describe('fault: a Modbus device answering garbage', () => {
  it('is marked and the others keep polling', async () => {
    const bad = await misbehavingGateway();
    const sim = await freePort();
    const g = makeGateway(
      baseConfig({
        buses: [
          { id: 'gw485', type: 'modbus-tcp', host: '127.0.0.1', port: bad.port, timeoutMs: 200, retries: 1, reconnectMinMs: 100, reconnectMaxMs: 500, offlineBackoffMaxMs: 2000 },
          { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim, timeoutMs: 300 },
        ],
        devices: [
          { id: 'good-shared', facility: 'canteen', profile: 'xy-md02', bus: 'gw485', unitId: 1, pollMs: 200 },
          { id: 'broken', facility: 'canteen', profile: 'xy-md02', bus: 'gw485', unitId: 9, pollMs: 200 },
          { id: 'good-other', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 1, pollMs: 200 },
        ],
        simulator: { enabled: true, host: '127.0.0.1', port: sim, seed: 3 },
      }),
    );
    cleanups.push(() => g.stop());
    const readings: Reading[] = [];
    g.events.on('reading', (r) => readings.push(r));
    await g.start();
    await sleep(1000);
    const t0 = { shared: scans(g, 'good-shared'), other: scans(g, 'good-other') };
    await sleep(10_000);
    const rate = (id: string, from: number) => (scans(g, id) - from) / 10;
    const broken = g.pollers.find((p) => p.device.id === 'broken')!;
    console.log(`garbage device: good-other ${rate('good-other', t0.other)}/s, good-shared ${rate('good-shared', t0.shared)}/s, broken errors ${JSON.stringify(broken.stats.errors)}, bus ${JSON.stringify(g.buses.get('gw485')!.transport.stats)}`);
    expect(rate('good-other', t0.other)).toBeGreaterThanOrEqual(4); // pollMs 200: 5/s
    // At least 90 % of its rate behind the same TCP gateway as the garbage unit (issue 15).
    expect(rate('good-shared', t0.shared)).toBeGreaterThanOrEqual(4.5);
    expect(broken.stats.online).toBe(false);
    expect(broken.stats.errors.timeouts + broken.stats.errors.lineErrors + broken.stats.errors.linkErrors).toBeGreaterThan(0);
    expect(readings.some((r) => r.device === 'broken' && (r.quality === 'comm_error' || r.quality === 'timeout'))).toBe(true);
    expect(readings.filter((r) => r.device === 'broken' && r.quality === 'good')).toEqual([]);
    // The healthy unit behind the same gateway still reads its own values.
    expect(readings.filter((r) => r.device === 'good-shared' && r.point === 'temperature').at(-1)).toMatchObject({ value: 20, quality: 'good' });
    expect(g.liveness()).toBe(true);
    await waitFor(() => bad.served.get(9)! > 5, 1000, 'the broken unit was asked');
  }, 60_000);
});
