// The published JSON Schema (docs/uplink.schema.json) as an integrator uses it: read from the
// file, turned into a validator (zod's fromJSONSchema stands in for a JSON Schema library), it
// takes the gateway's answers to bundles and status with config, and refuses what the contract refuses.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigResultMessage, DiagnosticsMessage, REMOTE_COMMAND_NAMES, REMOTE_REFUSALS, StatusMessage, uplinkJsonSchema, UplinkMessage } from '../../src/uplink/contract.js';

const onDisk = JSON.parse(fs.readFileSync('docs/uplink.schema.json', 'utf8')) as Record<string, unknown>;
const schema = z.fromJSONSchema(onDisk as never);

const config = { hash: `sha256:${'ab'.repeat(32)}`, version: 12, remoteVersion: 7, remote: true };
const result = { v: 1, gatewayId: 'gw-1', communityCode: '330106001001', kind: 'config-result', ts: 1795719600000, version: 7, outcome: 'applied', applied: 'reload', config };

describe('uplink schema: config-result and status.config', () => {
  it('the file is the one uplinkJsonSchema() makes (npm run schema)', () => {
    expect(onDisk).toEqual(JSON.parse(JSON.stringify(uplinkJsonSchema())));
  });

  it('a config-result message validates against the published file, as against the zod contract', () => {
    expect(ConfigResultMessage.safeParse(result).success).toBe(true);
    expect(schema.safeParse(result).success).toBe(true);
    for (const reason of REMOTE_REFUSALS) {
      const refused = { ...result, version: reason === 'malformed' ? null : 7, outcome: 'refused', reason, detail: 'why', applied: undefined };
      delete (refused as Record<string, unknown>).applied;
      expect(schema.safeParse(refused).success, reason).toBe(true);
    }
    expect(schema.safeParse({ ...result, outcome: 'rolled-back', detail: 'start-up failed: port 5020 in use' }).success).toBe(true);
  });

  it('refuses a result the contract refuses: unknown outcome or reason, extra field, bad hash', () => {
    for (const bad of [{ ...result, outcome: 'maybe' }, { ...result, reason: 'nope' }, { ...result, secret: 1 }, { ...result, config: { ...config, hash: 'md5:1' } }, { ...result, version: 0 }]) {
      expect(ConfigResultMessage.safeParse(bad).success).toBe(false);
      expect(schema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it('a status with config validates; the uplink kinds keep their meaning (a config-result is no UplinkMessage)', () => {
    const status = { v: 1, gatewayId: 'gw-1', communityCode: '330106001001', kind: 'status', state: 'online', seq: 3, ts: 1795719600000, reason: 'connected', config };
    expect(StatusMessage.safeParse(status).success).toBe(true);
    expect(schema.safeParse(status).success).toBe(true);
    expect(schema.safeParse({ ...status, config: { ...config, remote: 'yes' } }).success).toBe(false);
    expect(UplinkMessage.safeParse(result).success).toBe(false);
    const agg = { v: 1, gatewayId: 'gw-1', communityCode: '330106001001', kind: 'agg', items: [{ seq: 43, type: 'facility', windowStart: 1795719600000, windowSeconds: 60, facility: 'canteen', devices: 4, availability: 1, observedSeconds: 60 }] };
    expect(schema.safeParse(agg).success).toBe(true);
    expect(schema.safeParse({ ...agg, kind: 'config-result' }).success).toBe(false);
  });

  it('remote commands: a result naming its command and a diagnostics part validate against the file; what the contract refuses, it refuses', () => {
    for (const command of REMOTE_COMMAND_NAMES) {
      const r = { v: 1, gatewayId: 'gw-1', communityCode: '330106001001', kind: 'config-result', ts: 1795719600000, version: 9, outcome: 'applied', command, detail: 'status sent', config };
      expect(ConfigResultMessage.safeParse(r).success).toBe(true);
      expect(schema.safeParse(r).success, command).toBe(true);
    }
    const unavailable = { ...result, outcome: 'refused', reason: 'unavailable', command: 'restart', detail: 'cannot restart itself' };
    delete (unavailable as Record<string, unknown>).applied;
    expect(schema.safeParse(unavailable).success).toBe(true);
    expect(schema.safeParse({ ...result, command: 'read-residents' }).success).toBe(false);
    const part = { v: 1, gatewayId: 'gw-1', communityCode: '330106001001', kind: 'diagnostics', ts: 1795719600000, version: 9, name: 'diagnostics-gw-1-20261202T070000.json', part: 1, parts: 2, bytes: 1200, trimmed: 0, data: '{"kind":' };
    expect(DiagnosticsMessage.safeParse(part).success).toBe(true);
    expect(schema.safeParse(part).success).toBe(true);
    expect(UplinkMessage.safeParse(part).success).toBe(false);
    for (const bad of [{ ...part, part: 0 }, { ...part, parts: 257 }, { ...part, extra: 1 }, { ...part, data: 5 }]) {
      expect(DiagnosticsMessage.safeParse(bad).success).toBe(false);
      expect(schema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
});
