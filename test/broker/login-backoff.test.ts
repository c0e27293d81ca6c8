// MQTT login back-off (security review finding 6): after a few wrong passwords an address is
// answered at once (CONNACK 3, server unavailable) before argon2 runs; a user name under
// attack gets a growing delay for unknown addresses, but an address that logged in as that
// user before still gets in; argon2 verifications are bounded; all of it counted and logged.
// Other loopback addresses (127.0.0.x) stand in for other LAN hosts.
import { describe, expect, it } from 'vitest';
import { capturingLogger } from '../helpers/gateway.js';
import { APP_PASSWORD, brokerSuite, startBroker } from './broker-helpers.js';
import { RawClient, connectPacket } from './raw-mqtt.js';

const suite = brokerSuite();
const { raws } = suite;

/** One CONNECT as `username` from `from`; resolves with the CONNACK return code. */
async function login(from: string, username: string, password: string, clientId = `c-${from}`): Promise<number | undefined> {
  const r = new RawClient(suite.broker!.port, from);
  raws.push(r);
  await r.connected();
  await r.write(connectPacket(clientId, username, password));
  const code = await r.connackOrClose();
  r.destroy();
  return code;
}

describe('local broker login back-off', () => {
  it('answers an address after freeFailures wrong passwords at once, without argon2, even with the right password', async () => {
    const cap = capturingLogger();
    suite.broker = await startBroker({ loginBackoff: { freeFailures: 3, baseDelayMs: 30_000, maxDelayMs: 60_000 } }, 'off', cap.log);
    for (let i = 0; i < 3; i++) expect(await login('127.0.0.2', 'app', 'wrong')).toBe(4);
    const before = suite.broker.stats.loginVerifications;
    const t0 = Date.now();
    expect(await login('127.0.0.2', 'app', APP_PASSWORD)).toBe(3);
    expect(await login('127.0.0.2', 'nobody', 'x')).toBe(3);
    expect(Date.now() - t0).toBeLessThan(500);
    expect(suite.broker.stats.loginVerifications).toBe(before); // no argon2 for a backed-off attempt
    expect(suite.broker.stats.loginRefusals).toMatchObject({ bad_credentials: 3, backed_off: 2 });
    expect(suite.broker.stats.refusedLogins).toBe(5);
    // Logged as a warning, once per kind a minute (the rest at debug).
    const warns = cap.lines().filter((l) => l.level === 40 && String(l.msg).startsWith('local broker:'));
    expect(warns.map((l) => l.msg)).toEqual(['local broker: wrong user name or password', 'local broker: login refused']);
    // Another host, with another user name, is checked as usual.
    expect(await login('127.0.0.3', 'other-user', 'x')).toBe(4);
  });

  it('delays a user name under attack for unknown addresses, but never locks the real user out', async () => {
    suite.broker = await startBroker({ loginBackoff: { freeFailures: 3, baseDelayMs: 30_000, maxDelayMs: 60_000 } }, 'off');
    // The real user logged in from its own host before.
    expect(await login('127.0.0.1', 'app', APP_PASSWORD)).toBe(0);
    // An attacker spreads guesses over hosts (each under the per-address allowance).
    for (const h of ['127.0.0.2', '127.0.0.2', '127.0.0.3']) expect(await login(h, 'app', 'guess')).toBe(4);
    // The user name is backed off now: a fresh host is answered at once, even with the password ...
    expect(await login('127.0.0.4', 'app', APP_PASSWORD)).toBe(3);
    // ... but the user's own host still gets in.
    expect(await login('127.0.0.1', 'app', APP_PASSWORD)).toBe(0);
  });

  it('grows the delay and lets the address try again once it passed', async () => {
    suite.broker = await startBroker({ loginBackoff: { freeFailures: 1, baseDelayMs: 200, maxDelayMs: 1000 } }, 'off');
    expect(await login('127.0.0.5', 'app', 'wrong')).toBe(4);
    expect(await login('127.0.0.5', 'app', APP_PASSWORD)).toBe(3);
    await new Promise((r) => setTimeout(r, 250)); // the delay itself is what is tested here
    expect(await login('127.0.0.5', 'app', APP_PASSWORD)).toBe(0);
  });

  it('bounds concurrent argon2 verifications: a burst past maxConcurrent + maxQueued is refused as busy', async () => {
    suite.broker = await startBroker({ loginBackoff: { freeFailures: 1000, maxConcurrent: 1, maxQueued: 2 } }, 'off');
    const codes = await Promise.all(Array.from({ length: 10 }, (_, i) => login(`127.0.3.${i + 1}`, 'app', 'wrong')));
    expect(codes.filter((c) => c === 4).length).toBe(3);
    expect(codes.filter((c) => c === 3).length).toBe(7);
    expect(suite.broker.stats.loginRefusals.busy).toBe(7);
    expect(suite.broker.stats.loginVerifications).toBe(3);
  });
});

describe('local broker login timing', () => {
  it('spends a password check on an unknown user name too (the answer does not tell which names exist)', async () => {
    suite.broker = await startBroker({ loginBackoff: { freeFailures: 1000 } }, 'off');
    const time = async (username: string) => {
      const t0 = process.hrtime.bigint();
      expect(await login('127.0.0.6', username, 'wrong')).toBe(4);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    await time('app'); // warm-up: the first check also hashes the decoy
    await time('nobody');
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 3; i++) {
      known.push(await time('app'));
      unknown.push(await time('nobody'));
    }
    const median = (a: number[]) => [...a].sort((x, y) => x - y)[1]!;
    // argon2 (19 MiB, t=2) takes tens of milliseconds; a refusal without it well under one.
    expect(median(unknown)).toBeGreaterThan(median(known) * 0.5);
  });
});
