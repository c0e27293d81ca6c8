// The local broker's accounts and ACL, seen by real clients (mosquitto_sub / mosquitto_pub):
// wrong passwords refused, subscriptions outside the ACL refused, personal readings only to
// accounts allowed to see them, publishes outside the ACL dropped; identifiers nowhere.
import { spawn } from 'node:child_process';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MosquittoSub, freePort, sleep, waitFor } from '../helpers/peers.js';
import { baseConfig, makeGateway } from '../helpers/gateway.js';
import { hashPassword } from '../../src/broker/access.js';
import type { Gateway } from '../../src/main.js';

let gw: Gateway;
let port: number;
const subs: MosquittoSub[] = [];
const base = 'community/gw-test';

beforeAll(async () => {
  const simPort = await freePort();
  port = await freePort();
  gw = makeGateway(
    baseConfig({
      localBroker: {
        host: '127.0.0.1',
        port,
        anonymous: 'off',
        accounts: [
          { username: 'canteen-app', passwordHash: await hashPassword('canteen-pass-1'), subscribe: ['community/+/canteen/#', 'community/+/health/#', 'apps/canteen/#'], publish: ['apps/canteen/#'] },
          { username: 'nurse', passwordHash: await hashPassword('nurse-pass-1'), subscribe: ['community/+/health/#'], personal: true },
        ],
      },
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
      devices: [
        { id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 1, pollMs: 100 },
        { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 2, pollMs: 200 },
      ],
      simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 3 },
    }),
  );
  await gw.start();
}, 30_000);

afterAll(async () => {
  for (const s of subs) s.stop();
  await gw.stop();
});

/** Runs a mosquitto client without blocking: the broker under test lives in this process. */
function client(cmd: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function sub(topic: string, user?: string, pass?: string): MosquittoSub {
  const s = new MosquittoSub(port, topic, user ? ['-u', user, '-P', pass ?? ''] : []);
  subs.push(s);
  return s;
}

describe('local broker accounts and ACL', () => {
  it('refuses a wrong password, an unknown user and anonymous clients', async () => {
    for (const args of [['-u', 'nurse', '-P', 'wrong-password'], ['-u', 'nobody', '-P', 'x'], []]) {
      const r = await client('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-t', 'community/#', '-C', '1', '-W', '3', ...args]);
      expect(r.status, JSON.stringify(args)).not.toBe(0);
      expect(r.stderr).toMatch(/Connection Refused: (bad user name or password|not authori[sz]ed)/i);
    }
    expect(gw.access.refusedLogins).toBeGreaterThanOrEqual(3);
  });

  it('refuses mosquitto_pub with a wrong password (CONNACK 4) and lets the right one publish', async () => {
    const appTopic = sub('apps/canteen/#', 'canteen-app', 'canteen-pass-1');
    await appTopic.started();
    const before = gw.access.refusedLogins;
    const pub = (password: string, m: string) =>
      client('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-u', 'canteen-app', '-P', password, '-t', 'apps/canteen/pub-test', '-m', m]);
    const wrong = await pub('canteen-pass-2', 'from-wrong');
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/Connection Refused: bad user name or password/i);
    expect(gw.access.refusedLogins).toBe(before + 1);
    const right = await pub('canteen-pass-1', 'from-right');
    expect(right.status, right.stderr).toBe(0);
    await waitFor(() => appTopic.on('apps/canteen/pub-test').length === 1, 5000, 'the right password\'s message');
    expect(appTopic.on('apps/canteen/pub-test').map((l) => l.payload)).toEqual(['from-right']);
  });

  it('gives personal readings only to an account allowed them; a subscription to a personal topic is refused', async () => {
    const nurse = sub(`${base}/health/#`, 'nurse', 'nurse-pass-1');
    const app = sub(`${base}/health/#`, 'canteen-app', 'canteen-pass-1');
    const direct = await client('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-u', 'canteen-app', '-P', 'canteen-pass-1', '-t', `${base}/health/kiosk-1/systolic_bp`, '-C', '1', '-W', '3', '-v']);
    expect(direct.stdout).toBe('');
    expect(direct.stdout + direct.stderr).toMatch(/denied|refused|not authori/i);
    await waitFor(() => nurse.on(`${base}/health/kiosk-1/systolic_bp`).length >= 2, 10000, 'personal readings for the nurse');
    expect(JSON.parse(nurse.on(`${base}/health/kiosk-1/systolic_bp`).at(-1)!.payload).unit).toBe('mmHg');
    await waitFor(() => app.on(`${base}/health/kiosk-1/measurement_count`).length >= 2, 10000, 'public kiosk readings for the app');
    expect(app.lines.filter((l) => /systolic|diastolic|pulse|weight|glucose/.test(l.topic))).toEqual([]);
    // Identifiers reach nobody, not even the account allowed personal data.
    expect(nurse.lines.filter((l) => l.topic.includes('resident_card_uid'))).toEqual([]);
    expect(gw.access.refusedSubscriptions).toBeGreaterThanOrEqual(1);
  });

  it('refuses a subscription outside the account\'s patterns', async () => {
    const r = await client('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '-u', 'nurse', '-P', 'nurse-pass-1', '-t', `${base}/canteen/#`, '-C', '1', '-W', '3']);
    expect(r.stdout).toBe('');
    expect(r.stdout + r.stderr).toMatch(/denied|refused|not authori/i);
  });

  it('drops a publish outside the ACL (no spoofed readings) and lets one inside through', async () => {
    const watcher = sub('community/+/canteen/#', 'canteen-app', 'canteen-pass-1');
    const appTopic = sub('apps/canteen/#', 'canteen-app', 'canteen-pass-1');
    await sleep(500);
    await client('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-u', 'canteen-app', '-P', 'canteen-pass-1', '-t', `${base}/canteen/fridge-1/fridge_1_temperature`, '-m', '{"value":-99}']);
    await client('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-u', 'canteen-app', '-P', 'canteen-pass-1', '-t', 'apps/canteen/menu', '-m', 'noodles']);
    await waitFor(() => appTopic.on('apps/canteen/menu').length === 1, 5000, 'allowed publish');
    await sleep(300);
    expect(watcher.lines.some((l) => l.payload.includes('-99'))).toBe(false);
    expect(gw.access.refusedPublishes).toBeGreaterThanOrEqual(1);
  });

  it('drops an mqtt.js publish outside the ACL and disconnects that client; the subscriber never sees it', async () => {
    const watcher = sub('community/+/canteen/#', 'canteen-app', 'canteen-pass-1');
    const appTopic = sub('apps/canteen/#', 'canteen-app', 'canteen-pass-1');
    await watcher.started();
    const before = gw.access.refusedPublishes;
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username: 'canteen-app', password: 'canteen-pass-1', reconnectPeriod: 0 });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    try {
      await c.publishAsync('apps/canteen/js', 'inside');
      await waitFor(() => appTopic.on('apps/canteen/js').length === 1, 5000, 'the allowed mqtt.js publish');
      // QoS 1: MQTT 3.1.1 has no negative PUBACK, so the broker closes the connection instead.
      void c.publishAsync(`${base}/canteen/fridge-1/fridge_1_temperature`, '{"value":-77}', { qos: 1 }).catch(() => undefined);
      await Promise.race([closed, sleep(5000)]);
      expect(c.connected).toBe(false);
      expect(gw.access.refusedPublishes).toBe(before + 1);
      await sleep(300);
      expect(watcher.lines.some((l) => l.payload.includes('-77'))).toBe(false);
    } finally {
      await c.endAsync(true);
    }
  });
});
