// The replay guard's memory: a session's nonces stay while the session lives, however many
// other sessions come and go (review finding: 200 logins used to evict a live session's nonces).
import { describe, expect, it } from 'vitest';
import { ReplayGuard } from '../../src/web/replay-guard.js';

const nonce = (i: number) => `nonce-${String(i).padStart(12, '0')}`;

describe('ReplayGuard', () => {
  it('takes a nonce once per session; refuses missing and malformed ones', () => {
    const g = new ReplayGuard(() => true);
    expect(g.take('s1', nonce(1))).toBe('ok');
    expect(g.take('s1', nonce(1))).toBe('replayed');
    expect(g.take('s2', nonce(1))).toBe('ok');
    expect(g.take('s1', undefined)).toBe('missing');
    expect(g.take('s1', 'short')).toBe('malformed');
    expect(g.take('s1', [nonce(2)])).toBe('malformed');
  });

  it("keeps a live session's nonces through 1,000 other logins, and forgets ended ones", () => {
    const ended = new Set<string>();
    const g = new ReplayGuard((s) => !ended.has(s));
    expect(g.take('admin', nonce(0))).toBe('ok');
    for (let i = 1; i <= 1000; i++) {
      expect(g.take(`script-${i}`, nonce(i))).toBe('ok');
      ended.add(`script-${i}`);
    }
    expect(g.take('admin', nonce(0))).toBe('replayed');
    // An ended session was forgotten: its token is never accepted by the server again anyway.
    expect(g.take('script-1', nonce(1))).toBe('ok');
  });
});
