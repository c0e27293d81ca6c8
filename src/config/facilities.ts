// A device's `facility` names an entry of the config's `facilities` (id, type, house code) or,
// as configs did before facilities were listed, a facility type: then the device belongs to an
// unlisted facility of that type whose id is the type id. Resolved here, once, for every part
// that places a device (topics by type, uplink items by facility id and house code).
import type { FacilityConfig, SiteConfig } from './site-schema.js';
import type { Placement } from '../types.js';

export interface ResolvedFacility extends Placement {
  /** The facility type id: the local topic level and the uplink items' `facility`. */
  type: string;
  name?: string;
  /** Not listed in `facilities`: named by its type in a device's `facility`. */
  listed: boolean;
}

type Facilities = Pick<SiteConfig, 'facilities' | 'devices' | 'gpio'>;

function listedFacility(f: FacilityConfig): ResolvedFacility {
  return { facilityId: f.id, type: f.type, listed: true, ...(f.name !== undefined ? { name: f.name } : {}), ...(f.houseCode !== undefined ? { houseCode: f.houseCode } : {}) };
}

/** Every facility of a config: the listed ones in order, then the unlisted types its devices
 * name (site-config.ts has checked that every other name is a type). */
export function allFacilities(c: Facilities): ResolvedFacility[] {
  const listed = c.facilities.map(listedFacility);
  const ids = new Set(listed.map((f) => f.facilityId));
  const unlisted: ResolvedFacility[] = [];
  for (const d of [...c.devices, ...c.gpio]) {
    if (ids.has(d.facility)) continue;
    ids.add(d.facility);
    unlisted.push({ facilityId: d.facility, type: d.facility, listed: false });
  }
  return [...listed, ...unlisted];
}

/** Device id -> its facility, for a config that passed site-config.ts (every name resolves). */
export function facilityByDevice(c: Facilities): Map<string, ResolvedFacility> {
  const byId = new Map(allFacilities(c).map((f) => [f.facilityId, f]));
  return new Map([...c.devices, ...c.gpio].map((d) => [d.id, byId.get(d.facility)!]));
}
