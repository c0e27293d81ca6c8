// `community-gateway read`: one read of one point (or a raw register range) of a configured
// device, over its own short-lived link, for bench work on site. It does not go through a
// running daemon: a serial port the daemon holds is locked, and the message says so.
import type { Profile, RegisterKind } from '../config/profile-schema.js';
import type { SiteConfig } from '../config/site-schema.js';
import type { Logger } from '../log.js';
import { ModbusBus } from '../io/modbus/bus.js';
import { buildTransport } from '../io/modbus/transports.js';
import { pointSpan } from '../io/modbus/read-plan.js';
import { decodeRegisters } from '../io/modbus/codec.js';
import { checkRange, scaleValue } from '../pipeline/scale.js';
import { effectiveProfile } from '../privacy/policy.js';

export interface ReadTarget {
  device: string;
  point?: string;
  register?: RegisterKind;
  address?: number;
  count?: number;
}

export interface ReadOutcome {
  device: string;
  bus: string;
  unitId: number;
  register: RegisterKind;
  address: number;
  count: number;
  words: number[];
  ms: number;
  point?: { id: string; value: number | boolean | null; unit: string; quality: string; withheld?: string };
}

export class ReadError extends Error {}

export async function readPoint(config: SiteConfig, profiles: ReadonlyMap<string, Profile>, t: ReadTarget, log: Logger): Promise<ReadOutcome> {
  const d = config.devices.find((x) => x.id === t.device);
  if (!d) throw new ReadError(`no Modbus device "${t.device}" in the config (devices: ${config.devices.map((x) => x.id).join(', ') || 'none'})`);
  const busCfg = config.buses.find((b) => b.id === d.bus)!;
  const profile = effectiveProfile(profiles.get(d.profile)!, d.privacy);
  const p = t.point === undefined ? undefined : profile.points.find((x) => x.id === t.point);
  if (t.point !== undefined && !p) throw new ReadError(`profile ${profile.id} has no point "${t.point}" (${profile.points.map((x) => x.id).join(', ')})`);
  if (!p && (t.register === undefined || t.address === undefined)) throw new ReadError('give --point, or --register and --address (and --count)');
  const register = p?.register ?? t.register!;
  const address = p ? p.address : t.address!;
  const count = p ? pointSpan(p).to - p.address + 1 : (t.count ?? 1);
  const bus = new ModbusBus({ id: busCfg.id, timeoutMs: busCfg.timeoutMs, retries: busCfg.retries, reconnectMinMs: 60_000, reconnectMaxMs: 60_000 }, buildTransport(busCfg), log);
  await bus.start();
  try {
    if (bus.status !== 'up') {
      const locked = /lock/i.test(bus.lastError) ? ' (the running gateway holds this port: use the web page\'s try-read, or stop the service first)' : '';
      throw new ReadError(`cannot reach bus ${busCfg.id} (${bus.transport.endpoint}): ${bus.lastError}${locked}`);
    }
    const started = Date.now();
    const words = await bus.read({ unitId: d.unitId, register, start: address, count }, { retries: 0 });
    const out: ReadOutcome = { device: d.id, bus: busCfg.id, unitId: d.unitId, register, address, count, words, ms: Date.now() - started };
    if (p) {
      if (p.privacy !== 'public') {
        out.point = { id: p.id, value: null, unit: p.unit, quality: 'good', withheld: p.privacy };
        out.words = [];
      } else {
        const v = scaleValue(p, decodeRegisters(words, 0, p.type, p.order, p.bit));
        out.point = { id: p.id, value: v, unit: p.unit, quality: checkRange(p, v) };
      }
    }
    return out;
  } finally {
    await bus.stop();
  }
}

export function renderRead(o: ReadOutcome): string {
  const where = `${o.register} ${o.address}+${o.count}, unit ${o.unitId} on bus ${o.bus}, ${o.ms} ms`;
  const raw = o.words.length ? ` raw ${o.words.map((w) => `0x${w.toString(16).padStart(4, '0')}`).join(' ')}` : '';
  if (!o.point) return `${o.device}:${raw} [${where}]\n`;
  const value = o.point.withheld ? `(withheld: ${o.point.withheld} data)` : `${String(o.point.value)}${o.point.unit ? ` ${o.point.unit}` : ''} (${o.point.quality})`;
  return `${o.device}.${o.point.id} = ${value}${raw} [${where}]\n`;
}
