// Reads a site config: YAML -> zod schema -> cross-references against the device profiles.
// Returns every problem at once, so a technician fixes a file in one pass; a config with any
// problem is never partly applied.
import fs from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { DEFAULT_HOUSE_CODE_PATTERN, GpioSchema, houseCodeMatcher, SiteConfigSchema, type SiteConfig } from './site-schema.js';
import { gpioProfile } from './gpio-profile.js';
import { formatIssues, formatProblem, yamlErrors } from './issues.js';
import { loosens, PrivacyClass, type Profile } from './profile-schema.js';
import { facilityTypesOf } from './profiles.js';
import type { FacilityTypeSet } from './facility-types.js';

export type ConfigResult = { ok: true; config: SiteConfig; warnings: string[] } | { ok: false; errors: string[] };

/** How a serial bus path that does not exist on this machine counts. 'error' where the config
 * is about to run on this box (an apply from the page: the technician is there to fix it);
 * 'warn' by default, so check-config on a laptop (no /dev/ttyUSB0 there) stays usable, and a
 * daemon whose USB adapter is unplugged at boot still starts (its bus reports the missing port
 * and reconnects when it is plugged in). */
export interface ParseOptions {
  serialPaths?: 'error' | 'warn';
}

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly errors: string[],
  ) {
    super(`${source}: invalid configuration\n  ${errors.join('\n  ')}`);
  }
}

export function parseSiteConfig(text: string, profiles: ReadonlyMap<string, Profile>, opts: ParseOptions = {}): ConfigResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) return { ok: false, errors: yamlErrors(doc) };
  let raw: unknown;
  try {
    // maxAliasCount (the yaml default, 100) stops an alias bomb ("billion laughs") here.
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    return { ok: false, errors: [`the YAML cannot be expanded: ${(err as Error).message}`] };
  }
  // reportInput lets a wrong-type message say what was given ("got number 5").
  const parsed = SiteConfigSchema.safeParse(raw, { reportInput: true });
  // Cross-references are checked even when the schema fails, so one pass lists everything.
  const cross = crossCheck(raw).map(({ path, message }) => formatProblem(path, message, doc, lc));
  const refs = [...profileRefs(raw, profiles), ...facilityRefs(raw, facilityTypesOf(profiles)), ...alarmRefs(raw, profiles), ...privacyRefs(raw, profiles), ...uplinkFiles(raw), ...localBrokerFiles(raw)].map(({ path, message }) => formatProblem(path, message, doc, lc));
  const serial = serialPaths(raw).map(({ path, message }) => formatProblem(path, message, doc, lc));
  const strict = opts.serialPaths === 'error';
  const errors = [...(parsed.success ? [] : formatIssues(parsed.error, doc, lc)), ...cross, ...refs, ...(strict ? serial : [])];
  if (errors.length || !parsed.success) return { ok: false, errors: dedupe(errors) };
  return { ok: true, config: parsed.data, warnings: strict ? [] : serial };
}

function dedupe(errors: string[]): string[] {
  return [...new Set(errors)];
}

