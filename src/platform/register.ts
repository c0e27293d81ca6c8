// The facility register (the gateway's part of the province's facility database): one row per
// device of a gateway's newest inventory item.
import type { AnyItem, RegisterDevice } from './store.js';
import type { InventoryItem } from '../uplink/contract.js';
import type { z } from 'zod';

export function registerRows(gatewayId: string, communityCode: string, item: AnyItem): RegisterDevice[] {
  const inv = item as z.infer<typeof InventoryItem>;
  return inv.devices.map((d) => ({
    gatewayId,
    communityCode,
    deviceId: d.id,
    facility: d.facility,
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
    profile: r.profile,
    profileSource: r.profile_source as RegisterDevice['profileSource'],
    manufacturer: r.manufacturer,
    model: r.model,
    points: r.points,
    inventorySeq: Number(r.inventory_seq),
    inventoryTs: r.inventory_ts instanceof Date ? r.inventory_ts.getTime() : r.inventory_ts,
  };
}
