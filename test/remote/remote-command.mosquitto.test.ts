// Remote commands (issue 17 item 3), the gateway side, against a real Mosquitto as the platform
// broker and the whole daemon in-process (App, state folder, audit log, a simulated site with a
// health kiosk whose card numbers must never leave). A plain mqtt.js client plays the platform:
// it publishes signed commands on config/set and keeps every result, status, inventory and
// diagnostics message, each validated by the contract.
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import argon2 from 'argon2';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { App } from '../../src/app.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { parseSiteConfig } from '../../src/config/site-config.js';
import { createLogger, LogRing } from '../../src/log.js';
import { BUNDLE_FORMAT, configHash, generateKeyPair, keyIdOf, signBundle, type Bundle, type RemoteCommand } from '../../src/remote/bundle.js';
import { ConfigResultMessage, DiagnosticsMessage, InventoryMessage, remoteTopic, StatusMessage } from '../../src/uplink/contract.js';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { restartablePort, sleep, tmpDir, waitFor } from '../helpers/peers.js';

const CC = '330106001001';
const GW = 'gw-cmd';
const KEY = generateKeyPair();
const KEY_ID = keyIdOf(KEY.publicText);
const UPLINK_PASSWORD = 'Uplink-Pw-Remote-7731';
const BROKER_PASSWORD = 'Local-App-Pw-Remote-4410';
const profiles = loadProfiles(DRIVERS_DIR);

let cleanups: (() => Promise<void> | void)[] = [];
let broker: Mosquitto | null = null;
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
  await broker?.stop('SIGKILL');
  broker = null;
});
afterAll(() => stopAll('SIGKILL'));

/** The platform: keeps every message of the gateway, each parsed by its contract schema. */
class Platform {
  results: ConfigResultMessage[] = [];
  statuses: StatusMessage[] = [];
  inventories: InventoryMessage[] = [];
  diagnostics: DiagnosticsMessage[] = [];
  /** Raw text of every diagnostics message, for the search. */
  diagnosticsRaw: string[] = [];
  private constructor(private readonly client: MqttClient) {}

  static async connect(port: number): Promise<Platform> {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `platform-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 0 });
    const p = new Platform(client);
    client.on('message', (topic, payload) => {
      const text = payload.toString('utf8');
      const json: unknown = JSON.parse(text);
      if (topic.endsWith('/config/result')) p.results.push(ConfigResultMessage.parse(json));
      else if (topic.endsWith('/status')) p.statuses.push(StatusMessage.parse(json));
      else if (topic.endsWith('/inventory')) p.inventories.push(InventoryMessage.parse(json));
      else if (topic === `fc/v1/${CC}/${GW}/diagnostics`) {
        p.diagnosticsRaw.push(text);
        p.diagnostics.push(DiagnosticsMessage.parse(json));
      }
    });
    await client.subscribeAsync([`fc/v1/${CC}/${GW}/config/result`, `fc/v1/${CC}/${GW}/status`, `fc/v1/${CC}/${GW}/inventory`, `fc/v1/${CC}/${GW}/diagnostics`], { qos: 1 });
    cleanups.push(() => client.endAsync());
    return p;
  }

  async roundTrip(b: Bundle): Promise<ConfigResultMessage> {
    const seen = this.results.length;
    await this.client.publishAsync(remoteTopic(CC, GW, 'set'), JSON.stringify(b), { qos: 1 });
    return waitFor(() => this.results[seen], 15_000, `config/result #${seen + 1}`);
  }
}

interface Site {
  app: App;
  dir: string;
  stateDir: string;
}

async function site(): Promise<Site> {
  broker ??= await Mosquitto.start();
  const simPort = await restartablePort();
  const dir = tmpDir('cgw-cmd-');
  const stateDir = path.join(dir, 'state');
  const hash = await argon2.hash(BROKER_PASSWORD, { type: argon2.argon2id });
  const text = stringify({
    site: { communityCode: CC, gatewayId: GW },
    localBroker: { host: '127.0.0.1', port: 0, anonymous: 'loopback', accounts: [{ username: 'canteen-app', passwordHash: hash, subscribe: ['community/#'] }] },
    web: { host: '127.0.0.1', port: 0, https: false },
    storage: { path: path.join(dir, 'gateway.db') },
    // Mosquitto of the tests allows anonymous clients and takes any credentials: the password is
    // here to be searched for in the diagnostic bundle.
    uplink: { url: `mqtt://127.0.0.1:${broker.port}`, username: 'gw-cmd', password: UPLINK_PASSWORD, windowSeconds: 60, statusIntervalSeconds: 3600, reconnectMinMs: 200, reconnectMaxMs: 1000, maxMessageBytes: 8192 },
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
    devices: [
      { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 500 },
      { id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 3, pollMs: 500 },
    ],
    simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 5 },
    clock: { sync: 'none' },
    remote: { trustedKeys: [KEY.publicText] },
  });
  const file = path.join(dir, 'site.yaml');
  fs.writeFileSync(file, text);
  const r = parseSiteConfig(text, profiles);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  // The daemon's logs go to a ring, as the real one's do: the bundle carries them.
  const ring = new LogRing(500);
  const log = createLogger('info', { format: 'json', destination: new Writable({ write: (_c, _e, cb) => cb() }), ring });
  const app = new App(r.config, text, { configFile: file, editableFile: file, profiles, log, stateDir, logs: ring });
  cleanups.push(() => app.stop());
  await app.start();
  await waitFor(() => app.gateway.uplink?.state === 'connected', 10_000, 'uplink connected');
  await sleep(300); // SUBACK of config/set
  return { app, dir, stateDir };
}

