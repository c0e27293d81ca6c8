// Remote configuration, the gateway side (issue 17), against a real Mosquitto as the platform
// broker and the whole daemon in-process (App: config file, kept versions, audit log, state
// folder on disk, a simulated site). Bundles are signed here with signBundle; a plain mqtt.js
// client plays the platform: it publishes on config/set and reads config/result and status.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { App } from '../../src/app.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { loadProfiles, loadProfileSet } from '../../src/config/profiles.js';
import type { Profile } from '../../src/config/profile-schema.js';
import { parseSiteConfig } from '../../src/config/site-config.js';
import { silentLogger } from '../../src/log.js';
import { BUNDLE_FORMAT, configHash, generateKeyPair, keyIdOf, MAX_BUNDLE_BYTES, signBundle, type Bundle, type BundlePayload } from '../../src/remote/bundle.js';
import { REMOTE_STATE_FILE } from '../../src/remote/remote-state.js';
import { ConfigResultMessage, remoteTopic, StatusMessage } from '../../src/uplink/contract.js';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { restartablePort, sleep, tmpDir, waitFor } from '../helpers/peers.js';
import { WebClient } from '../helpers/gateway.js';

const CC = '330106001001';
const GW = 'gw-remote';
const KEY = generateKeyPair();
const OTHER = generateKeyPair();
const KEY_ID = keyIdOf(KEY.publicText);
const profiles = loadProfiles(DRIVERS_DIR);
const CR10 = fs.readFileSync('test/fixtures/site-drivers/acme-cr10.yaml', 'utf8');

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
  // A broker per test: no session or retained status carried from one test to the next.
  await broker?.stop('SIGKILL');
  broker = null;
});
afterAll(() => stopAll('SIGKILL'));

let broker: Mosquitto | null = null;
async function mosquitto(): Promise<Mosquitto> {
  broker ??= await Mosquitto.start();
  return broker;
}

/** The platform: publishes bundles, keeps every result and status (each validated by the contract). */
class Platform {
  results: ConfigResultMessage[] = [];
  statuses: StatusMessage[] = [];
  topics: string[] = [];
  private constructor(private readonly client: MqttClient) {}

  static async connect(port: number): Promise<Platform> {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `platform-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 0 });
    const p = new Platform(client);
    client.on('message', (topic, payload) => {
      p.topics.push(topic);
      const json: unknown = JSON.parse(payload.toString('utf8'));
      if (topic.endsWith('/config/result')) p.results.push(ConfigResultMessage.parse(json));
      else if (topic.endsWith('/status')) p.statuses.push(StatusMessage.parse(json));
    });
    await client.subscribeAsync([`fc/v1/${CC}/+/config/result`, `fc/v1/${CC}/+/status`], { qos: 1 });
    cleanups.push(() => client.endAsync());
    return p;
  }

  async send(b: Bundle | string | Buffer, gw = GW): Promise<void> {
    await this.client.publishAsync(remoteTopic(CC, gw, 'set'), typeof b === 'string' || Buffer.isBuffer(b) ? b : JSON.stringify(b), { qos: 1 });
  }

  /** The next result after `seen` results. */
  async result(seen: number): Promise<ConfigResultMessage> {
    return waitFor(() => this.results[seen], 15_000, `config/result #${seen + 1}`);
  }

  /** Sends and waits for its answer. */
  async roundTrip(b: Bundle | string | Buffer, gw = GW): Promise<ConfigResultMessage> {
    const seen = this.results.length;
    await this.send(b, gw);
    return this.result(seen);
  }
}

interface Site {
  app: App;
  file: string;
  stateDir: string;
  simPort: number;
}

