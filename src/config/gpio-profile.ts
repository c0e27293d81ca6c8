// A GPIO input is presented to the rest of the gateway as a device with a one-point profile,
// so aggregation, alarms, the inventory, the privacy report and the local topics treat it
// like any Modbus device and need no GPIO-specific code.
import type { Point, Profile } from './profile-schema.js';
import type { GpioConfig } from './site-schema.js';

/** The point each kind publishes: community/<gw>/<facility>/<id>/<point>. */
export const GPIO_POINT = { contact: 'active', alarm: 'active', counter: 'count' } as const;

export function gpioProfile(g: GpioConfig): Profile {
  const base = { register: 'discrete', address: 0, order: 'ABCD', scale: 1, offset: 0, privacy: 'public', writable: false } as const;
  const point: Point =
    g.kind === 'counter'
      ? { ...base, id: GPIO_POINT.counter, name: { zh: '脉冲计数', en: 'Pulse count' }, type: 'uint32', unit: '', kind: 'counter' }
      : {
          ...base,
          id: GPIO_POINT[g.kind],
          name: g.kind === 'alarm' ? { zh: '报警输入', en: 'Alarm input' } : { zh: '触点', en: 'Contact' },
          type: 'bool',
          unit: '',
          kind: 'state',
          ...(g.kind === 'alarm' ? { alarm: { when: true, severity: g.severity ?? 'critical' } } : {}),
        };
  return {
    id: `gpio-${g.kind}`,
    manufacturer: 'GPIO',
    model: `${g.kind} input, line ${g.line}${g.chip ? ` on ${g.chip}` : ''}`,
    name: { zh: `GPIO ${g.kind === 'counter' ? '计数' : g.kind === 'alarm' ? '报警' : '触点'}输入`, en: `GPIO ${g.kind} input` },
    source: 'own',
    facilities: [g.facility],
    transports: ['gpio'],
    maxRegistersPerRead: 125,
    holes: [],
    points: [point],
  };
}
