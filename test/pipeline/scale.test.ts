import { describe, expect, it } from 'vitest';
import { checkRange, scaleValue } from '../../src/pipeline/scale.js';
import { PointSchema } from '../../src/config/profile-schema.js';

const p = (over: Record<string, unknown>) => PointSchema.parse({ id: 'x', name: { zh: 'x', en: 'x' }, register: 'holding', address: 0, type: 'int16', privacy: 'public', ...over });

describe('scale and range', () => {
  it('applies scale and offset without binary noise', () => {
    expect(scaleValue(p({ scale: 0.1 }), 234)).toBe(23.4);
    expect(scaleValue(p({ scale: 0.01, offset: -40 }), 6543)).toBe(25.43);
    expect(scaleValue(p({ scale: 10 }), 7)).toBe(70);
    expect(scaleValue(p({ type: 'float32' }), Math.fround(229.8))).toBe(229.8);
    expect(scaleValue(p({ type: 'bit', bit: 1 }), true)).toBe(true);
  });

  it('flags values outside the sane range and non-finite floats', () => {
    const q = p({ range: { min: -40, max: 125 } });
    expect(checkRange(q, 125)).toBe('good');
    expect(checkRange(q, 125.1)).toBe('out_of_range');
    expect(checkRange(q, -40.5)).toBe('out_of_range');
    expect(checkRange(p({ type: 'float32' }), Number.NaN)).toBe('out_of_range');
    expect(checkRange(p({}), 99999)).toBe('good');
  });
});
