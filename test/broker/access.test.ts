import { describe, expect, it } from 'vitest';
import { covers, matches } from '../../src/broker/access.js';

describe('topic patterns', () => {
  it('matches topics against filters (MQTT 3.1.1 section 4.7)', () => {
    expect(matches('community/#', 'community/gw/health/k/p')).toBe(true);
    expect(matches('community/+/health/#', 'community/gw/health/k/p')).toBe(true);
    expect(matches('community/+/health/#', 'community/gw/canteen/k/p')).toBe(false);
    expect(matches('a/+', 'a/b/c')).toBe(false);
    expect(matches('a/#', 'a')).toBe(true);
    expect(matches('#', 'anything/at/all')).toBe(true);
  });

  it('decides whether an allowed pattern covers everything a requested filter could match', () => {
    expect(covers('community/#', 'community/+/health/#')).toBe(true);
    expect(covers('community/+/health/#', 'community/gw/health/kiosk-1/+')).toBe(true);
    expect(covers('community/+/health/#', 'community/#')).toBe(false);
    expect(covers('community/+/health/#', 'community/+/+/k/p')).toBe(false);
    expect(covers('a/+/c', 'a/b/c')).toBe(true);
    expect(covers('a/+/c', 'a/#')).toBe(false);
    expect(covers('a/b', 'a/b/c')).toBe(false);
  });

  it('does not let a first-level wildcard reach $ topics (MQTT 3.1.1 section 4.7.2)', () => {
    expect(matches('#', '$SYS/broker/x')).toBe(false);
    expect(matches('+/broker/x', '$SYS/broker/x')).toBe(false);
    expect(matches('$SYS/#', '$SYS/broker/x')).toBe(true);
    expect(covers('#', '$SYS/#')).toBe(false);
    expect(covers('+/#', '$SYS/x')).toBe(false);
    expect(covers('$SYS/#', '$SYS/+/x')).toBe(true);
    expect(covers('#', 'community/#')).toBe(true);
  });
});
