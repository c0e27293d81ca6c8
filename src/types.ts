// Shared data shapes that flow between the parts (io -> pipeline -> broker / aggregate).
import type { PrivacyClass, PointKind } from './config/profile-schema.js';

/** A facility type id (drivers/facility-types.yaml): the local topic level and the `facility`
 * of uplink items. */
export type Facility = string;

/** Where a device stands: the facility (site config `facilities`) and its building. Uplink
 * items carry both beside the type (docs/UPLINK.md). */
export interface Placement {
  /** The facility's id; the type id for a device whose config names a type, not a facility. */
  facilityId: string;
  /** The building's unified house code, when the config gives one. */
  houseCode?: string;
}

/** The placement of a point or personal item, the bulk of what the box writes and sends: the
 * facility id only where it is not the type id (absent means the type id, as from gateways
 * before facilities), no house code (the facility items, alarms and the inventory carry it). */
export function pointPlacement(facility: Facility, p: Partial<Placement> | undefined): { facilityId?: string } {
  return p?.facilityId && p.facilityId !== facility ? { facilityId: p.facilityId } : {};
}

/** The placement fields of an uplink item body (houseCode left out when there is none). */
export function placementFields(p: Partial<Placement> | undefined): Partial<Placement> {
  if (!p?.facilityId) return {};
  return p.houseCode ? { facilityId: p.facilityId, houseCode: p.houseCode } : { facilityId: p.facilityId };
}

/** good: decoded and inside the profile's range. out_of_range: decoded but outside the sane
 * range. exception: the device answered with a Modbus exception. timeout: no answer in time.
 * comm_error: the link is down or the frame was malformed. */
export type Quality = 'good' | 'out_of_range' | 'exception' | 'timeout' | 'comm_error';

export interface Reading {
  device: string;
  facility: Facility;
  point: string;
  ts: number;
  /** Identifier points carry their pseudonym (a string), never the clear value. */
  value: number | boolean | string | null;
  quality: Quality;
  unit: string;
  privacy: PrivacyClass;
  kind: PointKind;
  /** Why the quality is not good (exception code and name, timeout), for diagnosis. */
  detail?: string;
  /** `device \0 point`, made once per point by the pipeline so that the listeners' maps of
   * every reading look up one string instead of each building its own (seriesKey()). */
  key?: string;
}

/** The key of a reading's series: device and point, joined by a character neither may hold. */
export function seriesKey(r: { device: string; point: string; key?: string }): string {
  return r.key ?? `${r.device}\u0000${r.point}`;
}

export interface DeviceStatus {
  device: string;
  facility: Facility;
  online: boolean;
  reason?: string;
}

/** One completed scan of a device (every read block answered or failed), or one change of a
 * GPIO input. */
export interface ScanDone {
  device: string;
  facility: Facility;
  ts: number;
}
