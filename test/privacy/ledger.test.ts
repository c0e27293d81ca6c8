// The per-resident privacy ledger on disk: it survives a restart (a new instance on the same
// file), excludes a resident past the annual cap, starts a new year only forwards, keeps the
// site secret's protections, refuses a damaged file, and reports counts under the k rule.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ledgerYear, PrivacyLedger } from '../../src/privacy/ledger.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function file(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-ledger-'));
  dirs.push(d);
  return path.join(d, 'state', 'privacy-ledger.json');
}
const P = (i: number) => i.toString(16).padStart(16, '0');
/** 2026-06-01 08:00 China time. */
const JUNE = Date.UTC(2026, 5, 1, 0, 0, 0);

describe('PrivacyLedger', () => {
  it('survives a restart and excludes a resident once the next window would pass the cap', () => {
    const f = file();
    const a = new PrivacyLedger(f, 2).load();
    expect(a.charge(P(1), 500, 1, JUNE)).toBe(true);
    expect(a.charge(P(1), 500, 1, JUNE + 3600_000)).toBe(true);
    a.save();
    // A restart: a new process reads what was spent.
    const b = new PrivacyLedger(f, 2).load();
    expect(b.spent(P(1))).toBe(1);
    expect(b.charge(P(1), 1000, 1, JUNE + 7200_000)).toBe(true); // exactly at the cap: allowed
    expect(b.charge(P(1), 1, 2, JUNE + 10_800_000)).toBe(false); // one thousandth past it: left out
    expect(b.spent(P(1))).toBe(2);
    b.save();
    const c = new PrivacyLedger(f, 2).load();
    expect(c.charge(P(1), 500, 1, JUNE + 14_400_000)).toBe(false);
    expect(c.summary(1)).toMatchObject({ year: 2026, residents: 1, excludedResidents: 1, excludedSessions: 3 });
  });

  it('is written 0600 and refused when group or others can read it', () => {
    const f = file();
    const a = new PrivacyLedger(f, 2).load();
    a.charge(P(1), 100, 1, JUNE);
    a.save();
    expect(fs.statSync(f).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.dirname(f))).toEqual(['privacy-ledger.json']); // no staging file left
    fs.chmodSync(f, 0o644);
    expect(() => new PrivacyLedger(f, 2).load()).toThrow(/readable by group or others \(mode 644\)/);
  });

  it('a damaged file is refused, never taken as an empty ledger (that would reset every budget)', () => {
    const f = file();
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, '{"v":1,"year":2026,"residents":{"0000000000000001":[12', { mode: 0o600 });
    expect(() => new PrivacyLedger(f, 2).load()).toThrow(/privacy ledger .*damaged/);
  });

  it('a new calendar year (China time) starts from zero; a clock stepped back does not bring the old year back', () => {
    const f = file();
    const a = new PrivacyLedger(f, 1).load();
    // 2026-12-31 23:30 China time is still 2026; 00:30 on 1 January is 2027.
    const lateDec = Date.UTC(2026, 11, 31, 15, 30);
    expect(ledgerYear(lateDec)).toBe(2026);
    expect(ledgerYear(lateDec + 3600_000)).toBe(2027);
    expect(a.charge(P(1), 1000, 1, lateDec)).toBe(true);
    expect(a.charge(P(1), 1, 1, lateDec)).toBe(false);
    expect(a.charge(P(1), 1000, 1, lateDec + 3600_000)).toBe(true); // 2027: a fresh budget
    // The clock steps back into 2026: still 2027's ledger, and the resident is at the cap.
    expect(a.charge(P(1), 1, 1, lateDec)).toBe(false);
    a.save();
    expect(new PrivacyLedger(f, 1).load().summary(1).year).toBe(2027);
  });

  it('the summary shows counts only, and none of 1..k-1', () => {
    const f = file();
    const a = new PrivacyLedger(f, 1).load();
    for (let i = 0; i < 6; i++) a.charge(P(i), 100, 1, JUNE); // six at 10%
    for (let i = 10; i < 12; i++) a.charge(P(i), 1000, 1, JUNE); // two at the cap
    a.charge(P(10), 1, 4, JUNE); // one excluded, four sessions
    const s = a.summary(5);
    expect(s.residents).toBe(8);
    expect(s.spent).toEqual([
      { from: 0, to: 0.25, residents: 6 },
      { from: 0.25, to: 0.5, residents: 0 },
      { from: 0.5, to: 0.75, residents: 0 },
      { from: 0.75, to: 1, residents: 0 },
      { from: 1, to: 1, residents: null }, // 2 < k
    ]);
    expect(s.excludedResidents).toBeNull();
    expect(s.excludedSessions).toBeNull();
    expect(JSON.stringify(s)).not.toContain(P(10));
  });
});