/** The daemon on a simulated site (a fridge, a health kiosk), uplinked to the test broker. */
async function site(o: { remote?: boolean; clock?: Record<string, unknown>; reuse?: Site; protocolVersion?: 4 | 5; profiles?: ReadonlyMap<string, Profile> } = {}): Promise<Site> {
  const m = await mosquitto();
  let file: string;
  let stateDir: string;
  let simPort: number;
  let text: string;
  if (o.reuse) {
    ({ file, stateDir, simPort } = o.reuse);
    text = fs.readFileSync(file, 'utf8');
  } else {
    simPort = await restartablePort();
    const dir = tmpDir('cgw-remote-');
    stateDir = path.join(dir, 'state');
    file = path.join(dir, 'site.yaml');
    text = stringify({
      site: { communityCode: CC, gatewayId: GW },
      localBroker: { host: '127.0.0.1', port: 0, anonymous: 'loopback' },
      web: { host: '127.0.0.1', port: 0, https: false },
      storage: { path: path.join(dir, 'gateway.db') },
      uplink: { url: `mqtt://127.0.0.1:${m.port}`, windowSeconds: 60, statusIntervalSeconds: 3600, reconnectMinMs: 200, reconnectMaxMs: 1000, protocolVersion: o.protocolVersion ?? 4 },
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
      devices: [
        { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 500 },
        { id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 3, pollMs: 500 },
      ],
      alarms: [{ id: 'fridge-warm', device: 'fridge-1', point: 'fridge_1_temperature', above: 8, forSeconds: 600 }],
      simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 5 },
      // The test machine's own time daemon must not decide: 'none' is "unknown", never unsynced.
      clock: o.clock ?? { sync: 'none' },
      ...(o.remote === false ? {} : { remote: { trustedKeys: [KEY.publicText] } }),
    });
    fs.writeFileSync(file, text);
  }
  const set = o.profiles ?? profiles;
  const r = parseSiteConfig(text, set);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  const app = new App(r.config, text, { configFile: file, editableFile: file, profiles: set, log: silentLogger(), stateDir });
  cleanups.push(() => app.stop());
  await app.start();
  await waitFor(() => app.gateway.uplink?.state === 'connected', 10_000, 'uplink connected');
  await sleep(300); // the subscription is sent right after CONNACK: let SUBACK come back
  return { app, file, stateDir, simPort };
}

const iso = (ms: number) => new Date(ms).toISOString();
const threshold = (app: App) => app.config.alarms[0]!.above;
const withThreshold = (text: string, above: number) => text.replace(/above: \d+/, `above: ${above}`);

function bundle(app: App, over: Partial<BundlePayload> = {}, key = KEY.privatePem): Bundle {
  const now = Date.now();
  return signBundle(
    {
      format: BUNDLE_FORMAT,
      kind: 'config',
      gatewayId: GW,
      version: 1,
      base: configHash(app.configText),
      override: false,
      issuedAt: iso(now - 1000),
      expiresAt: iso(now + 10 * 60_000),
      note: '',
      config: withThreshold(app.configText, 6),
      profiles: {},
      ...over,
    },
    key,
  );
}

function auditLines(app: App, action: string) {
  return app.audit.recent(200).filter((e) => e.action === action);
}

/** Nothing changed: the same text on disk and running, no new kept version. */
function unchanged(s: Site, text: string, versions: number): void {
  expect(s.app.configText).toBe(text);
  expect(fs.readFileSync(s.file, 'utf8')).toBe(text);
  expect(s.app.configs.versions(s.app.configText).length).toBe(versions);
}

