// What the page shows, built from the running gateway's state (read only): the overview and
// one device's details. Personal and identifier values never appear (publicReading).
import { identify, type Coded } from '../messages/identify.js';
import type { Gateway } from '../main.js';
import type { DrainState } from './drain-tracker.js';
import { publicReading } from './public-reading.js';

function points(g: Gateway, device: string): Record<string, unknown> {
  return Object.fromEntries([...(g.state.last.get(device)?.values() ?? [])].map((r) => [r.point, publicReading(r)]));
}

export function overview(g: Gateway, drain: DrainState): unknown {
  const c = g.config;
  const out = g.outbox?.stats();
  const modbus = g.pollers.map((p) => ({
    id: p.device.id,
    name: c.devices.find((d) => d.id === p.device.id)?.name ?? null,
    facility: p.device.facility,
    kind: 'modbus',
    profile: p.device.profile.id,
    online: p.stats.online,
    lastSuccess: p.stats.lastSuccess,
    lastError: p.stats.lastError,
    lastErrorMsg: coded(p.stats.lastError),
    points: points(g, p.device.id),
    pointNames: Object.fromEntries(p.device.profile.points.map((x) => [x.id, x.name])),
  }));
  const facilities = g.facilities();
  const placed = facilities.byDevice;
  const gpio = g.gpio.map(({ cfg, input }) => ({
    id: cfg.id,
    name: cfg.name ?? null,
    facility: placed.get(cfg.id)?.type ?? cfg.facility,
    kind: 'gpio',
    profile: `gpio-${cfg.kind}`,
    online: input.stats.mode === 'interrupt' || input.stats.mode === 'polling',
    lastSuccess: input.stats.lastChange,
    lastError: input.stats.lastError,
    lastErrorMsg: coded(input.stats.lastError),
    points: points(g, cfg.id),
    pointNames: Object.fromEntries((g.profileOf(cfg.id)?.points ?? []).map((x) => [x.id, x.name])),
  }));
  // Offline first, in each facility and in the overview's own list: what needs the
  // technician is on top. `since` is the last good answer (null: none since the start).
  const devices = [...modbus, ...gpio].sort((a, b) => Number(a.online !== false) - Number(b.online !== false));
  const offline = devices
    .filter((d) => d.online === false)
    .map((d) => ({ id: d.id, name: d.name, facility: d.facility, kind: d.kind, reason: d.lastError || null, reasonMsg: d.lastErrorMsg, since: d.lastSuccess }))
    .sort((a, b) => (a.since ?? 0) - (b.since ?? 0));
  return {
    site: c.site,
    uplink: g.uplink && { state: g.uplink.state, url: c.uplink.url, connectedSince: g.uplink.connectedSince, lastError: g.uplink.lastError, lastErrorMsg: coded(g.uplink.lastError) },
    backlog: out ? { rows: out.rows, bytes: out.bytes, oldestTs: out.oldestTs, shedRows: out.shedRows, ...drain } : null,
    // The box's own time next to the technician's phone shows a clock that is off at a glance.
    clock: { now: Date.now(), ...g.clockState() },
    alarms: g.alarms?.active() ?? [],
    offline: { count: offline.length, of: devices.length, devices: offline },
    ...facilityGroups(facilities, devices),
  };
}

/** One group per facility (listed ones even without devices: the technician sees what is still
 * to be wired), with the facility types' names for the page. */
function facilityGroups<D extends { id: string }>(f: ReturnType<Gateway['facilities']>, devices: D[]) {
  return {
    facilityTypes: f.types.map((t) => ({ id: t.id, code: t.code, name: t.name })),
    facilities: f.list
      .map((x) => ({
        id: x.facilityId,
        type: x.type,
        name: x.name ?? null,
        houseCode: x.houseCode ?? null,
        listed: x.listed,
        devices: devices.filter((d) => f.byDevice.get(d.id)?.facilityId === x.facilityId),
      }))
      .filter((x) => x.devices.length > 0 || x.listed)
      .map(({ listed: _listed, ...x }) => x),
  };
}

/** One device's page; null if there is no such device. */
export function deviceDetail(g: Gateway, id: string): unknown {
  const profile = g.profileOf(id);
  if (!profile) return null;
  const poller = g.pollers.find((p) => p.device.id === id);
  const gpio = g.gpio.find((x) => x.cfg.id === id);
  const cfg = g.config.devices.find((d) => d.id === id);
  const bus = cfg ? g.buses.get(cfg.bus) : undefined;
  const facilities = g.facilities();
  const place = facilities.byDevice.get(id);
  return {
    id,
    kind: poller ? 'modbus' : 'gpio',
    facility: place?.type ?? poller?.device.facility ?? null,
    facilityId: place?.facilityId ?? null,
    facilityName: (place && facilities.types.find((t) => t.id === place.type)?.name) ?? null,
    name: cfg?.name ?? gpio?.cfg.name ?? null,
    unitId: cfg?.unitId ?? null,
    pollMs: cfg?.pollMs ?? null,
    profile: { id: profile.id, manufacturer: profile.manufacturer, model: profile.model, name: profile.name },
    points: profile.points.map((p) => ({
      id: p.id,
      name: p.name,
      unit: p.unit,
      kind: p.kind,
      privacy: p.privacy,
      type: p.type,
      register: p.register,
      address: p.address,
      writable: p.writable && p.privacy === 'public',
    })),
    values: points(g, id),
    online: poller ? poller.stats.online : gpio!.input.stats.mode !== 'unavailable',
    bus: bus ? { id: bus.opts.id, endpoint: bus.transport.endpoint, state: bus.status, lastError: bus.lastError, lastErrorMsg: coded(bus.lastError), queue: bus.queueLength, ...bus.transport.stats } : null,
    stats: poller
      ? { polls: poller.stats.polls, failedPolls: poller.stats.failedPolls, requests: poller.stats.requests, requestsPerScan: poller.readPlan.length, lastSuccess: poller.stats.lastSuccess, lastError: poller.stats.lastError, lastErrorMsg: coded(poller.stats.lastError), ...poller.stats.errors }
      : { ...gpio!.input.stats, lastErrorMsg: coded(gpio!.input.stats.lastError) },
  };
}

/** A state's error text with its catalogue code, for the page's language (null when none). */
function coded(text: string | null | undefined): Coded | null {
  return text ? identify(text) : null;
}
