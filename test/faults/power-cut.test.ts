// Fault: twenty power cuts (kill -9) under load, at random moments, some before a window has
// closed. Nothing committed is lost; the database passes integrity_check after every cut.
import { afterAll, describe, expect, it } from 'vitest';
import { stopAll } from '../helpers/mosquitto.js';
import { powerCutScenario } from '../helpers/power-cut.js';

afterAll(() => stopAll('SIGKILL'));

describe('fault: power cuts', () => {
  it('twenty kill -9 under load lose nothing committed', async () => {
    const r = await powerCutScenario(20, [1500, 7000]);
    expect(r.delivered).toBeGreaterThan(20);
    console.log(`power cuts: 20, committed seq ${r.committed}, delivered ${r.delivered}`);
  }, 600_000);
});
