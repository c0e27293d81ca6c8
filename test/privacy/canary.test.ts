// Canary: a pymodbus health kiosk serves a randomised stream of measurement sessions with
// known card numbers and values. Everything the platform broker receives (mosquitto_sub -v
// '#') and everything on the local broker is searched for every card number (decimal, hex, as
// digits inside longer strings), for its pseudonym, and for every session's raw value
// sequence. None may be found, while k-anonymous aggregates of the same data do arrive.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { MosquittoSub, PymodbusServer, freePort, sleep, waitFor } from '../helpers/peers.js';
import { baseConfig, makeGateway } from '../helpers/gateway.js';
import { loadOrCreateSiteSecret, pseudonymiser } from '../../src/privacy/site-secret.js';
import { seededRandom } from '../../src/sim/random.js';

afterAll(() => stopAll('SIGKILL'));

type Privacy = Record<string, unknown>;

/** k-anonymous: released figures rest on >= k residents. dp: released figures carry epsilon
 * and delta (epsilon 10 gives thresholds of 4-5, which a window of ~16 sessions passes). */
const MODES: [string, Privacy][] = [
  ['k-anonymous', { k: 5, windowSeconds: 5 }],
  ['dp', { k: 5, windowSeconds: 5, mode: 'dp', epsilon: 10, delta: 1e-3, annualEpsilon: 1000 }],
];

describe.each(MODES)('privacy canary (%s)', (mode, privacy) => {
  it('no card number, pseudonym or raw personal value sequence leaves the kiosk; aggregates do', async () => {
    const rnd = seededRandom(Date.now() & 0xffff);
    const cards = Array.from({ length: 12 }, () => 10_000_000 + Math.floor(rnd() * 89_999_999));
    const ir: Record<string, number> = {};
    for (let a = 0; a < 16; a++) ir[a] = 0;
    ir['8'] = 1; // status: ready
    const kiosk = await PymodbusServer.start({ units: { '1': { ir } }, kiosk: { unit: 1, intervalMs: 300, cards, seed: cards[0] } });
    const platform = await Mosquitto.start();
    const everything = new MosquittoSub(platform.port, '#');
    const localPort = await freePort();
    const g = makeGateway(
      baseConfig({
        site: { communityCode: '330106001001', gatewayId: 'gw-canary' },
        localBroker: { host: '127.0.0.1', port: localPort, anonymous: 'loopback' },
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: kiosk.port, timeoutMs: 300 }],
        devices: [{ id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 1, pollMs: 100 }],
        uplink: { url: `mqtt://127.0.0.1:${platform.port}`, windowSeconds: 5, statusIntervalSeconds: 5 },
        privacy,
      }),
    );
    try {
      await g.start();
      const local = new MosquittoSub(localPort, '#');
      await everything.started();
      // Three windows of sessions (about 16 per window from 12 residents).
      const personalItems = () =>
        everything.lines
          .filter((l) => l.topic.endsWith('/agg'))
          .flatMap((l) => (JSON.parse(l.payload) as { items: Record<string, unknown>[] }).items)
          .filter((i) => i.type === 'personal');
      await waitFor(() => personalItems().length >= 10, 25000, 'personal aggregates of two windows');
      await sleep(5500);
      await g.stop();
      local.stop();
      everything.stop();

      expect(kiosk.events.length).toBeGreaterThan(30);
      const uplink = everything.lines.map((l) => `${l.topic} ${l.payload}`).join('\n');
      const onSite = local.lines.map((l) => `${l.topic} ${l.payload}`).join('\n');
      // The data did flow: released personal aggregates with at least k residents.
      const personal = personalItems();
      if (mode === 'dp') {
        expect(personal.every((i) => i.epsilon === 10 && i.delta === 1e-3 && i.suppressed === 0)).toBe(true);
        expect(personal.some((i) => typeof i.residents === 'number' && typeof i.mean === 'number' && i.point === 'systolic_bp')).toBe(true);
        // The ledger: beside the site secret, 0600, with the residents' spend (by pseudonym only).
        const ledgerFile = path.join(path.dirname(g.config.storage.path), 'privacy-ledger.json');
        expect(fs.statSync(ledgerFile).mode & 0o777).toBe(0o600);
        const ledger = fs.readFileSync(ledgerFile, 'utf8');
        for (const card of cards) expect(ledger).not.toContain(String(card));
        expect(Object.keys((JSON.parse(ledger) as { residents: object }).residents).length).toBeGreaterThan(5);
      } else {
        expect(personal.some((i) => typeof i.residents === 'number' && (i.residents as number) >= 5 && i.point === 'systolic_bp')).toBe(true);
      }
      expect(personal.every((i) => !('min' in i) && !('max' in i) && !('last' in i))).toBe(true);

      const secret = loadOrCreateSiteSecret(path.join(path.dirname(g.config.storage.path), 'site-secret'));
      const pseudo = pseudonymiser(secret);
      // Timestamps are long digit runs in which an 8-digit number could appear by chance: strip them.
      const digitsSafe = (s: string) => s.replace(/"(ts|windowStart|oldestTs)":\d+/g, '');
      for (const text of [digitsSafe(uplink), digitsSafe(onSite)]) {
        for (const card of cards) {
          expect(text).not.toContain(String(card));
          expect(text.toLowerCase()).not.toContain(card.toString(16));
          expect(text).not.toContain(pseudo(card));
        }
      }
      expect(onSite).not.toMatch(/resident_card_uid/);
      // Every session's raw value sequence, in the forms a leak would take.
      for (const e of kiosk.events) {
        const [sys, dia, pulse] = e.values;
        for (const seq of [`${sys},${dia}`, `${sys}/${dia}`, `${sys} ${dia}`, `${sys},${dia},${pulse}`, `[${sys},${dia}`]) {
          expect(uplink).not.toContain(seq);
        }
        expect(uplink).not.toMatch(new RegExp(`"(value|last|min|max)":${sys}[,}]`));
      }
      // Nothing personal in point aggregates: they only name public points.
      const pointItems = everything.lines
        .filter((l) => l.topic.endsWith('/agg'))
        .flatMap((l) => (JSON.parse(l.payload) as { items: Record<string, unknown>[] }).items)
        .filter((i) => i.type === 'point');
      expect(pointItems.map((i) => i.point).sort().filter((p, i, a) => a.indexOf(p) === i)).toEqual(['cuff_error', 'measurement_count', 'ready', 'scale_error']);
    } finally {
      await g.stop();
      await kiosk.stop();
    }
  }, 60_000);
});
