// `community-gateway platform report` as an operator runs it: the built CLI on a SQLite store
// holding the report fixture; formats, --out (0600), and bad arguments named.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/platform/store-sqlite.js';
import { fixture } from '../fixtures/report/site.js';
import { tmpDir } from '../helpers/peers.js';

const CLI = path.resolve('dist/src/cli.js');
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'platform', 'report', ...args], { encoding: 'utf8' });
let db: string;

beforeAll(async () => {
  db = path.join(tmpDir('cgw-rep-cli-'), 'platform.db');
  const s = new SqliteStore(db);
  await s.migrate();
  const { messages, statuses } = fixture();
  for (const m of messages) await s.storeItems(m.gatewayId, m.communityCode, m.kind, m.items, Date.now());
  for (const st of statuses) await s.storeStatus(st, st.ts);
  await s.close();
});

describe('platform report (CLI)', () => {
  it('json to stdout by default; dates are midnight China time, --to exclusive', () => {
    const r = run('--db', db, '--from', '2026-11-02', '--to', '2026-11-03');
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { from: number; to: number; communities: { communityCode: string; facilities: { facility: string; periods: { period: string; meals: { value: number } | null }[] }[] }[] };
    expect(rep.from).toBe(Date.parse('2026-11-02T00:00:00+08:00'));
    expect(rep.to - rep.from).toBe(86_400_000);
    const canteen = rep.communities[0]!.facilities.find((f) => f.facility === 'canteen')!;
    expect(canteen.periods.map((p) => p.period)).toEqual(['2026-11-02']);
    expect(canteen.periods[0]!.meals!.value).toBe(204);
    expect(r.stderr).toMatch(/2 communities, 3 facilities/);
  });

  it('html and csv to a file written 0600; --community narrows', () => {
    const dir = tmpDir('cgw-rep-out-');
    const html = path.join(dir, 'r.html');
    const r = run('--db', db, '--from', '2026-11-02', '--to', '2026-11-04', '--format', 'html', '--community', '330106001001', '--out', html);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.statSync(html).mode & 0o777).toBe(0o600);
    const text = fs.readFileSync(html, 'utf8');
    expect(text).toContain('Community 330106001001');
    expect(text).not.toContain('330106001002');
    const csv = run('--db', db, '--from', '2026-11-02T00:00:00+08:00', '--to', '2026-11-04T00:00:00+08:00', '--format', 'csv', '--period', 'week');
    expect(csv.status, csv.stderr).toBe(0);
    expect(csv.stdout).toContain(',canteen,2026-W45 (2026-11-02),');
  });

  it('names the bad argument; a missing database is exit 1 and changes nothing', () => {
    const bad = run('--db', db, '--from', '2026-11-31', '--to', '2026-12-01');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--from: "2026-11-31" is not a date');
    expect(run('--db', db, '--from', '2026-11-02', '--to', '2026-11-01').stderr).toContain('--to: must be after --from');
    expect(run('--db', db, '--from', '2026-11-02', '--to', '2026-11-03', '--format', 'pdf').stderr).toContain('--format: must be csv, json or html');
    expect(run('--db', db, '--from', '2026-11-02', '--to', '2026-11-03', '--utc-offset', '8').stderr).toContain('--utc-offset: must be +HH:MM');
    const missing = path.join(tmpDir('cgw-rep-none-'), 'none.db');
    const r = run('--db', missing, '--from', '2026-11-02', '--to', '2026-11-03');
    expect(r.status).toBe(1);
    expect(fs.existsSync(missing)).toBe(false);
    const rules = path.join(tmpDir('cgw-rep-rules-'), 'rules.yaml');
    fs.writeFileSync(rules, 'meals: []\n');
    const rr = run('--db', db, '--from', '2026-11-02', '--to', '2026-11-03', '--rules', rules);
    expect(rr.status).toBe(1);
    expect(rr.stderr).toMatch(/--rules .*meals/);
  });
});
