// Remote commands through the bundle handler (the checks and the version counter), on a host
// that records what it is asked to do. The whole daemon against Mosquitto is in
// remote-command.mosquitto.test.ts.
import { describe, expect, it } from 'vitest';
import { TEXT, cfg } from '../helpers/config-text.js';
import { silentLogger } from '../../src/log.js';
import { BUNDLE_FORMAT, Bundle, configHash, generateKeyPair, REMOTE_COMMANDS, signBundle, verifySignature, type RemoteCommand } from '../../src/remote/bundle.js';
import { RemoteConfigHandler, type CommandOutcome, type RemoteHost } from '../../src/remote/remote-config.js';
import { RemoteVersionStore } from '../../src/remote/remote-state.js';
import { ConfigResultMessage, REMOTE_COMMAND_NAMES } from '../../src/uplink/contract.js';
import { tmpDir } from '../helpers/peers.js';

const KEY = generateKeyPair();
const OTHER = generateKeyPair();
const text = `${TEXT}remote:\n  trustedKeys: [${JSON.stringify(KEY.publicText)}]\n`;

function host(outcome: (name: RemoteCommand) => CommandOutcome = () => ({ ok: true, detail: 'done' })) {
  const audit: { user: string; action: string; detail?: Record<string, unknown> }[] = [];
  const calls: { name: RemoteCommand; version: number }[] = [];
  let running = text;
  const h: RemoteHost = {
    get config() {
      return cfg(running);
    },
    get configText() {
      return running;
    },
    runningVersion: () => null,
    clockSynchronized: () => null,
    check: () => ({ ok: true }),
    serial: (fn) => fn(),
    applyNow: async (t) => {
      running = t;
      return { ok: true, applied: 'reload', version: { id: 1, ts: 0, user: 'x', note: '' } };
    },
    audit: (e) => void audit.push(e),
    command: async (name, version) => {
      calls.push({ name, version });
      return outcome(name);
    },
  };
  const store = new RemoteVersionStore(tmpDir('cgw-rc-'));
  store.load();
  return { r: new RemoteConfigHandler(h, store, silentLogger()), audit, calls, store };
}

const now = Date.now();
const command = (version: number, name: RemoteCommand, over: Record<string, unknown> = {}, key = KEY.privatePem) =>
  signBundle({ format: BUNDLE_FORMAT, kind: 'command', gatewayId: 'gw-t', version, issuedAt: new Date(now - 1000).toISOString(), expiresAt: new Date(now + 60_000).toISOString(), note: 'from the test', command: name, ...over } as never, key);
const buf = (b: unknown) => Buffer.from(JSON.stringify(b));