/** `onWarning` hears what is suspect but not refused (a serial path missing on this machine). */
export function loadSiteConfig(file: string, profiles: ReadonlyMap<string, Profile>, onWarning?: (w: string) => void): SiteConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read: ${(err as Error).message}`]);
  }
  const r = parseSiteConfig(text, profiles);
  if (!r.ok) throw new ConfigError(file, r.errors);
  for (const w of r.warnings) onWarning?.(w);
  return r.config;
}

interface Problem {
  path: (string | number)[];
  message: string;
}

type Loose = Record<string, unknown>;
const obj = (v: unknown): Loose | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Loose) : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

/** Checks across entries. Runs on the raw document (wrong-typed fields are skipped here,
 * the schema reports them), so these errors appear together with the schema's. */
function crossCheck(rawDoc: unknown): Problem[] {
  const out: Problem[] = [];
  const c = obj(rawDoc) ?? {};
  const busIds = new Map<string, number>();
  list(c.buses).forEach((rb, i) => {
    const b = obj(rb);
    const id = str(b?.id);
    if (id === undefined) return;
    if (busIds.has(id)) out.push({ path: ['buses', i, 'id'], message: `"${id}" is already used by buses[${busIds.get(id)}]` });
    else busIds.set(id, i);
    const lo = num(b?.reconnectMinMs);
    const hi = num(b?.reconnectMaxMs) ?? 30000;
    if (lo !== undefined && lo > hi) out.push({ path: ['buses', i, 'reconnectMinMs'], message: 'must not exceed reconnectMaxMs' });
  });
  const devIds = new Map<string, number>();
  const gpioIds = new Map<string, number>();
  const units = new Map<string, number>();
  list(c.devices).forEach((rd, i) => {
    const d = obj(rd);
    const id = str(d?.id);
    if (id !== undefined) {
      if (devIds.has(id)) out.push({ path: ['devices', i, 'id'], message: `"${id}" is already used by devices[${devIds.get(id)}]` });
      else devIds.set(id, i);
    }
    const bus = str(d?.bus);
    if (bus === undefined) return;
    if (!busIds.has(bus)) {
      out.push({ path: ['devices', i, 'bus'], message: `no bus "${bus}" (buses: ${[...busIds.keys()].join(', ') || 'none'})` });
      return;
    }
    const unit = num(d?.unitId);
    if (unit === undefined) return;
    const key = `${bus}/${unit}`;
    if (units.has(key)) out.push({ path: ['devices', i, 'unitId'], message: `unit ${unit} on bus "${bus}" is already devices[${units.get(key)}]` });
    else units.set(key, i);
  });
  const lines = new Map<string, number>();
  list(c.gpio).forEach((rg, i) => {
    const g = obj(rg);
    const id = str(g?.id);
    if (id !== undefined) {
      if (devIds.has(id)) out.push({ path: ['gpio', i, 'id'], message: `"${id}" is already used by devices[${devIds.get(id)}] (readings share one topic space)` });
      else if (gpioIds.has(id)) out.push({ path: ['gpio', i, 'id'], message: `"${id}" is already used by gpio[${gpioIds.get(id)}]` });
      else gpioIds.set(id, i);
    }
    const line = num(g?.line);
    if (line === undefined) return;
    const key = `${str(g?.chip) ?? ''}/${line}`;
    if (lines.has(key)) out.push({ path: ['gpio', i, 'line'], message: `line ${line} is already gpio[${lines.get(key)}]` });
    else lines.set(key, i);
  });
  const pw = num(obj(c.privacy)?.windowSeconds);
  const uw = num(obj(c.uplink)?.windowSeconds) ?? 60;
  if (pw !== undefined && Number.isInteger(uw) && uw >= 5 && uw <= 86400 && pw % uw !== 0) out.push({ path: ['privacy', 'windowSeconds'], message: `must be a multiple of uplink.windowSeconds (${uw})` });
  const port = (section: string, dflt: number) => num(obj(c[section])?.port) ?? (c[section] === undefined || obj(c[section]) ? dflt : undefined);
  const listeners: [string, number | undefined][] = [
    ['localBroker.port', port('localBroker', 1883)],
    ['web.port', port('web', 8080)],
  ];
  // The local broker's optional TLS and WebSocket listeners (defaults 8883 and 8083).
  const lb = obj(c.localBroker);
  for (const [key, dflt] of [['tls', 8883], ['websocket', 8083]] as const) {
    const l = obj(lb?.[key]);
    if (l) listeners.push([`localBroker.${key}.port`, l.port === undefined ? dflt : num(l.port)]);
  }
  if (obj(c.simulator)?.enabled === true) listeners.push(['simulator.port', port('simulator', 5020)]);
  for (let i = 0; i < listeners.length; i++) {
    for (let j = 0; j < i; j++) {
      const [pa, a] = listeners[i]!;
      const [pb, b] = listeners[j]!;
      if (a !== undefined && a !== 0 && a === b) out.push({ path: pa.split('.'), message: `port ${a} is also ${pb}` });
    }
  }
  return out;
}

/** A device's profile must exist in drivers/. A profile's `transports` is documentation:
 * RTU devices are often reached through a Modbus TCP-to-RTU gateway, so a TCP bus may carry
 * any profile. */
function profileRefs(rawDoc: unknown, profiles: ReadonlyMap<string, Profile>): Problem[] {
  const out: Problem[] = [];
  list(obj(rawDoc)?.devices).forEach((rd, i) => {
    const p = str(obj(rd)?.profile);
    if (p !== undefined && p !== '' && !profiles.has(p)) {
      out.push({ path: ['devices', i, 'profile'], message: `no profile "${p}" in drivers/ (${[...profiles.keys()].sort().join(', ')})` });
    }
  });
  return out;
}

/** Facilities name known types, once each; a facility id that is a type id is of that type
 * (else a device naming it would be ambiguous); house codes match site.houseCodePattern; every
 * device's `facility` is a listed facility or a type. */
function facilityRefs(rawDoc: unknown, types: FacilityTypeSet): Problem[] {
  const out: Problem[] = [];
  const c = obj(rawDoc) ?? {};
  const known = types.ids().join(', ');
  const given = str(obj(c.site)?.houseCodePattern);
  // A pattern the schema refuses (not a regular expression, or a slow one) checks nothing here.
  const pattern = houseCodeMatcher(given);
  const ids = new Map<string, number>();
  list(c.facilities).forEach((rf, i) => {
    const f = obj(rf);
    const id = str(f?.id);
    const type = str(f?.type);
    if (type !== undefined && type !== '' && !types.has(type)) out.push({ path: ['facilities', i, 'type'], message: `no facility type "${type}" (${known})` });
    if (id !== undefined) {
      if (ids.has(id)) out.push({ path: ['facilities', i, 'id'], message: `"${id}" is already used by facilities[${ids.get(id)}]` });
      else ids.set(id, i);
      if (types.has(id) && type !== undefined && type !== id) out.push({ path: ['facilities', i, 'id'], message: `"${id}" is the id of a facility type: a facility with this id must be of type "${id}" (or give it another id)` });
    }
    const house = str(f?.houseCode);
    if (house !== undefined && house !== '' && pattern && !pattern.test(house)) {
      const message = given === undefined ? `"${house}" does not match the default house code pattern ${DEFAULT_HOUSE_CODE_PATTERN} (set site.houseCodePattern to the province's format)` : `"${house}" does not match site.houseCodePattern ${given}`;
      out.push({ path: ['facilities', i, 'houseCode'], message });
    }
  });
  for (const section of ['devices', 'gpio'] as const) {
    list(c[section]).forEach((rd, i) => {
      const ref = str(obj(rd)?.facility);
      if (ref === undefined || ref === '' || ids.has(ref) || types.has(ref)) return;
      out.push({ path: [section, i, 'facility'], message: `no facility "${ref}": name a facility of facilities (${[...ids.keys()].join(', ') || 'none listed'}) or a facility type (${known})` });
    });
  }
  return out;
}

