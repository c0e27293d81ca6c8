// Bus scan: which unit ids answer on a bus, which device profiles fit each, and what the
// device says it is (Read Device Identification). Every request goes through the bus' own
// queue at low priority (bus.ts: only when no poll waits or is on the link, one at a time),
// so a configured device's poll waits for at most one scan request. Read-only: a scan never
// writes. Here, outside io/, because it takes the pipeline's scale and range check.
import type { Point, Profile } from '../config/profile-schema.js';
import type { BusConfig } from '../config/site-schema.js';
import { profileOrigin, type ProfileSource } from '../config/profiles.js';
import type { ModbusBus } from '../io/modbus/bus.js';
import { DEVICE_ID_OBJECTS, type DeviceIdPart } from '../io/modbus/device-id.js';
import { ModbusError, ModbusExceptionError, ModbusFrameError, ModbusLinkError, ModbusTimeoutError } from '../io/modbus/errors.js';
import { decodeRegisters } from '../io/modbus/codec.js';
import { planReads, type ReadBlock } from '../io/modbus/read-plan.js';
import { checkRange, scaleValue } from '../pipeline/scale.js';
import { monoNow } from '../time/monotonic.js';

/** Answer timeout of a probe, before the RTU frame time. 247 units at 9600 baud must fit in
 * about a minute: a silent unit costs this, plus its request and the reply it would have
 * sent on the wire (~16 ms), plus the RTU transport's quiet after a timeout (50 ms), so about
 * 170 ms and 42 s for 247 silent ids. Devices on a LAN, and RS-485 sensors asked for one
 * register, answer well within 100 ms; a slower one is found with a longer --timeout. */
export const DEFAULT_PROBE_TIMEOUT_MS = 100;
/** Probe timeouts a technician may choose (ms), on the command line and in the API. */
export const PROBE_TIMEOUT_RANGE = { min: 20, max: 5000 } as const;
/** Read Device Identification replies followed before giving up on a stream that never ends. */
const MAX_ID_PARTS = 4;
/** Largest RTU frame (Modbus over Serial Line v1.02, 2.5.1): a device-id reply may fill it. */
const RTU_MAX_FRAME = 256;

export interface ScanOptions {
  /** Unit ids to probe, in order (units.ts). */
  units: readonly number[];
  /** Answer timeout per request, after the request and the expected reply have had their
   * time on the wire (RTU; see charMs). */
  timeoutMs: number;
  /** One character on the line in ms (RTU, lineCharMs), 0 on TCP: each request's timeout
   * grows by its reply's time on the wire, so a 125-register read at 9600 baud is not cut. */
  charMs: number;
  /** Every loaded profile; the Modbus ones are tried on each unit that answers. */
  profiles: ReadonlyMap<string, Profile>;
  /** Configured devices of the bus by unit id: a unit found is marked with its device. */
  configured?: ReadonlyMap<number, string>;
  onProgress?: (p: ScanProgress) => void;
  signal?: AbortSignal;
}

export interface ScanProgress {
  done: number;
  total: number;
  found: number;
}

export interface ProfileFit {
  id: string;
  /** Shipped in drivers/ or the site's own (when the profiles came from loadProfileSet). */
  source?: ProfileSource;
  fits: boolean;
  /** Why not: the first failing read or point. */
  reason?: string;
  points: number;
  /** Points whose value was checked against a range (the rest only had to read). */
  rangeChecked: number;
}

export interface ScannedUnit {
  unitId: number;
  /** The configured device on this unit id, if any. */
  device?: string;
  /** 'damaged': something answered, but not with a valid frame (wrong baud or parity, noise,
   * two devices on one id). */
  answered: 'yes' | 'damaged';
  /** What the probe got: "values", a Modbus exception, or the damage. */
  reply: string;
  /** Read Device Identification objects by name (vendorName, productCode, revision, ...). */
  identification?: Record<string, string>;
  /** Set when identification failed other than by "not supported" (exception 1 or 2). */
  identificationError?: string;
  /** Best first: fitting profiles whose every point passed a range check, then by the
   * number of points checked, then by points read. */
  profiles: ProfileFit[];
}

export interface ScanResult {
  units: ScannedUnit[];
  /** Unit ids asked, of `total`. */
  probed: number;
  total: number;
  elapsedMs: number;
  /** Modbus requests the scan sent (never retried). */
  requests: number;
  /** Why the scan ended early: "cancelled", or the link going down; absent when complete. */
  stopped?: string;
}

