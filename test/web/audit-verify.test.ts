// `audit verify` on real files: an intact chain (across rotation), then each way of tampering
// a reviewer asks about (edited, deleted, reordered, inserted lines, a removed oldest file) and
// the torn lines a power cut leaves, which are reported as such and not as tampering. The CLI
// is run as a user runs it (dist/src/cli.js) for the exit codes and the printed file:line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, rotatedFiles } from '../../src/web/audit-log.js';
import { verifyAudit, verifyExitCode } from '../../src/web/audit-verify.js';
import { assertBuilt, cli } from '../helpers/cli.js';

beforeAll(assertBuilt);
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const T0 = Date.UTC(2026, 0, 1, 8, 0, 0);

/** A state directory with `n` entries, one minute apart, rotated every ~3 lines when `rotate`. */
function stateDir(n: number, rotate = false): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-verify-'));
  dirs.push(dir);
  const file = path.join(dir, 'audit.log');
  const clock = { t: T0 };
  const log = new AuditLog(file, () => clock.t, rotate ? { maxFileBytes: 700 } : {});
  for (let i = 1; i <= n; i++) {
    clock.t = T0 + (i - 1) * 60_000;
    log.write({ user: 'admin', ip: '192.168.1.5', action: 'device-write', detail: { i, pad: 'w'.repeat(80) } });
  }
  log.close();
  return { dir, file };
}
const read = (f: string) => fs.readFileSync(f, 'utf8').split('\n');
const put = (f: string, l: string[]) => fs.writeFileSync(f, l.join('\n'));

describe('audit verify', () => {
  it('an intact chain across rotated files: OK with the count and the date range (CLI exit 0)', () => {
    const { dir, file } = stateDir(10, true);
    expect(rotatedFiles(file).length).toBeGreaterThan(1);
    const r = verifyAudit(dir);
    expect(r).toMatchObject({ ok: true, entries: 10, firstSeq: 1, firstTs: T0, lastTs: T0 + 9 * 60_000, breaks: [], torn: [] });
    const c = cli(['audit', 'verify', '--state-dir', dir]);
    expect(c.status).toBe(0);
    expect(c.stdout).toContain('OK: 10 chained entries');
    expect(c.stdout).toContain('2026-01-01T08:00:00.000Z .. 2026-01-01T08:09:00.000Z');
    expect(c.stdout).toMatch(/head: seq 10 sha256 [0-9a-f]{64}/);
    const list = cli(['audit', 'list', file, '--limit', '2']);
    expect(list.status).toBe(0);
    expect(list.stdout.trim().split('\n')).toHaveLength(2);
  });

  it('an edited line: the break is at the next line, naming the edited one (CLI exit 1)', () => {
    const { dir, file } = stateDir(5);
    const l = read(file);
    l[1] = l[1]!.replace('"i":2', '"i":7'); // still valid JSON, seq and prev untouched
    put(file, l);
    const r = verifyAudit(file);
    expect(r.ok).toBe(false);
    expect(r.breaks).toEqual([expect.objectContaining({ file: 'audit.log', line: 3, kind: 'edited-or-reordered', message: expect.stringContaining('audit.log:2') })]);
    const c = cli(['audit', 'verify', dir]);
    expect(c.status).toBe(1);
    expect(c.stdout).toContain('BROKEN');
    expect(c.stdout).toContain('BREAK audit.log:3: prev does not match the hash of audit.log:2');
  });

  it('a deleted line, reordered lines, an inserted line', () => {
    const del = stateDir(5);
    const l = read(del.file);
    l.splice(2, 1);
    put(del.file, l);
    expect(verifyAudit(del.file).breaks).toEqual([expect.objectContaining({ line: 3, kind: 'deleted', message: expect.stringContaining('1 line(s) deleted') })]);

    const swap = stateDir(5);
    const s = read(swap.file);
    [s[1], s[2]] = [s[2]!, s[1]!];
    put(swap.file, s);
    const rs = verifyAudit(swap.file);
    expect(rs.ok).toBe(false);
    expect(rs.breaks[0]).toMatchObject({ line: 2, kind: 'deleted' }); // seq 3 after seq 1
    expect(rs.breaks.map((b) => b.kind)).toContain('out-of-order');

    const ins = stateDir(3);
    const i = read(ins.file);
    i.splice(1, 0, '{"ts":1,"user":"admin","ip":"1.2.3.4","action":"login"}');
    put(ins.file, i);
    expect(verifyAudit(ins.file).breaks).toEqual([expect.objectContaining({ line: 2, kind: 'unchained' })]);
  });

  it('a removed oldest file, or a line replaced by garbage, is a break; a torn line from a power cut is not', () => {
    const rot = stateDir(10, true);
    fs.rmSync(rotatedFiles(rot.file)[0]!);
    expect(verifyAudit(rot.dir).breaks).toEqual([expect.objectContaining({ kind: 'missing-start' })]);

    const garbage = stateDir(4);
    const g = read(garbage.file);
    g[1] = '{"seq":2,"ts":17';
    put(garbage.file, g);
    const rg = verifyAudit(garbage.file);
    expect(rg.ok).toBe(false); // line 3 does not chain over the "torn" line to line 1
    expect(rg.breaks[0]).toMatchObject({ line: 3, kind: 'deleted' }); // seq 3 after seq 1: line 2 is gone, whatever stands there

    // A real power cut: half a line, then the daemon starts again and writes on.
    const cut = stateDir(3);
    fs.appendFileSync(cut.file, '{"seq":4,"ts":1767254580000,"user":"adm');
    const tail = verifyAudit(cut.dir);
    expect(tail.ok).toBe(true);
    expect(tail.torn).toEqual([expect.objectContaining({ line: 4, kind: 'torn-tail', message: expect.stringContaining('torn tail (power cut?)') })]);
    expect(verifyExitCode(tail)).toBe(3);
    const c = cli(['audit', 'verify', cut.dir]);
    expect(c.status).toBe(3);
    expect(c.stdout).toContain('TORN  audit.log:4: torn tail (power cut?)');
    expect(c.stdout).toContain('(it was seq 4)');

    const log = new AuditLog(cut.file, () => T0 + 3_600_000);
    log.write({ user: 'admin', ip: '192.168.1.5', action: 'login' });
    log.close();
    const after = verifyAudit(cut.file);
    expect(after).toMatchObject({ ok: true, entries: 4 });
    expect(after.torn).toEqual([expect.objectContaining({ line: 4, kind: 'torn' })]);
  });

  it('a removed tail of whole lines leaves a valid chain: only the head kept elsewhere shows it', () => {
    const { file } = stateDir(5);
    const before = verifyAudit(file).head;
    const l = read(file);
    put(file, [...l.slice(0, 3), '']);
    const r = verifyAudit(file);
    expect(r.ok).toBe(true);
    expect(r.head).not.toEqual(before);
    expect(r.head?.seq).toBe(3);
  });

  it('no audit log: exit 2 with the reason', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-verify-'));
    dirs.push(dir);
    const c = cli(['audit', 'verify', '--state-dir', dir]);
    expect(c.status).toBe(2);
    expect(c.stderr).toContain('no audit log');
  });
});
