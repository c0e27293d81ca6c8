import { describe, expect, it } from 'vitest';
import { SimulatedDevice } from '../../src/sim/simulated-device.js';
import { seededRandom } from '../../src/sim/random.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { decodeRegisters } from '../../src/io/modbus/codec.js';

const profiles = loadProfiles(DRIVERS_DIR);

describe('simulated devices', () => {
  it('serves every shipped profile with values inside each point range, moving over time', () => {
    for (const profile of profiles.values()) {
      const t0 = 1_800_000_000_000;
      const dev = new SimulatedDevice(profile, seededRandom(1), t0);
      const seen = new Map<string, Set<string>>();
      for (let step = 0; step < 600; step++) {
        dev.advance(t0 + step * 10_000); // 100 minutes in 10 s steps
        for (const p of profile.points) {
          const v = dev.valueOf(p.id)!;
          if (p.range && p.kind === 'gauge' && p.privacy === 'public') {
            expect(v, `${profile.id}.${p.id}`).toBeGreaterThanOrEqual(p.range.min);
            expect(v, `${profile.id}.${p.id}`).toBeLessThanOrEqual(p.range.max);
          }
          const s = seen.get(p.id) ?? new Set();
          s.add(v.toFixed(3));
          seen.set(p.id, s);
        }
      }
      const moving = profile.points.filter((p) => p.kind !== 'state' && p.simulate?.model !== 'fixed');
      for (const p of moving) expect(seen.get(p.id)!.size, `${profile.id}.${p.id} should move`).toBeGreaterThan(1);
    }
  });

  it('changes kiosk measurements only when its measurement counter advances', () => {
    const kiosk = profiles.get('fc-health-kiosk-v1')!;
    const t0 = 1_800_000_000_000;
    const dev = new SimulatedDevice(kiosk, seededRandom(3), t0);
    let changesWithoutCount = 0;
    let measurements = 0;
    let prev = { n: dev.valueOf('measurement_count')!, bp: dev.valueOf('systolic_bp')! };
    for (let step = 1; step < 2000; step++) {
      dev.advance(t0 + step * 1000);
      const now = { n: dev.valueOf('measurement_count')!, bp: dev.valueOf('systolic_bp')! };
      if (now.bp !== prev.bp && now.n === prev.n) changesWithoutCount++;
      if (now.n !== prev.n) measurements++;
      prev = now;
    }
    expect(changesWithoutCount).toBe(0);
    // About one measurement per 20 s over 2000 s.
    expect(measurements).toBeGreaterThan(50);
    expect(measurements).toBeLessThan(200);
  });

  it('encodes values in the register image as the profile says', () => {
    const meter = profiles.get('eastron-sdm120-modbus')!;
    const dev = new SimulatedDevice(meter, seededRandom(5), 1_800_000_000_000);
    const voltage = meter.points.find((p) => p.id === 'voltage')!;
    const words = dev.read('input', voltage.address, 2, 1_800_000_000_000)!;
    expect(decodeRegisters(words, 0, 'float32', voltage.order)).toBeCloseTo(dev.valueOf('voltage')!, 3);
    // Outside the image: null, which the server answers with ILLEGAL DATA ADDRESS.
    expect(dev.read('holding', 60000, 1)).toBeNull();
  });
});
