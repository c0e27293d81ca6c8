// The facility register (the gateway's part of the province's facility database): one row per
// device and one per facility of a gateway's newest inventory item.
import type { AnyItem, RegisterDevice, RegisterFacility } from './store.js';
import type { InventoryItem } from '../uplink/contract.js';
import type { z } from 'zod';

export function registerRows(gatewayId: string, communityCode: string, item: AnyItem): RegisterDevice[] {
  const inv = item as z.infer<typeof InventoryItem>;
  return inv.devices.map((d) => ({
    gatewayId,
    communityCode,
    deviceId: d.id,
    facility: d.facility,
    facilityId: d.facilityId ?? null,
    houseCode: d.houseCode ?? null,
    profile: d.profile,
    profileSource: d.profileSource ?? null,
    manufacturer: d.manufacturer,
    model: d.model,
    points: d.points.length,
    inventorySeq: inv.seq,
    inventoryTs: inv.ts,
  }));
}

/** A register_devices row as either database returns it (PostgreSQL: bigint as text, time as Date). */
export interface DeviceRow {
  gateway_id: string;
  device_id: string;
  community_code: string;
  facility: string;
  facility_id: string | null;
  house_code: string | null;
  profile: string;
  profile_source: string | null;
  manufacturer: string;
  model: string;
  points: number;
  inventory_seq: number | string;
  inventory_ts: number | Date;
}

export function fromDeviceRow(r: DeviceRow): RegisterDevice {
  return {
    gatewayId: r.gateway_id,
    communityCode: r.community_code,
    deviceId: r.device_id,
    facility: r.facility,
    facilityId: r.facility_id,
    houseCode: r.house_code,
    profile: r.profile,
    profileSource: r.profile_source as RegisterDevice['profileSource'],
    manufacturer: r.manufacturer,
    model: r.model,
    points: r.points,
    inventorySeq: Number(r.inventory_seq),
    inventoryTs: r.inventory_ts instanceof Date ? r.inventory_ts.getTime() : r.inventory_ts,
  };
}

export function facilityRows(gatewayId: string, communityCode: string, item: AnyItem): RegisterFacility[] {
  const inv = item as z.infer<typeof InventoryItem>;
  return (inv.facilities ?? []).map((f) => ({
    gatewayId,
    communityCode,
    facilityId: f.id,
    type: f.type,
    code: f.code,
    name: f.name ?? null,
    houseCode: f.houseCode ?? null,
    listed: f.listed,
    devices: f.devices,
    inventorySeq: inv.seq,
    inventoryTs: inv.ts,
  }));
}

/** A register_facilities row as either database returns it. */
export interface FacilityRow {
  gateway_id: string;
  facility_id: string;
  community_code: string;
  type: string;
  code: string;
  name: string | null;
  house_code: string | null;
  listed: boolean | number;
  devices: number;
  inventory_seq: number | string;
  inventory_ts: number | Date;
}

export function fromFacilityRow(r: FacilityRow): RegisterFacility {
  return {
    gatewayId: r.gateway_id,
    communityCode: r.community_code,
    facilityId: r.facility_id,
    type: r.type,
    code: r.code,
    name: r.name,
    houseCode: r.house_code,
    listed: Boolean(r.listed),
    devices: r.devices,
    inventorySeq: Number(r.inventory_seq),
    inventoryTs: r.inventory_ts instanceof Date ? r.inventory_ts.getTime() : r.inventory_ts,
  };
}
