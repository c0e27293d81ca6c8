// Builds a Gateway in-process from a config object, on ephemeral ports, with a silent log.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { tmpDir } from './peers.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { parseSiteConfig } from '../../src/config/site-config.js';
import type { Profile } from '../../src/config/profile-schema.js';
import { Gateway } from '../../src/main.js';
import { App } from '../../src/app.js';
import type { GpioBackend } from '../../src/io/gpio/line.js';
import { silentLogger, type Logger, type LogRing } from '../../src/log.js';

export function baseConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    site: { communityCode: '330106001001', gatewayId: 'gw-test' },
    localBroker: { host: '127.0.0.1', port: 0, anonymous: 'loopback' },
    web: { host: '127.0.0.1', port: 0, https: false }, // the page's HTTPS has its own test (test/web/tls.test.ts)
    storage: { path: path.join(tmpDir('cgw-db-'), 'gateway.db') },
    uplink: { url: 'mqtt://127.0.0.1:1884', windowSeconds: 60 },
    buses: [],
    devices: [],
    simulator: { enabled: false },
    ...over,
  };
}

export function makeGateway(cfg: Record<string, unknown>, extraProfiles: Profile[] = [], log: Logger = silentLogger(), deps: ConstructorParameters<typeof Gateway>[3] = {}): Gateway {
  const profiles = loadProfiles(DRIVERS_DIR);
  for (const p of extraProfiles) profiles.set(p.id, p);
  const r = parseSiteConfig(stringify(cfg), profiles);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return new Gateway(r.config, profiles, log, deps);
}

/** A pino logger that keeps every line, for tests that check what a technician would read. */
export function capturingLogger(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void out.push(s) });
  return { log, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** The whole daemon (gateway + web page) on `cfg`, written to a config file in a temp dir. */
export function makeApp(cfg: Record<string, unknown>, log: Logger = silentLogger(), deps: { gpioBackend?: GpioBackend; stateDir?: string; logs?: LogRing } = {}): { app: App; file: string } {
  const profiles = loadProfiles(DRIVERS_DIR);
  const text = stringify(cfg);
  const r = parseSiteConfig(text, profiles);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  const file = path.join(tmpDir('cgw-cfg-'), 'site.yaml');
  fs.writeFileSync(file, text);
  const stateDir = path.dirname(path.resolve(r.config.storage.path));
  return { app: new App(r.config, text, { configFile: file, editableFile: file, profiles, log, stateDir, ...deps }), file };
}

/** A logged-in API client for the web page's JSON API (cookie and CSRF token kept). */
export class WebClient {
  cookie = '';
  csrf = '';
  constructor(readonly base: string) {}

  async call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
    const res = await fetch(this.base + url, {
      method,
      headers: {
        ...(this.cookie ? { cookie: this.cookie } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(method !== 'GET' && this.csrf ? { 'x-csrf-token': this.csrf } : {}),
        // A fresh nonce on every change, as the page sends (replay protection).
        ...(method !== 'GET' ? { 'x-request-nonce': crypto.randomBytes(18).toString('base64url') } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const setCookie = res.headers.get('set-cookie');
    if (setCookie) this.cookie = setCookie.split(';')[0]!;
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON (a page or an asset) */
    }
    if (parsed && typeof parsed === 'object' && typeof parsed.csrf === 'string') this.csrf = parsed.csrf;
    return { status: res.status, body: parsed, headers: res.headers };
  }

  get = (url: string) => this.call('GET', url);
  post = (url: string, body: unknown = {}, headers: Record<string, string> = {}) => this.call('POST', url, body, headers);
}
