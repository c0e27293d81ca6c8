// Maps a header line (BCM number) to its sysfs GPIO number: chip base + line. Since kernel 6.6 the
// bases are dynamic (512 on a Pi 4, 571 for the RP1 on a Pi 5), so the base is always read, never assumed.
import fs from 'node:fs';
import path from 'node:path';
import { GpioError } from './errors.js';

export { GpioError };

export interface GpioChip {
  name: string;
  label: string;
  base: number;
  ngpio: number;
}

/** Labels of the controllers that drive the 40-pin Raspberry Pi header (Pi 1-3, Pi 4, Pi 5 SoC, Pi 5 RP1). */
const PI_HEADER_LABELS = new Set(['pinctrl-bcm2835', 'pinctrl-bcm2711', 'pinctrl-bcm2712', 'pinctrl-rp1']);

/** null if `root` exists, else why GPIO inputs cannot work on this kernel. */
export function sysfsGpioAbsent(root = '/sys/class/gpio'): string | null {
  if (fs.existsSync(root)) return null;
  return `${root} is absent: this kernel has no sysfs GPIO (Raspberry Pi 5 on current Raspberry Pi OS); GPIO inputs are disabled`;
}

export function listChips(root = '/sys/class/gpio'): GpioChip[] {
  const absent = sysfsGpioAbsent(root);
  if (absent) throw new GpioError(absent);
  const chips: GpioChip[] = [];
  for (const name of fs.readdirSync(root).filter((n) => n.startsWith('gpiochip'))) {
    const read = (f: string) => fs.readFileSync(path.join(root, name, f), 'utf8').trim();
    try {
      const chip = { name, label: read('label'), base: Number(read('base')), ngpio: Number(read('ngpio')) };
      if (Number.isInteger(chip.base) && Number.isInteger(chip.ngpio)) chips.push(chip);
    } catch {
      // A chip dir without readable attributes cannot be addressed; it is left out of the list.
    }
  }
  return chips.sort((a, b) => a.base - b.base);
}

const chipText = (c: GpioChip) => `"${c.label}" (base ${c.base}, ${c.ngpio} lines)`;

export function resolveLine(line: number, chipLabel: string | undefined, root = '/sys/class/gpio'): { number: number; chip: GpioChip } {
  const fail = (why: string) => new GpioError(`gpio line ${line}: ${why}`);
  const absent = sysfsGpioAbsent(root);
  if (absent) throw fail(absent);
  const chips = listChips(root);
  const found = chips.length > 0 ? `chips found: ${chips.map(chipText).join(', ')}` : `no gpiochip* entries under ${root}`;
  if (!Number.isInteger(line) || line < 0) throw fail(`not a line number (0 or more)`);

  let chip: GpioChip;
  if (chipLabel !== undefined) {
    const matches = chips.filter((c) => c.label === chipLabel);
    if (matches.length === 0) throw fail(`no GPIO chip labelled "${chipLabel}"; ${found}`);
    if (matches.length > 1) throw fail(`${matches.length} GPIO chips are labelled "${chipLabel}" (bases ${matches.map((c) => c.base).join(', ')}); cannot tell which is meant`);
    chip = matches[0]!;
  } else {
    const header = chips.filter((c) => PI_HEADER_LABELS.has(c.label));
    if (header.length === 1) chip = header[0]!;
    else if (header.length > 1) throw fail(`several Raspberry Pi header controllers; set chip: to one of ${header.map(chipText).join(', ')}`);
    else if (chips.length === 1) chip = chips[0]!;
    else if (chips.length === 0) throw fail(found);
    else throw fail(`several GPIO chips and none is a Raspberry Pi header controller; set chip: to one of ${chips.map(chipText).join(', ')}`);
  }
  if (line >= chip.ngpio) throw fail(`chip "${chip.label}" has ${chip.ngpio} lines (0..${chip.ngpio - 1})`);
  return { number: chip.base + line, chip };
}
