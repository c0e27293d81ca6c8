// A small run of the fleet benchmark (npm run bench:fleet, bench/fleet/run.ts) as a test: 20
// gateways (the real Outbox and Uplink) into a real Mosquitto and 2 reference consumers into a
// real PostgreSQL 15, a 10 s paper-load phase, one saturation step, a 5 s broker outage. Every
// gateway's seqs must be in PostgreSQL exactly once, and the printed figures present and sane.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const RUN = path.resolve('dist/bench/fleet/run.js');
const havePeers = fs.existsSync('/usr/sbin/mosquitto') && fs.existsSync('/usr/lib/postgresql/15/bin/initdb');

function runFleet(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [RUN], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.once('exit', (code) => resolve({ code, out }));
  });
}

describe.skipIf(!havePeers)('bench:fleet, a small run', () => {
  it('20 gateways, a 5 s outage, 2 consumers: every seq exactly once in PostgreSQL, the figures printed', async () => {
    const { code, out } = await runFleet({ FLEET_GATEWAYS: '20', FLEET_RUN_S: '10', FLEET_OUTAGE_S: '5', FLEET_CONSUMERS: '2', FLEET_SAT_STEPS: '300', FLEET_SAT_S: '5' });
    const line = out.split('\n').find((l) => l.startsWith('FLEET_RESULT '));
    expect(line, out).toBeDefined();
    const r = JSON.parse(line!.slice('FLEET_RESULT '.length));
    // Exactly once: what every gateway appended, no seq missing, none twice, nothing else.
    expect(r.verification, out).toMatchObject({ missing: 0, duplicated: 0, extra: 0, rejected: 0, shed: 0, gatewaysShort: 0, drained: true });
    expect(r.verification.appended).toBeGreaterThan(1000);
    expect(r.verification.stored).toBe(r.verification.appended);
    expect(r.ok).toBe(true);
    expect(code).toBe(0);
    // The figures: the paper phase keeps up at 75 items/s with a latency well under a second.
    const paper = r.phases[0];
    expect(paper.name).toBe('paper load');
    expect(paper.ingestPerS).toBeGreaterThan(60);
    expect(paper.ingestPerS).toBeLessThan(90);
    expect(paper.p50Ms).toBeGreaterThanOrEqual(0);
    expect(paper.p99Ms).toBeGreaterThanOrEqual(paper.p50Ms);
    expect(paper.p99Ms).toBeLessThan(2000);
    for (const k of ['consumers', 'broker', 'pg'] as const) {
      expect(paper.cpuPct[k]).toBeGreaterThan(0);
      expect(paper.cpuPct[k]).toBeLessThan(200 * 2); // at most every core of this machine, and some slack
    }
    expect(r.sustainedItemsPerS).toBeGreaterThanOrEqual(paper.ingestPerS);
    expect(r.paperHeadroom).toBeCloseTo(r.sustainedItemsPerS / 75, 5);
    // The storm: every gateway connected again, counted at the gateways, the backlog drained.
    expect(r.outage.outageS).toBe(5);
    expect(r.outage.backlogAtRestart).toBeGreaterThan(100); // 5 s at 75 items/s, held in the outboxes
    expect(r.outage.connectsInStorm).toBeGreaterThanOrEqual(20);
    expect(r.outage.peakConnPerS).toBeGreaterThanOrEqual(1);
    expect(r.outage.peakConnPerS).toBeLessThanOrEqual(20 * 3);
    expect(r.outage.allConnectedS).not.toBeNull();
    expect(r.outage.drainedS).not.toBeNull();
    expect(r.outage.pgCaughtUpS).not.toBeNull();
    // The human lines carry the same figures.
    expect(out).toMatch(/paper load\s+offered\s+75\/s .* latency p50 \d+ ms p99 \d+ ms/);
    expect(out).toMatch(/peak connection rate \d+ CONNACKs\/s/);
    expect(out).toMatch(/verification: .* missing 0 .* duplicated 0/);
    expect(out).toMatch(/sustained ingest: at most [\d,]+ items\/s kept up .* x the paper load of 75 items\/s/);
  }, 240_000);
});
