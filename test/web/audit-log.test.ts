// AuditLog on real files in a fresh temporary directory per test, with an injected clock:
// JSON lines read back newest first, the limit, mode 0600, a torn last line (from a crash),
// reopening, and tails longer than one read chunk.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog, type AuditEntry } from '../../src/web/audit-log.js';

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-audit-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const T0 = Date.UTC(2025, 4, 1, 8, 0, 0);

function makeLog(file = path.join(tmpDir(), 'audit.log')) {
  const clock = { t: T0 };
  const log = new AuditLog(file, () => clock.t);
  return { log, clock, file };
}

function lines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n');
}

describe('AuditLog', () => {
  it('writes JSON lines and reads them back newest first', () => {
    const { log, clock, file } = makeLog();
    expect(fs.existsSync(file)).toBe(false); // nothing opened before the first write
    log.write({ user: 'admin', ip: '192.168.1.5', action: 'login' });
    clock.t += 1000;
    log.write({ user: 'admin', ip: '192.168.1.5', action: 'config-apply', detail: { version: 3, applied: 'reload', note: '换 泵\n第二行' } });
    clock.t += 1000;
    log.write({ user: '', ip: '10.0.0.9', action: 'login-failed' });

    const expected: AuditEntry[] = [
      { ts: T0 + 2000, user: '', ip: '10.0.0.9', action: 'login-failed' },
      { ts: T0 + 1000, user: 'admin', ip: '192.168.1.5', action: 'config-apply', detail: { version: 3, applied: 'reload', note: '换 泵\n第二行' } },
      { ts: T0, user: 'admin', ip: '192.168.1.5', action: 'login' },
    ];
    expect(log.recent(10)).toEqual(expected);
    expect('detail' in log.recent(1)[0]!).toBe(false);

    // On disk: exactly one line per entry (a newline inside a value stays escaped), in order.
    const text = fs.readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const onDisk = text.trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEntry);
    expect(onDisk).toEqual([...expected].reverse());
    log.close();
  });

  it('honours the limit', () => {
    const { log, clock } = makeLog();
    for (let i = 1; i <= 50; i++) {
      clock.t = T0 + i;
      log.write({ user: 'admin', ip: '::1', action: 'device-read', detail: { i } });
    }
    expect(log.recent(10).map((e) => e.detail?.['i'])).toEqual([50, 49, 48, 47, 46, 45, 44, 43, 42, 41]);
    expect(log.recent(1).map((e) => e.ts)).toEqual([T0 + 50]);
    expect(log.recent(1000)).toHaveLength(50);
    expect(log.recent(1000).at(-1)?.ts).toBe(T0 + 1);
    expect(log.recent(0)).toEqual([]);
    expect(log.recent(-5)).toEqual([]);
    expect(log.recent(Number.NaN)).toEqual([]);
    expect(log.recent(2.7)).toHaveLength(2);
    log.close();
  });

  it('creates the file with mode 0600 (and narrows a wider existing file)', () => {
    const { log, file } = makeLog();
    log.write({ user: 'admin', ip: '::1', action: 'setup' });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    log.close();

    const other = path.join(tmpDir(), 'audit.log');
    fs.writeFileSync(other, '');
    fs.chmodSync(other, 0o644);
    const { log: log2 } = makeLog(other);
    log2.write({ user: 'admin', ip: '::1', action: 'login' });
    expect(fs.statSync(other).mode & 0o777).toBe(0o600);
    log2.close();
  });

  it('creates a missing parent directory on the first write', () => {
    const file = path.join(tmpDir(), 'not', 'yet', 'audit.log');
    const { log } = makeLog(file);
    log.write({ user: 'admin', ip: '::1', action: 'setup' });
    expect(log.recent(5).map((e) => e.action)).toEqual(['setup']);
    log.close();
  });

  it('skips a torn last line, and the next entry starts on a line of its own', () => {
    const { log, clock, file } = makeLog();
    for (let i = 1; i <= 3; i++) {
      clock.t = T0 + i;
      log.write({ user: 'admin', ip: '10.0.0.1', action: `a${i}` });
    }
    log.close();
    fs.appendFileSync(file, '{"ts":1746086400004,"user":"adm'); // power cut mid-write
    const { log: reopened, clock: c2 } = makeLog(file);
    expect(reopened.recent(10).map((e) => e.action)).toEqual(['a3', 'a2', 'a1']);
    expect(reopened.recent(1).map((e) => e.action)).toEqual(['a3']);

    c2.t = T0 + 5;
    reopened.write({ user: 'admin', ip: '10.0.0.1', action: 'a5' });
    expect(reopened.recent(10).map((e) => e.action)).toEqual(['a5', 'a3', 'a2', 'a1']);
    const l = lines(file);
    expect(l[3]).toBe('{"ts":1746086400004,"user":"adm');
    expect(JSON.parse(l[4]!)).toEqual({ ts: T0 + 5, user: 'admin', ip: '10.0.0.1', action: 'a5' });
    reopened.close();
  });

  it('skips lines that are not entries', () => {
    const file = path.join(tmpDir(), 'audit.log');
    fs.writeFileSync(file, ['not json', '[1,2]', '{"ts":"x","user":"a","ip":"b","action":"c"}', '', '{"ts":1,"user":"a","ip":"b","action":"ok"}', '{"ts":2}', ''].join('\n'));
    const { log } = makeLog(file);
    expect(log.recent(10)).toEqual([{ ts: 1, user: 'a', ip: 'b', action: 'ok' }]);
  });

  it('survives a reopen: earlier entries are kept and new ones appended', () => {
    const { log, file } = makeLog();
    log.write({ user: 'admin', ip: '10.0.0.1', action: 'login' });
    log.close();
    log.close(); // twice is harmless

    const { log: again, clock } = makeLog(file);
    expect(again.recent(5).map((e) => e.action)).toEqual(['login']);
    clock.t += 10;
    again.write({ user: 'admin', ip: '10.0.0.1', action: 'logout' });
    expect(again.recent(5).map((e) => [e.action, e.ts])).toEqual([
      ['logout', T0 + 10],
      ['login', T0],
    ]);
    again.close();
    // A closed log opens again on the next write.
    again.write({ user: 'admin', ip: '10.0.0.1', action: 'login' });
    expect(again.recent(5)).toHaveLength(3);
    again.close();
    expect(lines(file).filter((l) => l !== '')).toHaveLength(3);
  });

  it('reads a tail that spans several read chunks', () => {
    const { log, clock } = makeLog();
    const pad = 'x'.repeat(1000);
    for (let i = 1; i <= 300; i++) {
      clock.t = T0 + i;
      log.write({ user: 'admin', ip: '10.0.0.1', action: 'device-write', detail: { i, pad } });
    }
    const got = log.recent(250);
    expect(got).toHaveLength(250);
    expect(got.map((e) => e.detail?.['i'])).toEqual(Array.from({ length: 250 }, (_, k) => 300 - k));
    expect(log.recent(400).map((e) => e.ts)).toEqual(Array.from({ length: 300 }, (_, k) => T0 + 300 - k));
    log.close();
  });

  it('has nothing to show before the first write', () => {
    const { log } = makeLog();
    expect(log.recent(10)).toEqual([]);
  });
});
