// Power cut: kill -9 under load, four times (the fault suite does twenty: test/faults/).
import { afterAll, describe, it } from 'vitest';
import { stopAll } from '../helpers/mosquitto.js';
import { powerCutScenario } from '../helpers/power-cut.js';

afterAll(() => stopAll('SIGKILL'));

describe('power cut', () => {
  it('survives kill -9 under load: every committed row is delivered, integrity holds', async () => {
    // Each run crosses at least one window close (5 s) before the cut.
    await powerCutScenario(4, [5500, 8000]);
  }, 120_000);
});