/** Alarm rules must name a configured device and a point of its profile, of the right type. */
function alarmRefs(rawDoc: unknown, profiles: ReadonlyMap<string, Profile>): Problem[] {
  const out: Problem[] = [];
  const c = obj(rawDoc) ?? {};
  const devices = new Map<string, string | undefined>();
  const gpioProfiles = new Map<string, Profile>();
  for (const d of list(c.devices)) {
    const id = str(obj(d)?.id);
    if (id) devices.set(id, str(obj(d)?.profile));
  }
  for (const g of list(c.gpio)) {
    const parsed = GpioSchema.safeParse(g);
    if (parsed.success) {
      devices.set(parsed.data.id, undefined);
      gpioProfiles.set(parsed.data.id, gpioProfile(parsed.data));
    }
  }
  const ids = new Set<string>();
  list(c.alarms).forEach((ra, i) => {
    const a = obj(ra);
    const id = str(a?.id);
    if (id !== undefined) {
      if (ids.has(id)) out.push({ path: ['alarms', i, 'id'], message: `"${id}" is used twice` });
      ids.add(id);
    }
    const device = str(a?.device);
    const point = str(a?.point);
    if (device === undefined) return;
    if (!devices.has(device)) {
      out.push({ path: ['alarms', i, 'device'], message: `no device "${device}"` });
      return;
    }
    const profile = gpioProfiles.get(device) ?? profiles.get(devices.get(device) ?? '');
    if (!profile || point === undefined) return;
    const p = profile.points.find((x) => x.id === point);
    if (!p) {
      out.push({ path: ['alarms', i, 'point'], message: `profile "${profile.id}" has no point "${point}" (${profile.points.map((x) => x.id).join(', ')})` });
      return;
    }
    const boolean = p.type === 'bool' || p.type === 'bit';
    if (boolean && a?.equals === undefined) out.push({ path: ['alarms', i], message: `"${point}" is on/off: use equals: true|false` });
    if (!boolean && a?.equals !== undefined) out.push({ path: ['alarms', i, 'equals'], message: `"${point}" is numeric: use above or below` });
    if (p.privacy !== 'public') out.push({ path: ['alarms', i, 'point'], message: `"${point}" is ${p.privacy} data: alarms on it would reveal a person` });
  });
  return out;
}

