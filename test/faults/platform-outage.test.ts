// Fault: the platform broker down for five minutes (CGW_OUTAGE_S to change it) while the site
// keeps producing. Everything arrives afterwards: every seq, duplicates only identical.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { freePort, sleep, tmpDir, waitFor } from '../helpers/peers.js';
import { baseConfig, makeGateway } from '../helpers/gateway.js';
import { PlatformConsumer } from '../../src/platform/consumer.js';
import { silentLogger } from '../../src/log.js';

const OUTAGE_S = Number(process.env.CGW_OUTAGE_S ?? 300);
afterAll(() => stopAll('SIGKILL'));

describe('fault: platform outage', () => {
  it(`the platform broker down for ${OUTAGE_S} s: every seq arrives after`, async () => {
    const broker = await Mosquitto.start();
    // Not shared: Mosquitto 2.0.11 restores this subscription after its restart (docs/UPLINK.md).
    const platform = new PlatformConsumer({ url: `mqtt://127.0.0.1:${broker.port}`, db: path.join(tmpDir('cgw-out-'), 'p.db'), group: 'none' }, silentLogger());
    await platform.start();
    const simPort = await freePort();
    const g = makeGateway(
      baseConfig({
        site: { communityCode: '330106001001', gatewayId: 'gw-outage' },
        uplink: { url: `mqtt://127.0.0.1:${broker.port}`, windowSeconds: 5, reconnectMinMs: 1000, reconnectMaxMs: 10_000 },
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
        devices: [
          { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 200 },
          { id: 'meter-1', facility: 'canteen', profile: 'eastron-sdm120-modbus', bus: 'lan', unitId: 2, pollMs: 200 },
          { id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 3, pollMs: 200 },
        ],
        simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 8 },
        alarms: [{ id: 'meter-busy', device: 'meter-1', point: 'active_power', above: 1500, severity: 'warning' }],
      }),
    );
    await g.start();
    try {
      await waitFor(async () => (await platform.seqs('gw-outage')).length > 10, 20_000, 'steady state');
      await broker.stop('SIGTERM');
      const before = g.outbox!.stats().lastSeq;
      await sleep(OUTAGE_S * 1000);
      const during = g.outbox!.stats();
      // Windows kept closing (every 5 s) and stayed in the outbox.
      expect(during.lastSeq - before).toBeGreaterThan((OUTAGE_S / 5 - 2) * 10);
      expect(during.shedRows).toBe(0);
      await broker.restart();
      await waitFor(() => g.outbox!.stats().rows === 0 && g.uplink!.inFlight === 0, 120_000, 'backlog drained');
      const last = g.outbox!.stats().lastSeq;
      await waitFor(async () => new Set(await platform.seqs('gw-outage')).size >= last, 30_000, 'every seq at the platform');
      const seqs = [...new Set(await platform.seqs('gw-outage'))].sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: last }, (_, i) => i + 1));
      expect(platform.stats.conflicts).toBe(0);
      expect(platform.stats.rejected).toBe(0);
      console.log(`outage ${OUTAGE_S} s: ${during.lastSeq - before} items buffered, ${last} seqs delivered in order`);
    } finally {
      await g.stop();
      await platform.stop();
    }
  }, (OUTAGE_S + 300) * 1000);
});
