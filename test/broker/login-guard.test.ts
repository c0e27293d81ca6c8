// The MQTT login back-off measures its delays on the monotonic clock: a step of the wall
// clock (NTP on a box without RTC) neither lifts a back-off nor makes it last for days.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LoginGuard } from '../../src/broker/login-guard.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const opts = { freeFailures: 2, baseDelayMs: 60_000, maxDelayMs: 600_000, maxConcurrent: 2, maxQueued: 10 };

describe('LoginGuard on the monotonic clock', () => {
  it('a wall-clock step neither lifts a back-off nor stretches it', () => {
    const g = new LoginGuard(opts);
    for (let i = 0; i < 3; i++) g.failure('10.0.0.9', 'kiosk');
    expect(g.wait('10.0.0.9', 'kiosk')).toBeGreaterThan(59_000);
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 86_400_000);
    expect(g.wait('10.0.0.9', 'kiosk')).toBeGreaterThan(59_000);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 86_400_000);
    expect(g.wait('10.0.0.9', 'kiosk')).toBeLessThanOrEqual(120_000);
  });
});
