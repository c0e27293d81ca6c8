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