/** An RTU bus' serial device must exist (checked, never opened: the running bus may hold it). */
function serialPaths(rawDoc: unknown): Problem[] {
  const out: Problem[] = [];
  list(obj(rawDoc)?.buses).forEach((rb, i) => {
    const b = obj(rb);
    const p = str(b?.path);
    if (b?.type !== 'modbus-rtu' || p === undefined || !p.startsWith('/')) return;
    if (!fs.existsSync(p)) out.push({ path: ['buses', i, 'path'], message: `serial device not found: ${p} (see the serial ports this box has: /dev/serial/by-id/...)` });
  });
  return out;
}

/** TLS files must exist (relative paths are from the working directory) and come in pairs. */
function uplinkFiles(rawDoc: unknown): Problem[] {
  const out: Problem[] = [];
  const u = obj(obj(rawDoc)?.uplink);
  if (!u) return out;
  const tls = str(u.url)?.startsWith('mqtts://') ?? false;
  for (const key of ['caFile', 'certFile', 'keyFile']) {
    const f = str(u[key]);
    if (f === undefined) continue;
    if (!tls) out.push({ path: ['uplink', key], message: 'only used with an mqtts:// url' });
    else if (!fs.existsSync(f)) out.push({ path: ['uplink', key], message: `file not found: ${f}` });
  }
  if ((u.certFile === undefined) !== (u.keyFile === undefined)) {
    out.push({ path: ['uplink', u.certFile === undefined ? 'certFile' : 'keyFile'], message: 'certFile and keyFile go together (mutual TLS)' });
  }
  return out;
}

/** The TLS files of the local broker and of the page must exist (relative paths are from the working directory). */
function localBrokerFiles(rawDoc: unknown): Problem[] {
  const out: Problem[] = [];
  // The page's own certificate too: a missing one applied from the page would take the page
  // down at its rebind.
  for (const section of ['localBroker', 'web']) {
    const t = obj(obj(obj(rawDoc)?.[section])?.tls);
    if (!t) continue;
    for (const key of ['certFile', 'keyFile', 'caFile']) {
      const f = str(t[key]);
      if (f !== undefined && f !== '' && !fs.existsSync(f)) out.push({ path: [section, 'tls', key], message: `file not found: ${f}` });
    }
  }
  return out;
}

/** A device's privacy overrides must name points of its profile. */
function privacyRefs(rawDoc: unknown, profiles: ReadonlyMap<string, Profile>): Problem[] {
  const out: Problem[] = [];
  list(obj(rawDoc)?.devices).forEach((rd, i) => {
    const d = obj(rd);
    const overrides = obj(d?.privacy);
    const profile = profiles.get(str(d?.profile) ?? '');
    // dp mode clamps each value to its point's range before a noisy sum (dp-release.ts).
    if (profile?.events && obj(obj(rawDoc)?.privacy)?.mode === 'dp') {
      for (const v of profile.events.values) {
        if (!profile.points.find((x) => x.id === v)?.range) {
          out.push({ path: ['devices', i, 'profile'], message: `profile "${profile.id}" point "${v}" has no range: privacy.mode dp clamps every personal value to its range, so each one needs one` });
        }
      }
    }
    if (!overrides || !profile) return;
    for (const [point, cls] of Object.entries(overrides)) {
      const p = profile.points.find((x) => x.id === point);
      if (!p) out.push({ path: ['devices', i, 'privacy', point], message: `profile "${profile.id}" has no point "${point}"` });
      // Whatever path the config comes by (file, web page, remote): a site may only tighten.
      else if (PrivacyClass.safeParse(cls).success && loosens(p.privacy, cls as PrivacyClass)) {
        out.push({
          path: ['devices', i, 'privacy', point],
          message: `"${cls}" would loosen ${point}, which profile "${profile.id}" classes as ${p.privacy}: a site may only tighten a class (public -> personal -> identifier)`,
        });
      }
    }
  });
  return out;
}
