// Builds a Gateway in-process from a config object, on ephemeral ports, with a silent log.
import path from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { tmpDir } from './peers.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { parseSiteConfig } from '../../src/config/site-config.js';
import type { Profile } from '../../src/config/profile-schema.js';
import { Gateway } from '../../src/main.js';
import { silentLogger, type Logger } from '../../src/log.js';

export function baseConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    site: { communityCode: '330106001001', gatewayId: 'gw-test' },
    localBroker: { host: '127.0.0.1', port: 0, anonymous: 'loopback' },
    web: { host: '127.0.0.1', port: 0 },
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
