import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UplinkMessage, uplinkJsonSchema, uplinkTopic } from '../../src/uplink/contract.js';

describe('uplink contract', () => {
  it('docs/uplink.schema.json is the schema the code validates with (run `npm run schema` after a change)', () => {
    const onDisk = JSON.parse(fs.readFileSync('docs/uplink.schema.json', 'utf8'));
    expect(onDisk).toEqual(JSON.parse(JSON.stringify(uplinkJsonSchema())));
  });

  it('builds the contract topics', () => {
    expect(uplinkTopic('330106001001', 'gw-demo-01', 'agg')).toBe('fc/v1/330106001001/gw-demo-01/agg');
  });

  it('accepts the documented examples and refuses items without seq or with unknown fields', () => {
    const agg = {
      v: 1,
      gatewayId: 'gw-demo-01',
      communityCode: '330106001001',
      kind: 'agg',
      items: [
        { seq: 42, type: 'point', windowStart: 1795719600000, windowSeconds: 60, facility: 'canteen', device: 'fridge-1', point: 'fridge_1_temperature', unit: '°C', kind: 'gauge', count: 12, bad: 0, mean: 4.1, min: 3.9, max: 4.4, sum: 49.2, last: 4 },
        { seq: 43, type: 'facility', windowStart: 1795719600000, windowSeconds: 60, facility: 'canteen', devices: 4, availability: 1, observedSeconds: 60 },
      ],
    };
    expect(UplinkMessage.safeParse(agg).success).toBe(true);
    const noSeq = structuredClone(agg);
    delete (noSeq.items[0] as Record<string, unknown>).seq;
    expect(UplinkMessage.safeParse(noSeq).success).toBe(false);
    const extra = structuredClone(agg);
    (extra.items[0] as Record<string, unknown>).resident = '330106199001011234';
    expect(UplinkMessage.safeParse(extra).success).toBe(false);
    expect(UplinkMessage.safeParse({ ...agg, communityCode: '3301' }).success).toBe(false);
    const status = { v: 1, gatewayId: 'gw-demo-01', communityCode: '330106001001', kind: 'status', state: 'offline', seq: 0, ts: 1795719600000, reason: 'will' };
    expect(UplinkMessage.safeParse(status).success).toBe(true);
  });

  it('an inventory device may say where its profile came from: shipped or site, nothing else (additive in v1)', () => {
    const device = { id: 'cold-1', facility: 'canteen', profile: 'acme-cr10', manufacturer: 'ACME', model: 'CR-10', points: [{ id: 'room_temperature', unit: '°C', kind: 'gauge', privacy: 'public', uplinked: 'aggregate' }] };
    const inv = (d: Record<string, unknown>) => ({ v: 1, gatewayId: 'gw-demo-01', communityCode: '330106001001', kind: 'inventory', items: [{ seq: 1, ts: 1795719600000, devices: [d] }] });
    expect(UplinkMessage.safeParse(inv(device)).success).toBe(true); // without it, as before
    expect(UplinkMessage.safeParse(inv({ ...device, profileSource: 'site' })).success).toBe(true);
    expect(UplinkMessage.safeParse(inv({ ...device, profileSource: 'shipped' })).success).toBe(true);
    expect(UplinkMessage.safeParse(inv({ ...device, profileSource: '/etc/community-gateway/drivers' })).success).toBe(false);
  });
});
