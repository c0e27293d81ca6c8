// `community-gateway check-profile FILE`: one profile file checked as the daemon would load it
// from a site folder (schema, invariants, file name = id, no clash with a shipped id), so a
// technician can test a new model's profile before it goes into drivers/ beside the config.
import { pointSpan, type Profile } from '../config/profile-schema.js';
import { checkProfileFile, ProfileError } from '../config/profiles.js';
import { DRIVERS_DIR } from '../config/paths.js';

export interface CheckProfileResult {
  code: 0 | 1;
  /** For stdout on success, stderr on failure. */
  text: string;
}

export function checkProfile(file: string, shippedDir = DRIVERS_DIR): CheckProfileResult {
  try {
    const { profile: p, origin } = checkProfileFile(file, shippedDir);
    const { registers, bits } = footprint(p);
    const parts = [`${p.points.length} point(s)`, `${registers} register(s)`, ...(bits ? [`${bits} coil/discrete bit(s)`] : [])];
    return { code: 0, text: `${file}: OK: ${origin.source} profile ${p.id}: ${parts.join(', ')}\n` };
  } catch (err) {
    return { code: 1, text: `${err instanceof ProfileError ? err.message : `error: ${(err as Error).message}`}\n` };
  }
}

/** Distinct 16-bit registers (holding, input) and single bits (coil, discrete) the points use;
 * bits of one register count once. */
function footprint(p: Profile): { registers: number; bits: number } {
  const words = new Set<string>();
  const bits = new Set<string>();
  for (const pt of p.points) {
    const s = pointSpan(pt);
    const into = pt.register === 'coil' || pt.register === 'discrete' ? bits : words;
    for (let a = s.from; a <= s.to; a++) into.add(`${pt.register}:${a}`);
  }
  return { registers: words.size, bits: bits.size };
}
