// The unit ids a technician gives a bus scan: lists and ranges, 1..247, refused with a reason.
import { describe, expect, it } from 'vitest';
import { formatUnits, parseUnits, UnitsError } from '../../src/scan/units.js';

describe('unit list for a bus scan', () => {
  it('reads single ids, ranges and lists, in order and each once', () => {
    expect(parseUnits('1-247')).toHaveLength(247);
    expect(parseUnits('1-247').at(-1)).toBe(247);
    expect(parseUnits('1,3,10-12')).toEqual([1, 3, 10, 11, 12]);
    expect(parseUnits(' 12 , 3 - 5,4,1 ')).toEqual([1, 3, 4, 5, 12]);
    expect(parseUnits('7')).toEqual([7]);
    expect(parseUnits('9-9')).toEqual([9]);
  });

  it('refuses ids outside 1..247 (0 is broadcast, 248..255 reserved), backwards ranges and anything else', () => {
    const refused = (s: string) => {
      try {
        parseUnits(s);
      } catch (err) {
        expect(err).toBeInstanceOf(UnitsError);
        return (err as Error).message;
      }
      throw new Error(`"${s}" was accepted`);
    };
    expect(refused('0-10')).toBe('unit id 0 is outside 1..247');
    expect(refused('1-248')).toBe('unit id 248 is outside 1..247');
    expect(refused('255')).toBe('unit id 255 is outside 1..247');
    expect(refused('20-10')).toBe('range 20-10 runs backwards');
    expect(refused('')).toMatch(/^no unit ids given/);
    expect(refused('1,,3')).toBe('"" is not a unit id or a range like 10-20');
    expect(refused('1-')).toBe('"1-" is not a unit id or a range like 10-20');
    expect(refused('0x10')).toBe('"0x10" is not a unit id or a range like 10-20');
    expect(refused('-5')).toBe('"-5" is not a unit id or a range like 10-20');
    expect(refused('1000')).toBe('"1000" is not a unit id or a range like 10-20');
  });

  it('writes a list back in the short form', () => {
    expect(formatUnits([1, 2, 3, 7, 9, 10])).toBe('1-3,7,9-10');
    expect(formatUnits(parseUnits('1-247'))).toBe('1-247');
    expect(formatUnits([])).toBe('');
  });
});