const iso = (ms: number) => new Date(ms).toISOString();
function command(version: number, name: RemoteCommand): Bundle {
  const now = Date.now();
  return signBundle({ format: BUNDLE_FORMAT, kind: 'command', gatewayId: GW, version, issuedAt: iso(now - 1000), expiresAt: iso(now + 10 * 60_000), note: `test ${name}`, command: name }, KEY.privatePem);
}
const audited = (app: App, action: string) => app.audit.recent(200).filter((e) => e.action === action);

describe('remote commands: the gateway (issue 17 item 3)', () => {
  it('inventory: answered, a fresh inventory item and a status arrive; status: a status now; a replayed command is refused and sends nothing', async () => {
    const s = await site();
    const platform = await Platform.connect(broker!.port);
    // The start-up inventory went before the platform subscribed (not retained): a fresh one
    // is one made after the command was sent.
    await sleep(500);
    const sentAt = Date.now();
    const st0 = platform.statuses.length;

    const r = await platform.roundTrip(command(2, 'inventory'));
    expect(r).toMatchObject({ kind: 'config-result', gatewayId: GW, version: 2, outcome: 'applied', command: 'inventory', config: { remoteVersion: 2, remote: true, hash: configHash(s.app.configText) } });
    const inv = await waitFor(() => platform.inventories.find((m) => m.items.some((i) => i.ts >= sentAt)), 10_000, 'a fresh inventory');
    expect(inv.items[0]!.devices.map((d) => d.id).sort()).toEqual(['fridge-1', 'kiosk-1']);
    const st = await waitFor(() => platform.statuses.slice(st0).find((m) => m.config?.remoteVersion === 2), 10_000, 'a status after the command');
    expect(st.state).toBe('online');

    const st1 = platform.statuses.length;
    expect(await platform.roundTrip(command(3, 'status'))).toMatchObject({ version: 3, outcome: 'applied', command: 'status' });
    await waitFor(() => platform.statuses.slice(st1).find((m) => m.config?.remoteVersion === 3), 10_000, 'a status now');

    // The same command again: refused, nothing sent, nothing changed.
    const inv1 = platform.inventories.length;
    const again = await platform.roundTrip(command(2, 'inventory'));
    expect(again).toMatchObject({ version: 2, outcome: 'refused', reason: 'replay', command: 'inventory', config: { remoteVersion: 3 } });
    await sleep(700);
    expect(platform.inventories.length).toBe(inv1);

    const lines = audited(s.app, 'config-remote-command');
    expect(lines.map((e) => [e.user, e.detail?.command, e.detail?.version])).toEqual(
      expect.arrayContaining([
        [`platform:${KEY_ID}`, 'inventory', 2],
        [`platform:${KEY_ID}`, 'status', 3],
      ]),
    );
    expect(audited(s.app, 'config-remote-refused').some((e) => e.detail?.reason === 'replay' && e.detail?.command === 'inventory')).toBe(true);
  }, 60_000);

  it('diagnostics: the page\'s bundle arrives in parts that validate and join to JSON, with no secret of the config and no personal value', async () => {
    const s = await site();
    const platform = await Platform.connect(broker!.port);
    // The card number the kiosk holds now, read over Modbus as the gateway reads it, and its pseudonym.
    const app = s.app;
    const card = app.gateway.profileOf('kiosk-1')!.points.find((p) => p.id === 'resident_card_uid')!;
    const words = await app.gateway.tryRead('kiosk-1', { register: card.register, start: card.address, count: 2 });
    const cardNumber = words[0]! * 65536 + words[1]!;
    expect(cardNumber).toBeGreaterThanOrEqual(10_000_000);
    const pseudonym = await waitFor(() => app.gateway.state.last.get('kiosk-1')?.get('resident_card_uid')?.value, 15_000, 'a kiosk reading');
    await waitFor(() => app.gateway.state.last.get('fridge-1')?.size, 15_000, 'a fridge reading');

    const r = await platform.roundTrip(command(5, 'diagnostics'));
    expect(r).toMatchObject({ version: 5, outcome: 'applied', command: 'diagnostics' });
    expect(r.detail).toMatch(/^diagnostic bundle diagnostics-gw-cmd-\d{8}T\d{6}\.json: \d+ bytes in \d+ part\(s\)$/);
    // Sent before the result, on the same connection: all there once the result is.
    const parts = await waitFor(() => (platform.diagnostics.length && platform.diagnostics.length === platform.diagnostics[0]!.parts ? platform.diagnostics : undefined), 10_000, 'every diagnostics part');
    // uplink.maxMessageBytes 8 KiB here: the bundle comes in several parts, each within it.
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.map((p) => p.part)).toEqual(parts.map((_, i) => i + 1));
    for (const p of parts) expect(p).toMatchObject({ gatewayId: GW, communityCode: CC, kind: 'diagnostics', version: 5 });
    for (const raw of platform.diagnosticsRaw) expect(Buffer.byteLength(raw)).toBeLessThanOrEqual(app.config.uplink.maxMessageBytes);
    const text = parts.map((p) => p.data).join('');
    expect(Buffer.byteLength(text)).toBe(parts[0]!.bytes);
    const b = JSON.parse(text);
    expect(b.kind).toBe('community-gateway-diagnostics');
    expect(b.gateway.gatewayId).toBe(GW);
    expect(b.config.text).toContain('(secret kept on the box)');
    expect(b.logs.length).toBeGreaterThan(0);
    const kioskPoints = Object.keys(b.status.devices.find((d: { id: string }) => d.id === 'kiosk-1').points);
    for (const p of app.gateway.profileOf('kiosk-1')!.points.filter((x) => x.privacy !== 'public')) expect(kioskPoints).not.toContain(p.id);

    // Searched in the raw messages as they came over MQTT.
    const raw = platform.diagnosticsRaw.join('\n');
    const secretFile = [path.join(s.stateDir, 'site-secret'), path.join(s.dir, 'site-secret')].find((f) => fs.existsSync(f))!;
    const siteSecret = fs.readFileSync(secretFile, 'utf8').trim();
    const forbidden: Record<string, string> = {
      'uplink password': UPLINK_PASSWORD,
      'local broker password': BROKER_PASSWORD,
      'local broker password hash': app.config.localBroker.accounts[0]!.passwordHash,
      'site secret': siteSecret,
      'resident card number': String(cardNumber),
      'card pseudonym': String(pseudonym),
    };
    expect(siteSecret).toMatch(/^[0-9a-f]{64}$/);
    for (const [what, value] of Object.entries(forbidden)) {
      expect(raw.includes(value), `${what} in the diagnostics messages`).toBe(false);
      expect(text.includes(value), `${what} in the joined bundle`).toBe(false);
    }
    expect(audited(app, 'config-remote-command').find((e) => e.detail?.command === 'diagnostics')).toMatchObject({ user: `platform:${KEY_ID}`, detail: { version: 5 } });
  }, 60_000);

  it('restart: answered first, then the restart path runs (exit 75 in the CLI); without one: refused as unavailable', async () => {
    const s = await site();
    const platform = await Platform.connect(broker!.port);
    // No restart handler (not started by the CLI): refused, with the reason.
    const no = await platform.roundTrip(command(7, 'restart'));
    expect(no).toMatchObject({ version: 7, outcome: 'refused', reason: 'unavailable', command: 'restart' });
    expect(no.detail).toMatch(/cannot restart itself/);

    // The CLI's handler stops the daemon and exits 75 (remote-command.e2e.test.ts): here it
    // records the call and takes the uplink down, as the stop would.
    const order: string[] = [];
    const up = s.app.gateway.uplink!;
    const publish = up.publishResult.bind(up);
    up.publishResult = (m, sent) => publish(m, (err) => {
      order.push(`acked ${m.command ?? 'config'} ${m.outcome}`);
      sent?.(err);
    });
    s.app.restartHandler = () => {
      order.push('restart');
      void up.stop();
    };
    const r = await platform.roundTrip(command(8, 'restart'));
    expect(r).toMatchObject({ version: 8, outcome: 'applied', command: 'restart', detail: 'restarting' });
    await waitFor(() => order.includes('restart') || undefined, 10_000, 'the restart handler');
    await sleep(300);
    // The answer was acknowledged by the broker before the restart began, and it ran once.
    expect(order).toEqual(['acked restart applied', 'restart']);
    // Then the gateway went offline (its clean stop says so on the status topic).
    await waitFor(() => platform.statuses.find((m) => m.state === 'offline' && m.reason === 'shutdown'), 10_000, 'offline status');
    expect(audited(s.app, 'config-remote-command').find((e) => e.detail?.command === 'restart')).toMatchObject({ detail: { version: 8 } });
  }, 60_000);
});
