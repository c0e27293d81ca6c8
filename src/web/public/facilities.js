// Facility names and choices as the gateway gives them (drivers/facility-types.yaml and the
// config's facilities): the page holds no list of its own, so a site's own types show too.
import { label } from './i18n.js';

let types = new Map();

/** From the overview's or /api/profiles' facilityTypes: [{ id, code, name: { zh, en } }]. */
export function setFacilityTypes(list) {
  if (Array.isArray(list)) types = new Map(list.map((x) => [x.id, x]));
}

/** A facility type's name in the page's language; the id itself while none is known. */
export function facilityName(type) {
  const x = types.get(type);
  return x ? label(x.name, type) : String(type ?? '');
}

/** The device form's choices: the config's facilities (by id, with their type), then every type
 * (a device of a facility the config does not list). `facilities`: /api/profiles' list. */
export function facilityOptions(facilities) {
  const listed = (facilities ?? []).filter((f) => f.listed);
  const taken = new Set(listed.map((f) => f.id));
  return [
    ...listed.map((f) => ({ value: f.id, text: `${f.name || f.id} · ${facilityName(f.type)}${f.houseCode ? ` · ${f.houseCode}` : ''}` })),
    ...[...types.values()].filter((x) => !taken.has(x.id)).map((x) => ({ value: x.id, text: facilityName(x.id) })),
  ];
}
