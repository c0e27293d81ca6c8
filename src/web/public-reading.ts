// What the web page and the status API may show of a reading: personal and identifier values
// are withheld (the technician needs to see that a point reports, not a resident's values).
import type { Reading } from '../types.js';

export function publicReading(r: Reading): Record<string, unknown> {
  const withheld = r.privacy !== 'public';
  return { ts: r.ts, value: withheld ? null : r.value, unit: r.unit, quality: r.quality, ...(withheld ? { withheld: r.privacy } : {}), ...(r.detail ? { detail: r.detail } : {}) };
}