describe('remote configuration: the gateway (issue 17)', () => {
  it('a good bundle is applied and reported: result at the platform, config running, a kept version with the note, an audit line, status.config', async () => {
    const s = await site();
    const platform = await Platform.connect(broker!.port);
    const before = s.app.configText;
    expect(threshold(s.app)).toBe(8);

    const r = await platform.roundTrip(bundle(s.app, { version: 3, note: '夏季阈值 6°C' }));
    expect(r).toMatchObject({ kind: 'config-result', gatewayId: GW, communityCode: CC, version: 3, outcome: 'applied', applied: 'reload' });
    expect(r.reason).toBeUndefined();
    expect(threshold(s.app)).toBe(6);
    expect(fs.readFileSync(s.file, 'utf8')).toBe(withThreshold(before, 6));
    // The result names the config now running: its hash, the kept version, the remote version.
    const kept = s.app.configs.versions(s.app.configText).find((v) => v.running)!;
    expect(kept).toMatchObject({ user: `platform:${KEY_ID}`, note: 'platform bundle 3: 夏季阈值 6°C' });
    expect(r.config).toEqual({ hash: configHash(s.app.configText), version: kept.id, remoteVersion: 3, remote: true });
    const audit = auditLines(s.app, 'config-remote');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ user: `platform:${KEY_ID}`, detail: { mode: 'reload', note: 'platform bundle 3: 夏季阈值 6°C', remoteVersion: 3, keyId: KEY_ID } });
    // The version is on disk in the state folder.
    expect(JSON.parse(fs.readFileSync(path.join(s.stateDir, REMOTE_STATE_FILE), 'utf8'))).toMatchObject({ version: 3, keyId: KEY_ID });
    // A status right after the change carries the same config (StatusMessage.parse in Platform).
    const st = await waitFor(() => platform.statuses.find((m) => m.config?.remoteVersion === 3), 10_000, 'status with remoteVersion 3');
    expect(st.config).toEqual(r.config);
    // What the page shows: the version list and the audit log through the page's own API.
    const web = new WebClient(`http://127.0.0.1:${s.app.web.port}`);
    expect((await web.post('/api/setup', { password: 'Xihu-station-2026', setupCode: s.app.auth.setupCode })).status).toBe(200);
    const shown = (await web.get('/api/config')).body;
    expect(shown.versions.find((v: { running: boolean }) => v.running)).toMatchObject({ user: `platform:${KEY_ID}`, note: 'platform bundle 3: 夏季阈值 6°C' });
    const entries = (await web.get('/api/audit?limit=50')).body.entries as { action: string; user: string }[];
    expect(entries.find((e) => e.action === 'config-remote')).toMatchObject({ user: `platform:${KEY_ID}` });
  });

  it('refuses, each with its reason and nothing changed: malformed, too large, bad signature, unknown key, another gateway, expired, not yet valid, loosening a privacy class, stale base; override applies the stale one', async () => {
    const s = await site();
    const platform = await Platform.connect(broker!.port);
    const text = s.app.configText;
    const versions = s.app.configs.versions(text).length;
    const refused = async (b: Bundle | string | Buffer, reason: string, detail: RegExp, gw = GW) => {
      const r = await platform.roundTrip(b, gw);
      expect(r, JSON.stringify(r)).toMatchObject({ outcome: 'refused', reason, gatewayId: GW });
      expect(r.detail).toMatch(detail);
      expect(r.config).toEqual({ hash: configHash(text), version: null, remoteVersion: null, remote: true });
      unchanged(s, text, versions);
      return r;
    };

    expect((await refused('{"format": ', 'malformed', /^not JSON/)).version).toBeNull();
    expect((await refused(JSON.stringify({ ...bundle(s.app, { version: 4 }), gatewayId: undefined }), 'malformed', /gatewayId/)).version).toBe(4);
    await refused(Buffer.alloc(MAX_BUNDLE_BYTES + 1, 0x20), 'too-large', /more than/);
    // Changed after signing: the signature no longer covers the text.
    const tampered = { ...bundle(s.app, { version: 5 }), config: withThreshold(text, 30) };
    await refused(tampered, 'bad-signature', /signature does not match/);
    await refused(bundle(s.app, { version: 6 }, OTHER.privatePem), 'unknown-key', new RegExp(keyIdOf(OTHER.publicText)));
    // Addressed to another gateway but published on this one's topic.
    await refused(bundle(s.app, { version: 7, gatewayId: 'gw-elsewhere' }), 'wrong-gateway', /gw-elsewhere/);
    await refused(bundle(s.app, { version: 8, issuedAt: iso(Date.now() - 7200_000), expiresAt: iso(Date.now() - 3600_000) }), 'expired', /expired at/);
    await refused(bundle(s.app, { version: 9, issuedAt: iso(Date.now() + 3600_000), expiresAt: iso(Date.now() + 7200_000) }), 'not-yet-valid', /ahead/);
    // The health kiosk's systolic pressure is personal in its profile: public would loosen it.
    const loosen = text.replace("profile: fc-health-kiosk-v1\n", 'profile: fc-health-kiosk-v1\n    privacy: { systolic_bp: public }\n');
    expect(loosen).not.toBe(text);
    await refused(bundle(s.app, { version: 10, config: loosen }), 'invalid', /would loosen systolic_bp/);
    // A site profile that is not one (its file name is not its id): refused, nothing written.
    await refused(bundle(s.app, { version: 11, profiles: { 'acme-x.yaml': CR10 } }), 'invalid', /^profiles\.acme-x\.yaml: id: "acme-cr10" must equal the file name "acme-x"/);
    expect(fs.existsSync(path.join(path.dirname(s.file), 'drivers'))).toBe(false);
    // Made against another config than the running one (a technician changed it on site).
    const stale = configHash(withThreshold(text, 7));
    await refused(bundle(s.app, { version: 12, base: stale }), 'conflict', /send it with override/);
    // Every refusal of a signed bundle is in the audit log with its reason. The unverified ones
    // (user "platform": anyone who can publish on the topic) are rate-limited: the first is
    // written, the four after it in the same window are counted, not lost.
    const lines = auditLines(s.app, 'config-remote-refused');
    expect(lines.map((l) => (l.detail as { reason: string }).reason).reverse()).toEqual(['malformed', 'wrong-gateway', 'expired', 'not-yet-valid', 'invalid', 'invalid', 'conflict']);
    expect(lines.find((l) => (l.detail as { reason: string }).reason === 'conflict')!.user).toBe(`platform:${KEY_ID}`);
    expect(lines.find((l) => (l.detail as { reason: string }).reason === 'malformed')!.user).toBe('platform');
    expect(s.app.audit.stats.suppressed).toBe(4);
    expect(fs.existsSync(path.join(s.stateDir, REMOTE_STATE_FILE))).toBe(false);

    // The same stale base with override is applied.
    const r = await platform.roundTrip(bundle(s.app, { version: 12, base: stale, override: true }));
    expect(r).toMatchObject({ outcome: 'applied', version: 12 });
    expect(threshold(s.app)).toBe(6);
  });

  it('replayed and lower versions are refused, also after a restart (the version is persisted); a bundle sent while the gateway is down arrives when it is back', async () => {
    const s = await site();
    const platform = await Platform.connect(broker!.port);
    const v10 = bundle(s.app, { version: 10 });
    expect((await platform.roundTrip(v10)).outcome).toBe('applied');
    const text = s.app.configText;
    const versions = s.app.configs.versions(text).length;
    // The same bundle again (base is stale now: replay comes first), and a lower version on the right base.
    expect(await platform.roundTrip(v10)).toMatchObject({ outcome: 'refused', reason: 'replay', version: 10 });
    expect(await platform.roundTrip(bundle(s.app, { version: 9, config: withThreshold(text, 5) }))).toMatchObject({ outcome: 'refused', reason: 'replay', version: 9 });
    unchanged(s, text, versions);

    // Down: the broker keeps what is sent meanwhile (persistent session, QoS 1).
    await s.app.stop();
    const seen = platform.results.length;
    await platform.send(bundle(s.app, { version: 10, config: withThreshold(text, 4) }));
    await platform.send(bundle(s.app, { version: 11, config: withThreshold(text, 3), note: 'sent while offline' }));
    const back = await site({ reuse: s });
    const [a, b] = [await platform.result(seen), await platform.result(seen + 1)];
    expect(a).toMatchObject({ outcome: 'refused', reason: 'replay', version: 10 });
    expect(b).toMatchObject({ outcome: 'applied', version: 11, config: { remoteVersion: 11 } });
    expect(threshold(back.app)).toBe(3);
    expect(back.app.configs.versions(back.app.configText).find((v) => v.running)!.note).toBe('platform bundle 11: sent while offline');
  });

  it('MQTT 5: the session outlives the disconnect (session expiry), so a bundle sent meanwhile still arrives', async () => {
    const s = await site({ protocolVersion: 5 });
    const platform = await Platform.connect(broker!.port);
    await s.app.stop();
    const seen = platform.results.length;
    await platform.send(bundle(s.app, { version: 1 }));
    const back = await site({ reuse: s });
    expect(await platform.result(seen)).toMatchObject({ outcome: 'applied', version: 1 });
    expect(threshold(back.app)).toBe(6);
  });

  it('a bundle that renames the gateway is answered under the new name, on its topic (the envelope matches the topic)', async () => {
    const s = await site();
    const platform = await Platform.connect(broker!.port);
    const renamed = s.app.configText.replace(`gatewayId: ${GW}`, 'gatewayId: gw-renamed');
    expect(renamed).not.toBe(s.app.configText);
    const r = await platform.roundTrip(bundle(s.app, { version: 1, config: renamed }));
    expect(r).toMatchObject({ outcome: 'applied', applied: 'restart', gatewayId: 'gw-renamed', communityCode: CC });
    expect(platform.topics.find((t) => t.endsWith('/config/result'))).toBe(remoteTopic(CC, 'gw-renamed', 'result'));
  });

  it('a bundle whose config fails to start (the simulator port taken) is rolled back and reported', async () => {
    const s = await site();
    const platform = await Platform.connect(broker!.port);
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
    const taken = (squatter.address() as net.AddressInfo).port;
    const text = s.app.configText;
    const moved = text.replaceAll(`port: ${s.simPort}`, `port: ${taken}`);
    expect(moved).not.toBe(text);
    const r = await platform.roundTrip(bundle(s.app, { version: 2, config: moved }));
    expect(r).toMatchObject({ outcome: 'rolled-back', version: 2, config: { hash: configHash(text), remoteVersion: 2, remote: true } });
    expect(r.detail).toMatch(/EADDRINUSE|in use/i);
    expect(s.app.configText).toBe(text);
    expect(fs.readFileSync(s.file, 'utf8')).toBe(text);
    expect(s.app.config.simulator.port).toBe(s.simPort);
    expect(auditLines(s.app, 'config-remote')).toHaveLength(1);
    expect(auditLines(s.app, 'config-restored')).toHaveLength(1);
    // The uplink of the restored gateway still answers.
    await waitFor(() => s.app.gateway.uplink?.state === 'connected', 10_000, 'uplink back');
    expect(await platform.roundTrip(bundle(s.app, { version: 2 }))).toMatchObject({ outcome: 'refused', reason: 'replay' });
  });

  it('a bundle with a site profile: stored beside the config, the gateway rebuilt on it (its device polled), the answer lists it; one whose config fails to start puts the previous file back; a restart loads it', async () => {
    const s = await site();
    const platform = await Platform.connect(broker!.port);
    const stored = path.join(path.dirname(s.file), 'drivers', 'acme-cr10.yaml');
    // A device of the site's own model, on the simulated bus.
    const withCold = s.app.configText.replace('  - id: kiosk-1', '  - id: cold-1\n    facility: canteen\n    profile: acme-cr10\n    bus: lan\n    unitId: 4\n    pollMs: 500\n  - id: kiosk-1');
    expect(withCold).not.toBe(s.app.configText);
    // Without the profile the config does not pass.
    expect(await platform.roundTrip(bundle(s.app, { version: 1, config: withCold }))).toMatchObject({ outcome: 'refused', reason: 'invalid', detail: expect.stringMatching(/acme-cr10/) });

    const readings: string[] = [];
    s.app.onReading((x) => {
      if (x.device === 'cold-1' && x.quality === 'good') readings.push(x.point);
    });
    const r = await platform.roundTrip(bundle(s.app, { version: 2, config: withCold, profiles: { 'acme-cr10.yaml': CR10 }, note: '冷库控制器' }));
    expect(r).toMatchObject({ outcome: 'applied', applied: 'restart', version: 2, profiles: { 'acme-cr10.yaml': configHash(CR10) } });
    expect(fs.readFileSync(stored, 'utf8')).toBe(CR10);
    expect(s.app.profiles.get('acme-cr10')?.model).toBe('CR-10 cold-room controller');
    await waitFor(() => readings.includes('room_temperature'), 10_000, 'a good reading of cold-1 (acme-cr10) from the simulator');
    const audit = auditLines(s.app, 'config-remote').at(0)!;
    expect(audit.detail).toMatchObject({ mode: 'restart', profiles: { 'acme-cr10.yaml': configHash(CR10) }, profilesChanged: ['acme-cr10.yaml'] });

    // A changed profile with a config that cannot start (the simulator's port taken): both back.
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
    const taken = (squatter.address() as net.AddressInfo).port;
    const running = s.app.configText;
    const edited = CR10.replace('Cold-room controller (test)', 'Cold-room controller rev B');
    const back = await platform.roundTrip(bundle(s.app, { version: 3, config: running.replaceAll(`port: ${s.simPort}`, `port: ${taken}`), profiles: { 'acme-cr10.yaml': edited } }));
    expect(back).toMatchObject({ outcome: 'rolled-back', version: 3, config: { hash: configHash(running) } });
    expect(back.profiles).toBeUndefined();
    expect(fs.readFileSync(stored, 'utf8')).toBe(CR10);
    expect(s.app.profiles.get('acme-cr10')?.name.en).toBe('Cold-room controller (test)');
    expect(s.app.configText).toBe(running);
    // The same profile again is no change: the config alone decides how it is applied.
    const same = await platform.roundTrip(bundle(s.app, { version: 4, config: withThreshold(running, 5), profiles: { 'acme-cr10.yaml': CR10 } }));
    expect(same).toMatchObject({ outcome: 'applied', applied: 'reload' });
    expect(auditLines(s.app, 'config-remote').at(0)!.detail).toMatchObject({ profilesChanged: [] });

    // The daemon started again reads the stored profile from the site folder.
    await s.app.stop();
    const again = await site({ reuse: s, profiles: loadProfileSet({ configFile: s.file }) });
    expect(again.app.profiles.get('acme-cr10')?.model).toBe('CR-10 cold-room controller');
    expect(again.app.config.devices.map((d) => d.id)).toContain('cold-1');
  });

  it('a box whose clock is known unsynchronised refuses with clock-unsynced, and applies once synced', async () => {
    const flag = path.join(tmpDir('cgw-timesync-'), 'synchronized');
    const s = await site({ clock: { sync: 'timesyncd', syncFile: flag } });
    const platform = await Platform.connect(broker!.port);
    const text = s.app.configText;
    expect(await platform.roundTrip(bundle(s.app, { version: 1 }))).toMatchObject({ outcome: 'refused', reason: 'clock-unsynced' });
    expect(s.app.configText).toBe(text);
    fs.writeFileSync(flag, '');
    await waitFor(() => s.app.gateway.clockSync.synchronized === true, 10_000, 'clock synchronised');
    expect(await platform.roundTrip(bundle(s.app, { version: 1 }))).toMatchObject({ outcome: 'applied' });
  });

  it('remote off: no subscription, a bundle gets no answer and changes nothing; status carries config with remote false', async () => {
    const s = await site({ remote: false });
    const platform = await Platform.connect(broker!.port);
    const text = s.app.configText;
    const st = await waitFor(() => platform.statuses.find((m) => m.gatewayId === GW && m.state === 'online' && m.config), 10_000, 'status (retained)');
    expect(st.config).toEqual({ hash: configHash(text), version: null, remoteVersion: null, remote: false });
    await platform.send(bundle(s.app, { version: 1 }));
    await sleep(1500);
    expect(platform.results).toEqual([]);
    expect(s.app.configText).toBe(text);
    expect(auditLines(s.app, 'config-remote-refused')).toEqual([]);
  });

  it('a local change that turns remote off is reported at once, and bundles are ignored from then on', async () => {
    const s = await site();
    const platform = await Platform.connect(broker!.port);
    const off = s.app.configText.replace(/remote:\n {2}trustedKeys:\n {4}- \S+\n/, '');
    expect(off).not.toBe(s.app.configText);
    const r = await s.app.apply(off, { user: 'admin', ip: '127.0.0.1' }, 'remote off', 'config-apply');
    expect(r).toMatchObject({ ok: true, applied: 'restart' });
    const st = await waitFor(() => platform.statuses.find((m) => m.config?.remote === false), 10_000, 'status with remote false');
    expect(st.config!.hash).toBe(configHash(off));
    await waitFor(() => s.app.gateway.uplink?.state === 'connected', 10_000, 'uplink back');
    await platform.send(bundle(s.app, { version: 1 }));
    await sleep(1500);
    expect(platform.results).toEqual([]);
    expect(s.app.configText).toBe(off);
  });
});
