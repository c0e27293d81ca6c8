// The inventory item: the device list and their profiles, no personal data. Sent on every
// start (and, with config reload, on change) so the platform knows what a site reports.
import type { Profile } from '../config/profile-schema.js';
import type { ProfileSource } from '../config/profiles.js';
import type { OutboxItem } from '../store/outbox.js';
import type { Facility } from '../types.js';
import { leavesAs } from '../privacy/policy.js';

/** `sourceOf` says where a device's profile came from (shipped or the site's own); the field is
 * left out where it is not known. */
export function inventoryItem(devices: { id: string; facility: Facility; profile: Profile }[], ts = Date.now(), sourceOf: (deviceId: string) => ProfileSource | undefined = () => undefined): OutboxItem {
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
          profile: d.profile.id,
          ...(profileSource ? { profileSource } : {}),
          manufacturer: d.profile.manufacturer,
          model: d.profile.model,
          points: d.profile.points.map((p) => ({ id: p.id, unit: p.unit, kind: p.kind, privacy: p.privacy, uplinked: leavesAs(d.profile, p) })),
        };
      }),
    }),
  };
}
