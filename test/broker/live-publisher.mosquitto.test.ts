// The embedded broker seen by a real client (mosquitto_sub): reading topics and payloads,
// retained availability and bridge state, and identifiers never published.
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, MosquittoSub, sleep, waitFor } from '../helpers/peers.js';
import { baseConfig, makeGateway } from '../helpers/gateway.js';
import type { Gateway } from '../../src/main.js';

let gw: Gateway | null = null;
const subs: MosquittoSub[] = [];
afterEach(async () => {
  await gw?.stop();
  gw = null;
  for (const s of subs.splice(0)) s.stop();
});

async function simulatedSite(live?: { perPoint: boolean; perScan: boolean }) {
  const simPort = await freePort();
  const brokerPort = await freePort();
  gw = makeGateway(
    baseConfig({
      localBroker: { host: '127.0.0.1', port: brokerPort, anonymous: 'loopback', ...(live ? { live } : {}) },
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
      devices: [
        // A fast kiosk so that several measurements (and card numbers) happen during the test.
        { id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 1, pollMs: 100 },
        { id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 2, pollMs: 200 },
      ],
      simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 7 },
    }),
  );
  return { brokerPort, gw };
}

describe('local broker with mosquitto_sub', () => {
  it('publishes readings, retained availability and bridge state on the contract topics; never identifiers', async () => {
    const { brokerPort, gw } = await simulatedSite();
    await gw.start();
    const sub = new MosquittoSub(brokerPort, 'community/#');
    subs.push(sub);
    await sub.started();
    const base = 'community/gw-test';
    await waitFor(() => sub.on(`${base}/health/kiosk-1/measurement_count`).length >= 3, 8000, 'kiosk readings');

    const r = JSON.parse(sub.on(`${base}/security/io-1/entrance_door`).at(-1)!.payload);
    expect(Object.keys(r).sort()).toEqual(['quality', 'ts', 'unit', 'value']);
    expect(typeof r.value).toBe('boolean');
    expect(r.quality).toBe('good');
    expect(Math.abs(r.ts - Date.now())).toBeLessThan(10_000);
    // Anonymous clients (allowed from loopback in this config) never get personal readings.
    expect(sub.on(`${base}/health/kiosk-1/systolic_bp`)).toEqual([]);

    expect(sub.on(`${base}/health/kiosk-1/availability`).map((l) => l.payload)).toContain('online');
    expect(sub.on(`${base}/bridge/state`).map((l) => l.payload)).toEqual(['online']);

    // A late subscriber gets availability and bridge state as retained messages.
    const late = new MosquittoSub(brokerPort, `${base}/+/+/availability`);
    const lateBridge = new MosquittoSub(brokerPort, `${base}/bridge/state`);
    subs.push(late, lateBridge);
    await waitFor(() => late.lines.length >= 2 && lateBridge.lines.length >= 1, 5000, 'retained messages');
    expect(late.lines.every((l) => l.retained && l.payload === 'online')).toBe(true);
    expect(lateBridge.lines[0]).toMatchObject({ retained: true, payload: 'online' });

    // Let several measurements happen, then search everything published for the card numbers.
    const kiosk = gw.simulator!.units.get(1)!;
    const cards = new Set<number>();
    for (let i = 0; i < 30; i++) {
      cards.add(kiosk.valueOf('resident_card_uid')!);
      await sleep(100);
    }
    expect(cards.size).toBeGreaterThan(0);
    // Timestamps are stripped first: an 8-digit card number could hide inside a 13-digit ts by chance.
    const all = sub.lines.map((l) => `${l.topic} ${l.payload.replace(/"ts":\d+/, '')}`).join('\n');
    expect(all).not.toMatch(/resident_card_uid/);
    for (const c of cards) expect(all).not.toContain(String(c));
    expect(gw.publisher.withheld).toBeGreaterThan(0);
  });

  it('publishes one message per scan with every point when asked to, and per-point ones only if asked too', async () => {
    const { brokerPort, gw } = await simulatedSite({ perPoint: false, perScan: true });
    await gw.start();
    const sub = new MosquittoSub(brokerPort, 'community/#');
    subs.push(sub);
    await sub.started();
    const base = 'community/gw-test';
    await waitFor(() => sub.on(`${base}/security/io-1/scan`).length >= 3, 8000, 'scan messages');
    const msg = JSON.parse(sub.on(`${base}/security/io-1/scan`).at(-1)!.payload) as { ts: number; points: Record<string, Record<string, unknown>> };
    const profile = gw.config.devices.find((d) => d.id === 'io-1')!;
    const points = gw.profiles.get(profile.profile)!.points.filter((p) => p.privacy !== 'identifier').map((p) => p.id);
    // Every point of the scan, each with the payload its own topic would carry.
    expect(Object.keys(msg.points).sort()).toEqual([...points].sort());
    const door = msg.points['entrance_door']!;
    expect(Object.keys(door).sort()).toEqual(['quality', 'ts', 'unit', 'value']);
    expect(typeof door.value).toBe('boolean');
    expect(Math.abs(msg.ts - Date.now())).toBeLessThan(10_000);
    // No per-point messages (perPoint false), and the kiosk's scans carry personal points:
    // its scan topic is personal, so this anonymous subscriber never gets it.
    expect(sub.lines.filter((l) => /\/(io-1|kiosk-1)\/(?!scan$|availability$)[^/]+$/.test(l.topic))).toEqual([]);
    expect(sub.on(`${base}/health/kiosk-1/scan`)).toEqual([]);
    expect(sub.lines.map((l) => l.payload).join('\n')).not.toMatch(/resident_card_uid/);
  });

  it('says bridge/state and availability offline on a clean stop', async () => {
    const { brokerPort, gw: g } = await simulatedSite();
    await g.start();
    const sub = new MosquittoSub(brokerPort, 'community/gw-test/#');
    subs.push(sub);
    await sub.started();
    await waitFor(() => sub.on('community/gw-test/security/io-1/availability').length > 0, 5000, 'availability');
    await g.stop();
    gw = null;
    await waitFor(() => sub.on('community/gw-test/bridge/state').at(-1)?.payload === 'offline', 3000, 'bridge offline');
    expect(sub.on('community/gw-test/security/io-1/availability').at(-1)!.payload).toBe('offline');
    expect(sub.on('community/gw-test/health/kiosk-1/availability').at(-1)!.payload).toBe('offline');
  });
});
