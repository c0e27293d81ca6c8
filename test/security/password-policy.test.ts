// The one password policy (web admin and broker accounts): length in characters, classes,
// user name, common/default passwords.
import { describe, expect, it } from 'vitest';
import { checkPassword, policyMessage } from '../../src/security/password-policy.js';

const reasons = (pw: string, user?: string) => checkPassword(pw, { user }).map((p) => p.reason);

describe('password policy', () => {
  it.each([
    ['Xihu-station-2026', []],
    ['密码密码密码密码密码A1', []], // 12 characters (code points), three classes
    ['correct horse battery staple 7', []], // lower + other + digit
    ['Short-1a', ['too-short']],
    ['abcdefghijklmnop', ['classes']],
    ['ABCDEFGH12345678', ['classes']],
    ['ABCDEFGH-12345678', []],
    ['admin123456', ['too-short', 'classes', 'contains-user', 'common']],
    ['Admin-123456', ['contains-user', 'common']],
    ['Password1234', ['common']],
    ['P@ssw0rd-2026', ['common']],
    ['Raspberry-2026', ['common']],
    ['raspberry1234', ['classes', 'common']],
    ['123456789012', ['classes', 'common']],
    ['111111111111', ['classes', 'common']],
    ['Community-Gateway1', ['common']],
    ['Qwertyuiop-99', ['common']],
  ])('%s → %j', (pw, want) => {
    expect(reasons(pw, 'admin')).toEqual(want);
  });

  it('names every broken rule in one message', () => {
    expect(policyMessage(checkPassword('admin', { user: 'admin' }))).toBe(
      'the password needs at least 12 characters; needs at least 3 of: lower-case letters, upper-case letters, digits, other characters; must not contain the user name "admin"; is a common or default password',
    );
  });

  it('checks the user name case-insensitively, and only when given', () => {
    expect(reasons('Canteen-App-2026', 'canteen-app')).toEqual(['contains-user']);
    expect(reasons('Canteen-App-2026')).toEqual([]);
  });
});
