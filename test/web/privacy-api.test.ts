// GET /api/privacy on the running daemon in dp mode: the guarantee, the thresholds and the
// ledger the gateway keeps (counts only, under the k rule; no pseudonym in the answer).
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/peers.js';
import { baseConfig, makeApp, WebClient } from '../helpers/gateway.js';

const PASSWORD = 'Xihu-station-2026';
let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

describe('GET /api/privacy', () => {
  it('dp mode: the guarantee, each measure\'s threshold and the live ledger\'s distribution', async () => {
    const dir = tmpDir('cgw-papi-');
    const { app } = makeApp(
      baseConfig({
        storage: { path: path.join(dir, 'gateway.db') },
        buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: 1, timeoutMs: 300 }],
        devices: [{ id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 3, pollMs: 60_000 }],
        privacy: { k: 3, mode: 'dp', epsilon: 1, delta: 1e-6, annualEpsilon: 10 },
      }),
    );
    cleanups.push(() => app.stop());
    await app.start();
    const client = new WebClient(`http://127.0.0.1:${app.web.port}`);
    expect((await client.post('/api/setup', { password: PASSWORD, setupCode: app.auth.setupCode })).status).toBe(200);
    // Four residents' spends, as four windows of the kiosk would leave them.
    const ledger = app.gateway.ledger!;
    expect(ledger.file).toBe(path.join(dir, 'privacy-ledger.json'));
    for (let i = 0; i < 4; i++) ledger.charge(`a${i}`.padEnd(16, '0'), 5000, 1, Date.now());
    const r = await client.get('/api/privacy');
    expect(r.status).toBe(200);
    expect(r.body.mode).toBe('dp');
    expect(r.body.guarantee).toMatch(/^\(epsilon 1, delta 0\.000001\)-differential privacy/);
    expect(r.body.thresholds.map((t: { point: string }) => t.point).sort()).toEqual(['blood_glucose', 'body_weight', 'diastolic_bp', 'pulse_rate', 'systolic_bp']);
    expect(r.body.ledger).toMatchObject({ annualEpsilon: 10, residents: 4, excludedResidents: 0 });
    expect(r.body.ledger.spent.map((b: { residents: number | null }) => b.residents)).toEqual([0, 0, 4, 0, 0]);
    expect(JSON.stringify(r.body)).not.toContain('a0000000');
  });
});
