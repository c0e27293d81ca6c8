// Reads a site config: YAML -> zod schema -> cross-references against the device profiles.
// Returns every problem at once, so a technician fixes a file in one pass; a config with any
// problem is never partly applied.
import fs from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { SiteConfigSchema, type SiteConfig } from './site-schema.js';
import { formatIssues, formatPath, lineOf } from './issues.js';
import type { Profile } from './profile-schema.js';

export type ConfigResult = { ok: true; config: SiteConfig } | { ok: false; errors: string[] };

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly errors: string[],
  ) {
    super(`${source}: invalid configuration\n  ${errors.join('\n  ')}`);
  }
}

export function parseSiteConfig(text: string, profiles: ReadonlyMap<string, Profile>): ConfigResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    return { ok: false, errors: doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}${e.linePos ? ` (line ${e.linePos[0].line})` : ''}`) };
  }
  const raw = doc.toJS() ?? {};
  const parsed = SiteConfigSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, errors: formatIssues(parsed.error, doc, lc) };
  const errors = crossCheck(parsed.data, profiles).map(({ path, message }) => {
    const line = lineOf(doc, lc, path);
    return `${formatPath(path)}: ${message}${line ? ` (line ${line})` : ''}`;
  });
  return errors.length ? { ok: false, errors } : { ok: true, config: parsed.data };
}

export function loadSiteConfig(file: string, profiles: ReadonlyMap<string, Profile>): SiteConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read: ${(err as Error).message}`]);
  }
  const r = parseSiteConfig(text, profiles);
  if (!r.ok) throw new ConfigError(file, r.errors);
  return r.config;
}

interface Problem {
  path: (string | number)[];
  message: string;
}

function crossCheck(c: SiteConfig, profiles: ReadonlyMap<string, Profile>): Problem[] {
  const out: Problem[] = [];
  const busIds = new Map<string, number>();
  c.buses.forEach((b, i) => {
    if (busIds.has(b.id)) out.push({ path: ['buses', i, 'id'], message: `"${b.id}" is already used by buses[${busIds.get(b.id)}]` });
    else busIds.set(b.id, i);
    if (b.reconnectMinMs > b.reconnectMaxMs) out.push({ path: ['buses', i, 'reconnectMinMs'], message: 'must not exceed reconnectMaxMs' });
  });
  const devIds = new Map<string, number>();
  const units = new Map<string, number>();
  c.devices.forEach((d, i) => {
    if (devIds.has(d.id)) out.push({ path: ['devices', i, 'id'], message: `"${d.id}" is already used by devices[${devIds.get(d.id)}]` });
    else devIds.set(d.id, i);
    const bi = busIds.get(d.bus);
    if (bi === undefined) {
      out.push({ path: ['devices', i, 'bus'], message: `no bus "${d.bus}" (buses: ${[...busIds.keys()].join(', ') || 'none'})` });
    } else {
      const key = `${d.bus}/${d.unitId}`;
      if (units.has(key)) out.push({ path: ['devices', i, 'unitId'], message: `unit ${d.unitId} on bus "${d.bus}" is already devices[${units.get(key)}]` });
      else units.set(key, i);
    }
    // A profile's `transports` is documentation: RTU devices are often reached through a
    // Modbus TCP-to-RTU gateway, so a TCP bus may carry any profile.
    if (!profiles.has(d.profile)) {
      out.push({ path: ['devices', i, 'profile'], message: `no profile "${d.profile}" in drivers/ (${[...profiles.keys()].sort().join(', ')})` });
    }
  });
  const listeners: [string, string, number][] = [
    ['localBroker.port', c.localBroker.host, c.localBroker.port],
    ['web.port', c.web.host, c.web.port],
  ];
  if (c.simulator.enabled) listeners.push(['simulator.port', c.simulator.host, c.simulator.port]);
  for (let i = 0; i < listeners.length; i++) {
    for (let j = 0; j < i; j++) {
      const [pa, , a] = listeners[i]!;
      const [pb, , b] = listeners[j]!;
      if (a !== 0 && a === b) out.push({ path: pa.split('.'), message: `port ${a} is also ${pb}` });
    }
  }
  return out;
}
