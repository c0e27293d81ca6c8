// What may leave the site, per point:
//   public      aggregated (count, mean, min, max, ...) and uplinked;
//   personal    raw values stay on the box; leaves only inside k-anonymous aggregates of
//               events (count, distinct residents, mean, band counts; never min/max/last);
//   identifier  never published, never stored in clear: pseudonymised in the pipeline
//               (HMAC under the site secret), used only to count distinct residents.
import { registerWidth, stricter, type Point, type PrivacyClass, type Profile, type RegisterKind } from '../config/profile-schema.js';

/** Points aggregated by the public window aggregator. */
export function uplinked(point: Point): boolean {
  return point.privacy === 'public';
}

/** The profile as this device uses it: per-point privacy classes tightened by the site config.
 * Config validation refuses a loosening override with an error naming the point; taking the
 * stricter class here as well means no path that skips validation can loosen one either. */
export function effectiveProfile(profile: Profile, overrides: Record<string, PrivacyClass> | undefined): Profile {
  if (!overrides || Object.keys(overrides).length === 0) return profile;
  return { ...profile, points: profile.points.map((p) => (overrides[p.id] ? { ...p, privacy: stricter(p.privacy, overrides[p.id]!) } : p)) };
}

/** Why a raw read of `count` registers (or bits) of `register` from `start` must not reach the
 * technician's page, or null if it may: it overlaps a point that is not public, or, on a device
 * holding personal data in that table, registers no public point explains (an unmapped
 * register of a health kiosk may hold more of a resident's data than its profile says). */
export function rawReadRefusal(profile: Profile, register: RegisterKind, start: number, count: number): string | null {
  const end = start + count - 1;
  const table = profile.points.filter((p) => p.register === register);
  const span = (p: Point): [number, number] => [p.address, p.address + registerWidth(p.type) - 1];
  const hit = table.filter((p) => {
    const [a, b] = span(p);
    return a <= end && b >= start;
  });
  const closed = hit.filter((p) => p.privacy !== 'public');
  if (closed.length) {
    return `the range overlaps ${closed.map((p) => `${p.id} (${p.privacy})`).join(', ')}: ${register} ${start}..${end} would show a resident's data`;
  }
  if (table.some((p) => p.privacy !== 'public')) {
    for (let a = start; a <= end; a++) {
      if (!hit.some((p) => span(p)[0] <= a && a <= span(p)[1])) {
        return `${register} ${a} is not a public point of this device, and the device holds personal data in its ${register} registers: only its public points can be read here`;
      }
    }
  }
  return null;
}

/** How a point leaves the site: the answer of the privacy report and the inventory. */
export function leavesAs(profile: Profile, point: Point): 'aggregate' | 'k-anonymous aggregate' | 'never' {
  if (point.privacy === 'public') return 'aggregate';
  if (point.privacy === 'personal' && profile.events?.values.includes(point.id)) return 'k-anonymous aggregate';
  return 'never';
}
