// What may leave the site. Until the privacy filter (k-anonymous aggregates of personal
// data, pseudonymised identifiers) lands, only `public` points are aggregated and uplinked:
// a personal value (one resident's blood pressure) or an identifier (a card number) never
// leaves the box, in any form.
import type { Point } from '../config/profile-schema.js';

export function uplinked(point: Point): boolean {
  return point.privacy === 'public';
}
