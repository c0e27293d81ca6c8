import { describe, expect, it } from 'vitest';
import { bisectionCut, groupsBlock, planReads, registerGroups, unusedRanges } from '../../../src/io/modbus/read-plan.js';
import { PointSchema, type Point } from '../../../src/config/profile-schema.js';

const pt = (address: number, type = 'uint16', register = 'holding'): Point =>
  PointSchema.parse({ id: `p${register[0]}${address}`, name: { zh: '点', en: 'p' }, register, address, type: register === 'coil' || register === 'discrete' ? 'bool' : type, privacy: 'public' });
const fmt = (b: { register: string; start: number; count: number }[]) => b.map((x) => `${x.register[0]}${x.start}+${x.count}`);

describe('read planning', () => {
  it('merges adjacent and nearby registers within maxGap', () => {
    expect(fmt(planReads([pt(0), pt(1), pt(5, 'float32'), pt(20)], [], { maxGap: 3, maxRegisters: 125 }))).toEqual(['h0+7', 'h20+1']);
    expect(fmt(planReads([pt(0), pt(1), pt(5, 'float32'), pt(20)], [], { maxGap: 13, maxRegisters: 125 }))).toEqual(['h0+21']);
    expect(fmt(planReads([pt(0), pt(2)], [], { maxGap: 0, maxRegisters: 125 }))).toEqual(['h0+1', 'h2+1']);
  });

  it('never reads across a hole', () => {
    expect(fmt(planReads([pt(0), pt(4)], [{ register: 'holding', from: 2, to: 2 }], { maxGap: 10, maxRegisters: 125 }))).toEqual(['h0+1', 'h4+1']);
    // A hole of another register kind does not matter.
    expect(fmt(planReads([pt(0), pt(4)], [{ register: 'input', from: 2, to: 2 }], { maxGap: 10, maxRegisters: 125 }))).toEqual(['h0+5']);
  });

  it('respects the 125-register limit and a lower device limit, and never splits a value', () => {
    expect(fmt(planReads([pt(0), pt(124)], [], { maxGap: 124, maxRegisters: 125 }))).toEqual(['h0+125']);
    expect(fmt(planReads([pt(0), pt(124, 'float32')], [], { maxGap: 124, maxRegisters: 125 }))).toEqual(['h0+1', 'h124+2']);
    expect(fmt(planReads([pt(0), pt(10), pt(20)], [], { maxGap: 124, maxRegisters: 16 }))).toEqual(['h0+11', 'h20+1']);
  });

  it('plans each register kind separately and allows 16 bits per register of gap for coils', () => {
    const b = planReads([pt(3, 'bool', 'coil'), pt(100, 'bool', 'coil'), pt(0, 'uint16', 'input'), pt(0, 'bool', 'discrete')], [], { maxGap: 10, maxRegisters: 125 });
    expect(fmt(b)).toEqual(['c3+98', 'd0+1', 'i0+1']);
  });

  it('keeps bit points of one register in one read', () => {
    const a = PointSchema.parse({ id: 'a', name: { zh: 'a', en: 'a' }, register: 'holding', address: 9, type: 'bit', bit: 0, privacy: 'public' });
    const b = PointSchema.parse({ id: 'b', name: { zh: 'b', en: 'b' }, register: 'holding', address: 9, type: 'bit', bit: 5, privacy: 'public' });
    const blocks = planReads([a, b], [], { maxGap: 0, maxRegisters: 125 });
    expect(fmt(blocks)).toEqual(['h9+1']);
    expect(blocks[0]!.points.map((p) => p.id)).toEqual(['a', 'b']);
  });

  it('lists the unused addresses of a merged block', () => {
    const [block] = planReads([pt(0), pt(4), pt(6, 'float32'), pt(9)], [], { maxGap: 10, maxRegisters: 125 });
    expect(unusedRanges(block!)).toEqual([{ from: 1, to: 3 }, { from: 5, to: 5 }, { from: 8, to: 8 }]);
  });

  it('groups points that share a register, for learning reads that never separate them', () => {
    const bit = (id: string, address: number, b: number) => PointSchema.parse({ id, name: { zh: id, en: id }, register: 'holding', address, type: 'bit', bit: b, privacy: 'public' });
    const groups = registerGroups([pt(5), bit('a', 1, 0), pt(2, 'float32'), bit('b', 1, 9), pt(3), pt(9)]);
    expect(groups.map((g) => [g.from, g.to, g.points.map((p) => p.id)])).toEqual([
      [1, 1, ['a', 'b']],
      [2, 3, ['ph2', 'ph3']],
      [5, 5, ['ph5']],
      [9, 9, ['ph9']],
    ]);
    expect(groupsBlock('holding', groups.slice(1, 3))).toMatchObject({ start: 2, count: 4 });
  });

  it('cuts a refused run at the widest gap of the middle half, else in the middle', () => {
    const run = (...addresses: number[]) => registerGroups(addresses.map((a) => pt(a)));
    // No gaps: the middle.
    expect(bisectionCut(run(0, 1, 2, 3, 4, 5))).toBe(3);
    // The widest gap (5..29) lies in the middle half: cut there.
    expect(bisectionCut(run(0, 1, 2, 4, 30, 31, 32, 33))).toBe(4);
    // The widest gap (1..49) is outside it: the widest inside (55..59) wins.
    expect(bisectionCut(run(0, 50, 51, 52, 53, 54, 60, 61))).toBe(6);
    // Equal gaps: the one nearest the middle.
    expect(bisectionCut(run(0, 2, 4, 6, 8, 10))).toBe(3);
    expect(bisectionCut(run(0, 1))).toBe(1);
  });
});

describe('read planning is optimal', () => {
  it('uses exactly the minimum number of requests found by exhaustive search, on 400 random maps', async () => {
    const { minimumRequests } = await import('../../../bench/minimum-requests.js');
    const { seededRandom } = await import('../../../src/sim/random.js');
    const rnd = seededRandom(42);
    const types = ['uint16', 'int32', 'float32', 'float64'];
    for (let n = 0; n < 400; n++) {
      const points: Point[] = [];
      const used = new Set<number>();
      const count = 1 + Math.floor(rnd() * 12);
      for (let i = 0; i < count; i++) {
        const type = types[Math.floor(rnd() * types.length)]!;
        const address = Math.floor(rnd() * 300);
        const w = type === 'uint16' ? 1 : type === 'float64' ? 4 : 2;
        if ([...Array(w).keys()].some((k) => used.has(address + k))) continue;
        for (let k = 0; k < w; k++) used.add(address + k);
        points.push(pt(address, type));
      }
      const holeAt = Math.floor(rnd() * 300);
      const holes = used.has(holeAt) ? [] : [{ register: 'holding' as const, from: holeAt, to: holeAt }];
      const maxGap = Math.floor(rnd() * 20);
      const maxRegisters = 8 + Math.floor(rnd() * 118);
      const planned = planReads(points, holes, { maxGap, maxRegisters });
      expect(planned.length, JSON.stringify({ n, maxGap, maxRegisters })).toBe(minimumRequests({ points, holes, maxRegistersPerRead: maxRegisters }, maxGap));
      // And every point is covered exactly once.
      expect(planned.flatMap((b) => b.points).length).toBe(points.length);
    }
  });
});
