// What may leave the site, per point:
//   public      aggregated (count, mean, min, max, ...) and uplinked;
//   personal    raw values stay on the box; leaves only inside k-anonymous aggregates of
//               events (count, distinct residents, mean, band counts; never min/max/last);
//   identifier  never published, never stored in clear: pseudonymised in the pipeline
//               (HMAC under the site secret), used only to count distinct residents.
import type { Point, PrivacyClass, Profile } from '../config/profile-schema.js';

/** Points aggregated by the public window aggregator. */
export function uplinked(point: Point): boolean {
  return point.privacy === 'public';
}

/** The profile as this device uses it: per-point privacy classes overridden by the site config. */
export function effectiveProfile(profile: Profile, overrides: Record<string, PrivacyClass> | undefined): Profile {
  if (!overrides || Object.keys(overrides).length === 0) return profile;
  return { ...profile, points: profile.points.map((p) => (overrides[p.id] ? { ...p, privacy: overrides[p.id]! } : p)) };
}

/** How a point leaves the site: the answer of the privacy report and the inventory. */
export function leavesAs(profile: Profile, point: Point): 'aggregate' | 'k-anonymous aggregate' | 'never' {
  if (point.privacy === 'public') return 'aggregate';
  if (point.privacy === 'personal' && profile.events?.values.includes(point.id)) return 'k-anonymous aggregate';
  return 'never';
}
