import { describe, expect, it } from 'vitest';
import { RawBuffer } from '../../src/store/raw-buffer.js';

const held = (b: RawBuffer, point: string) => {
  const out: [number, number | null, string][] = [];
  b.each('d', point, (ts, v, q) => out.push([ts, v, q]));
  return out;
};

describe('RawBuffer', () => {
  it('keeps arrival order across a wrapped ring that grows', () => {
    const b = new RawBuffer();
    for (let i = 0; i < 1024; i++) b.add('d', `p${i % 2}`, i, i, 'good');
    for (let i = 0; i < 3; i++) b.dropOldest();
    // The ring now starts at 3 and wraps: the next adds fill 0..2, then it must grow.
    for (let i = 1024; i < 1034; i++) b.add('d', `p${i % 2}`, i, i % 5 === 0 ? null : i, i % 5 === 0 ? 'timeout' : 'good');
    expect(b.size).toBe(1031);
    const p0 = held(b, 'p0');
    expect(p0.map((r) => r[0])).toEqual(Array.from({ length: 515 }, (_, k) => 4 + 2 * k));
    expect(p0.filter((r) => r[2] === 'timeout')).toEqual([
      [1030, null, 'timeout'],
    ]);
    expect(held(b, 'p1')[0]![0]).toBe(3);
  });

  it('groups by series in the order given, each in time order, and forgets series that sent nothing', () => {
    const b = new RawBuffer();
    b.add('d', 'b', 20, 2, 'good');
    b.add('d', 'a', 10, 1, 'good');
    b.add('d', 'b', 5, 3, 'good');
    b.add('d', 'b', 20, 4, 'good');
    const g = b.group((slot) => (b.name(slot).point === 'a' ? 1 : 2));
    expect([...g.slots].map((s) => b.name(s).point)).toEqual(['a', 'b']);
    const b0 = g.slots[1]!;
    expect(Array.from(g.cols.value).slice(g.start[b0]!, g.end[b0]!)).toEqual([3, 2, 4]);
    b.clear();
    b.add('d', 'a', 30, 5, 'good');
    b.clear();
    // 'b' sent nothing in the last round: gone; 'a' still there.
    b.add('d', 'a', 40, 6, 'good');
    const g2 = b.group(() => 0);
    expect([...g2.slots].map((s) => b.name(s).point)).toEqual(['a']);
  });
});
