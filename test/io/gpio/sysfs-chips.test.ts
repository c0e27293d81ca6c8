// Line -> sysfs number on fake /sys/class/gpio trees shaped like the boards in the field.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GpioError, listChips, resolveLine } from '../../../src/io/gpio/sysfs-chips.js';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

/** A temp dir with one gpiochipN/{label,base,ngpio} per chip. */
function tree(chips: { label: string; base: number; ngpio: number }[]): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-gpio-'));
  roots.push(root);
  for (const c of chips) {
    const dir = path.join(root, `gpiochip${c.base}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'label'), `${c.label}\n`);
    fs.writeFileSync(path.join(dir, 'base'), `${c.base}\n`);
    fs.writeFileSync(path.join(dir, 'ngpio'), `${c.ngpio}\n`);
  }
  fs.writeFileSync(path.join(root, 'export'), '');
  return root;
}

const PI5 = [
  { label: 'gpio-brcmstb@107d508500', base: 512, ngpio: 32 },
  { label: 'gpio-brcmstb@107d508520', base: 544, ngpio: 4 },
  { label: 'pinctrl-rp1', base: 571, ngpio: 54 },
];

describe('sysfs GPIO chips', () => {
  it('lists every chip with label, base and ngpio, ordered by base', () => {
    const root = tree([...PI5].reverse());
    expect(listChips(root)).toEqual([
      { name: 'gpiochip512', label: 'gpio-brcmstb@107d508500', base: 512, ngpio: 32 },
      { name: 'gpiochip544', label: 'gpio-brcmstb@107d508520', base: 544, ngpio: 4 },
      { name: 'gpiochip571', label: 'pinctrl-rp1', base: 571, ngpio: 54 },
    ]);
  });

  it('Pi 4 on kernel 6.6+: pinctrl-bcm2711 at base 512, line 17 is 529', () => {
    const root = tree([{ label: 'pinctrl-bcm2711', base: 512, ngpio: 58 }]);
    const r = resolveLine(17, undefined, root);
    expect(r.number).toBe(529);
    expect(r.chip.label).toBe('pinctrl-bcm2711');
  });

  it('Pi 5: picks pinctrl-rp1 (base 571) among several chips, line 17 is 588', () => {
    expect(resolveLine(17, undefined, tree(PI5)).number).toBe(588);
  });

  it('old kernel: base 0, line 17 is 17', () => {
    const root = tree([{ label: 'pinctrl-bcm2835', base: 0, ngpio: 54 }, { label: 'brcmvirt-gpio', base: 504, ngpio: 2 }]);
    expect(resolveLine(17, undefined, root).number).toBe(17);
  });

  it('a single non-Pi chip is used without a label; several need one', () => {
    expect(resolveLine(3, undefined, tree([{ label: 'gpio-mockup-A', base: 100, ngpio: 8 }])).number).toBe(103);
    const root = tree([{ label: 'gpio-a', base: 0, ngpio: 8 }, { label: 'gpio-b', base: 8, ngpio: 8 }]);
    expect(() => resolveLine(3, undefined, root)).toThrow(
      'gpio line 3: several GPIO chips and none is a Raspberry Pi header controller; set chip: to one of "gpio-a" (base 0, 8 lines), "gpio-b" (base 8, 8 lines)',
    );
  });

  it('an explicit chip label selects that chip, even over the header controller', () => {
    const r = resolveLine(2, 'gpio-brcmstb@107d508500', tree(PI5));
    expect(r.number).toBe(514);
    expect(r.chip.name).toBe('gpiochip512');
  });

  it('an unknown chip label fails and lists the chips found', () => {
    const err = (() => {
      try {
        resolveLine(17, 'pinctrl-bcm2711', tree(PI5));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(GpioError);
    expect((err as Error).message).toBe(
      'gpio line 17: no GPIO chip labelled "pinctrl-bcm2711"; chips found: "gpio-brcmstb@107d508500" (base 512, 32 lines), "gpio-brcmstb@107d508520" (base 544, 4 lines), "pinctrl-rp1" (base 571, 54 lines)',
    );
  });

  it('a line beyond the chip fails with the valid range', () => {
    const root = tree([{ label: 'pinctrl-bcm2711', base: 512, ngpio: 58 }]);
    expect(() => resolveLine(58, undefined, root)).toThrow(new GpioError('gpio line 58: chip "pinctrl-bcm2711" has 58 lines (0..57)'));
    expect(resolveLine(57, undefined, root).number).toBe(569);
    expect(() => resolveLine(-1, undefined, root)).toThrow(GpioError);
  });

  it('an absent root says sysfs GPIO is missing and inputs are disabled', () => {
    const root = path.join(tree([]), 'gpio');
    const text = `${root} is absent: this kernel has no sysfs GPIO (Raspberry Pi 5 on current Raspberry Pi OS); GPIO inputs are disabled`;
    expect(() => listChips(root)).toThrow(new GpioError(text));
    expect(() => resolveLine(17, undefined, root)).toThrow(new GpioError(`gpio line 17: ${text}`));
  });

  it('a root without chips says so', () => {
    expect(() => resolveLine(17, undefined, tree([]))).toThrow(/^gpio line 17: no gpiochip\* entries under /);
  });
});