/** One character on the line in ms (start, data, parity and stop bits), as the RTU transport
 * counts it; 0 on Modbus TCP. */
export function lineCharMs(b: BusConfig): number {
  if (b.type !== 'modbus-rtu') return 0;
  return ((1 + b.dataBits + (b.parity === 'none' ? 0 : 1) + b.stopBits) * 1000) / b.baudRate;
}

/** The profiles a scan tries: Modbus ones, by id (GPIO inputs are not on a bus). */
export function scanProfiles(profiles: ReadonlyMap<string, Profile>): Profile[] {
  return [...profiles.values()].filter((p) => !p.id.startsWith('gpio-') && p.transports.some((t) => t !== 'gpio')).sort((a, b) => a.id.localeCompare(b.id));
}

class Cancelled extends Error {}

type ScanBus = Pick<ModbusBus, 'read' | 'identify'>;
type Reader = (unitId: number, b: Pick<ReadBlock, 'register' | 'start' | 'count'>) => Promise<number[]>;

export async function scanBus(bus: ScanBus, opts: ScanOptions): Promise<ScanResult> {
  const started = monoNow();
  const profiles = scanProfiles(opts.profiles);
  const units: ScannedUnit[] = [];
  let requests = 0;
  let probed = 0;
  let stopped: string | undefined;
  /** Answer time for a reply of `bytes` (RTU: plus its time on the wire). */
  const timeoutFor = (bytes: number) => opts.timeoutMs + Math.ceil(bytes * opts.charMs);
  const read: Reader = (unitId, b) => {
    if (opts.signal?.aborted) throw new Cancelled();
    requests++;
    return bus.read({ unitId, register: b.register, start: b.start, count: b.count }, { priority: 'low', retries: 0, timeoutMs: timeoutFor(replyBytes(b)) });
  };
  const identify = (unitId: number, objectId: number) => {
    if (opts.signal?.aborted) throw new Cancelled();
    requests++;
    return bus.identify(unitId, objectId, { priority: 'low', retries: 0, timeoutMs: timeoutFor(RTU_MAX_FRAME) });
  };

  try {
    for (const unitId of opts.units) {
      const probe = await probeUnit(unitId, read);
      probed++;
      if (probe) {
        const device = opts.configured?.get(unitId);
        const unit: ScannedUnit = { unitId, ...(device ? { device } : {}), ...probe, profiles: [] };
        units.push(unit);
        Object.assign(unit, await identification(unitId, identify));
        for (const p of profiles) {
          const source = profileOrigin(opts.profiles, p.id)?.source;
          unit.profiles.push(await profileFit(unitId, p, source, read));
        }
        unit.profiles.sort(byEvidence);
      }
      opts.onProgress?.({ done: probed, total: opts.units.length, found: units.length });
    }
  } catch (err) {
    // A cancel during a request ends it with whatever the bus says (a stop fails it).
    if (err instanceof Cancelled || (opts.signal?.aborted && err instanceof ModbusError)) stopped = 'cancelled';
    else if (err instanceof ModbusLinkError) stopped = `the bus went down: ${err.message}`;
    else throw err;
    for (const u of units) u.profiles.sort(byEvidence);
  }
  return { units, probed, total: opts.units.length, elapsedMs: Math.round(monoNow() - started), requests, ...(stopped ? { stopped } : {}) };
}

/** Holding register 0, one word: any reply, values or an exception, means a device is there.
 * Exceptions 0x0A/0x0B are a TCP gateway saying nobody answered behind it (silent). */
async function probeUnit(unitId: number, read: Reader): Promise<Pick<ScannedUnit, 'answered' | 'reply'> | null> {
  try {
    await read(unitId, { register: 'holding', start: 0, count: 1 });
    return { answered: 'yes', reply: 'values' };
  } catch (err) {
    if (err instanceof ModbusExceptionError) return err.deviceSilent ? null : { answered: 'yes', reply: err.message };
    if (err instanceof ModbusTimeoutError) return null;
    if (err instanceof ModbusFrameError) return { answered: 'damaged', reply: err.message };
    throw err;
  }
}

