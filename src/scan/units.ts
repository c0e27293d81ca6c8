// The unit ids a bus scan probes, as a technician writes them: "1-247", "1,3,10-20".
// 1..247 on every bus: 0 is the broadcast address (no device answers it) and 248..255 are
// reserved (Modbus over Serial Line v1.02, 2.2); behind a TCP-to-RTU converter the same ids
// reach the RS-485 line, and a plain Modbus TCP device answers any id anyway.

export const MIN_UNIT = 1;
export const MAX_UNIT = 247;
export const ALL_UNITS = `${MIN_UNIT}-${MAX_UNIT}`;

export class UnitsError extends Error {}

/** The ids in `text`, ascending, each once; throws UnitsError saying what is wrong. */
export function parseUnits(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  if (text.trim() === '') throw new UnitsError(`no unit ids given (e.g. "${ALL_UNITS}" or "1,3,10-20")`);
  const seen = new Set<number>();
  for (const part of parts) {
    const m = /^(\d{1,3})(?:\s*-\s*(\d{1,3}))?$/.exec(part);
    if (!m) throw new UnitsError(`"${part}" is not a unit id or a range like 10-20`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    for (const n of [from, to]) if (n < MIN_UNIT || n > MAX_UNIT) throw new UnitsError(`unit id ${n} is outside ${MIN_UNIT}..${MAX_UNIT}`);
    if (to < from) throw new UnitsError(`range ${part} runs backwards`);
    for (let u = from; u <= to; u++) seen.add(u);
  }
  return [...seen].sort((a, b) => a - b);
}

/** Ids back in the short form: [1,2,3,7] -> "1-3,7". */
export function formatUnits(units: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < units.length; ) {
    let j = i;
    while (j + 1 < units.length && units[j + 1] === units[j]! + 1) j++;
    out.push(j === i ? `${units[i]}` : `${units[i]}-${units[j]}`);
    i = j + 1;
  }
  return out.join(',');
}
