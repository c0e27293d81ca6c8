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

/** The facility a device's `facility` names; undefined for a name that is neither a listed
 * facility nor a type (site-config.ts refuses such a config). */
export function resolveFacility(facilities: readonly FacilityConfig[], ref: string, isType: (id: string) => boolean): ResolvedFacility | undefined {
  const f = facilities.find((x) => x.id === ref);
  if (f) return { facilityId: f.id, type: f.type, listed: true, ...(f.name !== undefined ? { name: f.name } : {}), ...(f.houseCode !== undefined ? { houseCode: f.houseCode } : {}) };
  return isType(ref) ? { facilityId: ref, type: ref, listed: false } : undefined;
}

/** Every facility of a config: the listed ones in order, then the unlisted types its devices name. */
export function allFacilities(c: Facilities): ResolvedFacility[] {
  const listed = c.facilities.map((f) => resolveFacility(c.facilities, f.id, () => false)!);
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
