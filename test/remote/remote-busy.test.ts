// One bundle at a time: a bundle arriving while another is being applied is refused as busy;
// bundles arriving together before any apply starts are taken in order. The handler runs on a
// host whose apply is held open by the test (the whole daemon is in remote-config.mosquitto.test.ts).
import { describe, expect, it } from 'vitest';
import { TEXT, cfg } from '../helpers/config-text.js';
import { silentLogger } from '../../src/log.js';
import { BUNDLE_FORMAT, configHash, generateKeyPair, signBundle } from '../../src/remote/bundle.js';
import { RemoteConfigHandler, type RemoteHost } from '../../src/remote/remote-config.js';
import { RemoteVersionStore } from '../../src/remote/remote-state.js';
import { ConfigResultMessage } from '../../src/uplink/contract.js';
import type { ApplyResult } from '../../src/web/web-app.js';
import { tmpDir } from '../helpers/peers.js';

const KEY = generateKeyPair();
const text = `${TEXT}remote:\n  trustedKeys: [${JSON.stringify(KEY.publicText)}]\n`;

function host() {
  let queue: Promise<unknown> = Promise.resolve();
  const releases: (() => void)[] = [];
  const audit: { action: string; detail?: Record<string, unknown> }[] = [];
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
    serial: <T>(fn: () => Promise<T>) => {
      const run = queue.then(fn);
      queue = run.catch(() => undefined);
      return run;
    },
    applyNow: (t) =>
      new Promise<ApplyResult>((resolve) =>
        releases.push(() => {
          running = t;
          resolve({ ok: true, applied: 'reload', version: { id: 1, ts: 0, user: 'x', note: '' } });
        }),
      ),
    audit: (e) => void audit.push(e),
  };
  return { h, releases, audit };
}

const bundle = (version: number, base: string, config: string) =>
  Buffer.from(JSON.stringify(signBundle({ format: BUNDLE_FORMAT, kind: 'config', gatewayId: 'gw-t', version, base, override: false, issuedAt: new Date(Date.now() - 1000).toISOString(), expiresAt: new Date(Date.now() + 60_000).toISOString(), note: '', config, profiles: {} }, KEY.privatePem)));

describe('remote bundles one at a time', () => {
  it('busy while one is applied; the next after it is done is checked against the new running config', async () => {
    const { h, releases, audit } = host();
    const store = new RemoteVersionStore(tmpDir('cgw-rb-'));
    store.load();
    const r = new RemoteConfigHandler(h, store, silentLogger());
    const next = text.replace('pollMs: 5000', 'pollMs: 2000');
    const first = r.handle(bundle(1, configHash(text), next));
    await new Promise((res) => setTimeout(res, 20));
    expect(releases).toHaveLength(1); // the first is being applied now
    const second = await r.handle(bundle(2, configHash(text), next));
    expect(ConfigResultMessage.parse(second)).toMatchObject({ outcome: 'refused', reason: 'busy', version: 2 });
    expect(audit.map((a) => a.detail?.reason)).toEqual(['busy']);
    releases[0]!();
    expect(await first).toMatchObject({ outcome: 'applied', version: 1, config: { hash: configHash(next), remoteVersion: 1 } });
    // Queued together before any apply: both checked in order; the second sees the first's result.
    const a = r.handle(bundle(2, configHash(text), text));
    const b = r.handle(bundle(3, configHash(next), text));
    const ra = await a;
    expect(ra).toMatchObject({ outcome: 'refused', reason: 'conflict', version: 2 });
    await new Promise((res) => setTimeout(res, 20));
    releases[1]!();
    expect(await b).toMatchObject({ outcome: 'applied', version: 3 });
  });
});
