// The inventory item: the community's facilities and the device list with their profiles, no
// personal data: the gateway's part of the province's facility database. Sent on every start,
// on every config change and on the platform's `inventory` command.
import type { Profile } from '../config/profile-schema.js';
import type { ProfileSource } from '../config/profiles.js';
import type { FacilityTypeSet } from '../config/facility-types.js';
import type { ResolvedFacility } from '../config/facilities.js';
import type { OutboxItem } from '../store/outbox.js';
import { placementFields, type Facility, type Placement } from '../types.js';
import { leavesAs } from '../privacy/policy.js';

export type InventoryDevice = { id: string; facility: Facility; profile: Profile } & Partial<Placement>;

/** The site part of the inventory: its facilities (listed and unlisted) with their types. */
export interface InventorySite {
  facilities: ResolvedFacility[];
  types: FacilityTypeSet;
  name?: string;
}

/** `sourceOf` says where a device's profile came from (shipped or the site's own); the field is
 * left out where it is not known. */
export function inventoryItem(devices: InventoryDevice[], ts = Date.now(), sourceOf: (deviceId: string) => ProfileSource | undefined = () => undefined, site?: InventorySite): OutboxItem {
  return {
    kind: 'inventory',
    ts,
    body: JSON.stringify({
      ts,
      devices: devices.map((d) => {
        const profileSource = sourceOf(d.id);
        return {
          id: d.id,
          facility: d.facility,
          ...placementFields(d),
          profile: d.profile.id,
          ...(profileSource ? { profileSource } : {}),
          manufacturer: d.profile.manufacturer,
          model: d.profile.model,
          points: d.profile.points.map((p) => ({ id: p.id, unit: p.unit, kind: p.kind, privacy: p.privacy, uplinked: leavesAs(d.profile, p) })),
        };
      }),
      ...(site ? { facilities: site.facilities.map((f) => facilityEntry(f, site.types, devices)), site: site.name !== undefined ? { name: site.name } : {} } : {}),
    }),
  };
}

function facilityEntry(f: ResolvedFacility, types: FacilityTypeSet, devices: InventoryDevice[]) {
  const t = types.get(f.type)!;
  return {
    id: f.facilityId,
    type: f.type,
    code: t.code,
    typeName: t.name,
    ...(f.name !== undefined ? { name: f.name } : {}),
    ...(f.houseCode !== undefined ? { houseCode: f.houseCode } : {}),
    listed: f.listed,
    devices: devices.filter((d) => (d.facilityId ?? d.facility) === f.facilityId).length,
  };
}