/** Read Device Identification (FC 43/14), following the stream a few parts at most.
 * Exception 1 ILLEGAL FUNCTION or 2 ILLEGAL DATA ADDRESS: the device does not support it. */
async function identification(unitId: number, identify: (unitId: number, objectId: number) => Promise<DeviceIdPart>): Promise<Pick<ScannedUnit, 'identification' | 'identificationError'>> {
  const values: Record<string, string> = {};
  let objectId = 0;
  let error: string | undefined;
  for (let part = 0; part < MAX_ID_PARTS; part++) {
    let r: DeviceIdPart;
    try {
      r = await identify(unitId, objectId);
    } catch (err) {
      if (err instanceof ModbusLinkError || !(err instanceof ModbusError)) throw err;
      if (!(err instanceof ModbusExceptionError && (err.code === 1 || err.code === 2))) error = err.message;
      break;
    }
    for (const o of r.objects) values[DEVICE_ID_OBJECTS[o.id] ?? `object${o.id}`] = o.value;
    // A stream must move forward (6.21: "next object id"); one that does not is not followed.
    if (r.next === null || r.next <= objectId) break;
    objectId = r.next;
  }
  return { ...(Object.keys(values).length ? { identification: values } : {}), ...(error ? { identificationError: error } : {}) };
}

/** A profile fits when every read of its plan answers without exception and every decoded,
 * scaled value is in its point's range. Read with maxGap 0: only the registers the profile
 * names, since an unnamed register between two points may be one the device refuses. Stops
 * at the first failure (fewer requests on a unit that is something else). */
async function profileFit(unitId: number, profile: Profile, source: ProfileSource | undefined, read: Reader): Promise<ProfileFit> {
  const base = { id: profile.id, ...(source ? { source } : {}), points: profile.points.length, rangeChecked: profile.points.filter(rangeCheckable).length };
  for (const b of planReads(profile.points, profile.holes, { maxGap: 0, maxRegisters: profile.maxRegistersPerRead })) {
    let values: number[];
    try {
      values = await read(unitId, b);
    } catch (err) {
      if (err instanceof ModbusLinkError || !(err instanceof ModbusError)) throw err;
      const what = err instanceof ModbusFrameError ? `damaged reply (${err.message})` : err.message;
      const ids = b.points.map((p) => p.id);
      const named = ids.length > 3 ? `${ids.slice(0, 2).join(', ')} and ${ids.length - 2} more` : ids.join(', ');
      return { ...base, fits: false, reason: `${what} reading ${b.register} ${b.start}..${b.start + b.count - 1} (${named})` };
    }
    for (const p of b.points) {
      const why = outOfRange(p, values, b.start);
      if (why) return { ...base, fits: false, reason: why };
    }
  }
  return { ...base, fits: true };
}

function rangeCheckable(p: Point): boolean {
  return p.range !== undefined && p.type !== 'bool' && p.type !== 'bit';
}

/** Why the point's value rules the profile out, or null. A personal or identifier value is
 * never shown: the result reaches the page. */
function outOfRange(p: Point, values: number[], start: number): string | null {
  const v = scaleValue(p, decodeRegisters(values, p.address - start, p.type, p.order, p.bit));
  if (checkRange(p, v) === 'good') return null;
  const shown = p.privacy === 'public' ? `${String(v)}${p.unit ? ` ${p.unit}` : ''}` : `a ${p.privacy} value (withheld)`;
  return p.range ? `${p.id} reads ${shown}, outside ${p.range.min}..${p.range.max}` : `${p.id} reads ${shown}, not a number`;
}

/** RTU reply length of a read: address, function, byte count, data, CRC (Modbus over Serial
 * Line v1.02, 2.5.1; data as in the Application Protocol 6.1-6.4). */
function replyBytes(b: Pick<ReadBlock, 'register' | 'count'>): number {
  const bits = b.register === 'coil' || b.register === 'discrete';
  return 5 + (bits ? Math.ceil(b.count / 8) : 2 * b.count);
}

function byEvidence(a: ProfileFit, b: ProfileFit): number {
  const full = (f: ProfileFit) => f.fits && f.rangeChecked === f.points;
  return Number(b.fits) - Number(a.fits) || Number(full(b)) - Number(full(a)) || b.rangeChecked - a.rangeChecked || b.points - a.points || a.id.localeCompare(b.id);
}
