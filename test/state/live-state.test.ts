import { describe, expect, it } from 'vitest';
import { EventBus } from '../../src/events.js';
import { silentLogger } from '../../src/log.js';
import { LiveState } from '../../src/state/live-state.js';
import { publicReading } from '../../src/web/public-reading.js';
import type { Reading } from '../../src/types.js';
import { collected, promotedPerRound } from '../helpers/retention.js';

function rd(over: Partial<Reading>): Reading {
  return { device: 'fridge-1', facility: 'canteen', point: 'temperature', ts: 1000, value: 4.5, quality: 'good', unit: '°C', privacy: 'public', kind: 'gauge', ...over };
}

const shown = (s: LiveState, device: string) => Object.fromEntries([...(s.last.get(device)?.values() ?? [])].map((r) => [r.point, publicReading(r)]));

describe('LiveState', () => {
  it('shows the latest reading per point, whatever type its value has', () => {
    const events = new EventBus(silentLogger());
    const s = new LiveState(events);
    s.start();
    events.emit('reading', rd({ value: 4.5, ts: 1000 }));
    events.emit('reading', rd({ point: 'door', value: true, unit: '', kind: 'state' }));
    events.emit('reading', rd({ point: 'card', value: 'p-3f2a', privacy: 'identifier', unit: '' }));
    expect(shown(s, 'fridge-1')).toEqual({
      temperature: { ts: 1000, value: 4.5, unit: '°C', quality: 'good' },
      door: { ts: 1000, value: true, unit: '', quality: 'good' },
      card: { ts: 1000, value: null, unit: '', quality: 'good', withheld: 'identifier' },
    });
    events.emit('reading', rd({ value: null, ts: 2000, quality: 'timeout', detail: 'no answer in 1000 ms' }));
    events.emit('reading', rd({ point: 'door', value: 0, ts: 2000 }));
    expect(shown(s, 'fridge-1').temperature).toEqual({ ts: 2000, value: null, unit: '°C', quality: 'timeout', detail: 'no answer in 1000 ms' });
    expect(shown(s, 'fridge-1').door).toMatchObject({ ts: 2000, value: 0 });
    events.emit('reading', rd({ value: 5, ts: 3000 }));
    expect(shown(s, 'fridge-1').temperature).toEqual({ ts: 3000, value: 5, unit: '°C', quality: 'good' });
    // A stricter class from a reloaded config applies to the next reading.
    events.emit('reading', rd({ value: 6, ts: 4000, privacy: 'personal' }));
    expect(shown(s, 'fridge-1').temperature).toEqual({ ts: 4000, value: null, unit: '°C', quality: 'good', withheld: 'personal' });
    s.stop();
    events.emit('reading', rd({ value: 7, ts: 5000 }));
    expect(shown(s, 'fridge-1').temperature).toMatchObject({ ts: 4000 });
  });

  it('keeps a copy, not the Reading it was handed (which can then die young)', async () => {
    const events = new EventBus(silentLogger());
    const s = new LiveState(events);
    s.start();
    // Made and emitted in a plain function: a suspended async function may keep its last
    // local values alive in its saved registers.
    const emitTwo = () =>
      [0, 1].map((i) => {
        const r = rd({ ts: 1000 + i, value: 4.5 + i });
        events.emit('reading', r);
        return new WeakRef(r);
      });
    for (const ref of emitTwo()) expect(await collected(ref)).toBe(true);
    expect(shown(s, 'fridge-1').temperature).toMatchObject({ ts: 1001, value: 5.5 });
  });

  it('an update leaves nothing behind in the old generation (1,000 points, each read once a round)', () => {
    const events = new EventBus(silentLogger());
    const s = new LiveState(events);
    s.start();
    const n = 1000;
    const perRound = promotedPerRound((r) => {
      for (let i = 0; i < n; i++) events.emit('reading', rd({ device: `d${i % 10}`, point: `p${i}`, ts: 1000 + r * 1000, value: 4.5 + ((i + r) % 13) / 10 }));
    });
    // The Reading itself (over 100 B with its value) before.
    expect(perRound / n).toBeLessThan(2);
  });
});