describe('remote commands: the handler', () => {
  it('the contract and the bundle name the same commands', () => {
    expect([...REMOTE_COMMAND_NAMES]).toEqual([...REMOTE_COMMANDS]);
  });

  it('a signed command is carried out, answered applied with its name, audited, and its version used', async () => {
    for (const name of REMOTE_COMMANDS) {
      const { r, audit, calls, store } = host();
      const a = await r.receive(buf(command(4, name)));
      expect(ConfigResultMessage.parse(a.result)).toMatchObject({ kind: 'config-result', version: 4, outcome: 'applied', command: name, detail: 'done', config: { remoteVersion: 4 } });
      expect(a.after).toBeUndefined();
      expect(calls).toEqual([{ name, version: 4 }]);
      expect(store.version).toBe(4);
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ action: 'config-remote-command', detail: { command: name, version: 4, note: 'from the test' } });
      expect(audit[0]!.user).toMatch(/^platform:[0-9a-f]{16}$/);
    }
  });

  it('one counter with config bundles: a replayed command, or one at or below a config bundle\'s version, is refused and not run', async () => {
    const { r, calls, audit } = host();
    expect((await r.receive(buf(command(5, 'status')))).result.outcome).toBe('applied');
    const again = await r.receive(buf(command(5, 'status')));
    expect(again.result).toMatchObject({ outcome: 'refused', reason: 'replay', version: 5, command: 'status' });
    // A config bundle at 7, then a command at 6: refused.
    const cfgBundle = signBundle({ format: BUNDLE_FORMAT, kind: 'config', gatewayId: 'gw-t', version: 7, base: configHash(text), override: false, issuedAt: new Date(now - 1000).toISOString(), expiresAt: new Date(now + 60_000).toISOString(), note: '', config: text, profiles: {} }, KEY.privatePem);
    expect((await r.receive(buf(cfgBundle))).result).toMatchObject({ outcome: 'applied', version: 7 });
    expect((await r.receive(buf(command(6, 'restart')))).result).toMatchObject({ outcome: 'refused', reason: 'replay', command: 'restart' });
    expect(calls).toEqual([{ name: 'status', version: 5 }]);
    expect(audit.filter((e) => e.action === 'config-remote-refused').map((e) => e.detail)).toEqual([
      expect.objectContaining({ reason: 'replay', version: 5, command: 'status' }),
      expect.objectContaining({ reason: 'replay', version: 6, command: 'restart' }),
    ]);
  });

  it('refused the same ways as config bundles: unknown key, bad signature, another gateway, expired, not yet valid, malformed', async () => {
    const { r, calls } = host();
    const cases: [unknown, string][] = [
      [command(1, 'status', {}, OTHER.privatePem), 'unknown-key'],
      [{ ...command(1, 'status'), command: 'restart' }, 'bad-signature'],
      [command(1, 'status', { gatewayId: 'gw-other' }), 'wrong-gateway'],
      [command(1, 'status', { issuedAt: new Date(now - 120_000).toISOString(), expiresAt: new Date(now - 60_000).toISOString() }), 'expired'],
      [command(1, 'status', { issuedAt: new Date(now + 3_600_000).toISOString(), expiresAt: new Date(now + 7_200_000).toISOString() }), 'not-yet-valid'],
      [{ ...command(1, 'status'), command: 'read-residents' }, 'malformed'],
      [{ ...command(1, 'status'), config: text }, 'malformed'],
    ];
    for (const [b, reason] of cases) {
      const a = await r.receive(buf(b));
      expect(ConfigResultMessage.parse(a.result), reason).toMatchObject({ outcome: 'refused', reason });
    }
    expect(calls).toEqual([]);
  });

  it('a command the host cannot carry out is refused as unavailable, its version used; restart hands back what to run after the answer', async () => {
    let restarted = 0;
    const { r, audit } = host((name) => (name === 'diagnostics' ? { ok: false, detail: 'the uplink is not connected' } : { ok: true, detail: 'restarting', after: () => void restarted++ }));
    const d = await r.receive(buf(command(2, 'diagnostics')));
    expect(d.result).toMatchObject({ outcome: 'refused', reason: 'unavailable', command: 'diagnostics', detail: 'the uplink is not connected' });
    expect((await r.receive(buf(command(2, 'status')))).result).toMatchObject({ reason: 'replay' });
    const a = await r.receive(buf(command(3, 'restart')));
    expect(a.result).toMatchObject({ outcome: 'applied', command: 'restart' });
    // Not run by the handler: the daemon runs it once the answer is sent.
    expect(restarted).toBe(0);
    expect(audit.some((e) => e.action === 'config-remote-command' && e.detail?.command === 'restart')).toBe(true);
    a.after!();
    expect(restarted).toBe(1);
  });

  it('a command bundle round-trips the schema and verifies; a config bundle is still read as one', () => {
    const c = command(9, 'inventory');
    const parsed = Bundle.parse(JSON.parse(JSON.stringify(c)));
    expect(parsed.kind).toBe('command');
    expect(verifySignature(parsed, [KEY.publicText])).toEqual({ ok: true, key: KEY.publicText });
  });
});
