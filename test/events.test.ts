import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { EventBus } from '../src/events.js';
import type { DeviceStatus } from '../src/types.js';

describe('event bus', () => {
  it('logs a failing listener and still calls the others', () => {
    const logged: string[] = [];
    const log = pino({ level: 'error' }, { write: (s: string) => logged.push(s) });
    const bus = new EventBus(log);
    const got: string[] = [];
    bus.on('deviceStatus', () => {
      throw new Error('listener bug');
    });
    const off = bus.on('deviceStatus', (s) => got.push(s.device));
    const ev: DeviceStatus = { device: 'd1', facility: 'canteen', online: true };
    expect(() => bus.emit('deviceStatus', ev)).not.toThrow();
    expect(got).toEqual(['d1']);
    expect(logged.join('')).toContain('listener bug');
    off();
    bus.emit('deviceStatus', { ...ev, device: 'd2' });
    expect(got).toEqual(['d1']);
  });
});
