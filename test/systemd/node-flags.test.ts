// The daemon's V8 flags and allocator settings (chosen from measurements: docs/PERFORMANCE.md,
// "Scale") are written out in several places; they must not drift apart. package.json
// "start" is the reference (bench/scale.ts reads it too).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { shippedNodeFlags } from '../../bench/scale.js';
import { PACKAGE_ROOT } from '../../src/config/paths.js';

const read = (f: string) => fs.readFileSync(path.join(PACKAGE_ROOT, f), 'utf8');
const shipped = shippedNodeFlags(PACKAGE_ROOT);
const flags = shipped.flags.join(' ');
const env = Object.entries(shipped.env).map(([k, v]) => `${k}=${v}`);

/** The `--...` words after `node` up to the script. */
function flagsAfterNode(line: string): string {
  const m = /\bnode((?:\s+--\S+)*)\s/.exec(line);
  if (!m) throw new Error(`no node command in: ${line}`);
  return m[1]!.trim();
}

describe('node flags: one set everywhere', () => {
  it('package.json "start" sets some (the reference is not empty)', () => {
    expect(shipped.flags.length).toBeGreaterThan(0);
    expect(flags).toMatch(/--max-semi-space-size=\d+/);
    expect(env.length).toBeGreaterThan(0);
  });

  it('the bin (src/cli.ts shebang, through env -S) has the same flags and environment', () => {
    const line = read('src/cli.ts').split('\n')[0]!;
    expect(line.startsWith('#!/usr/bin/env -S ')).toBe(true);
    expect(line).toBe(`#!/usr/bin/env -S ${env.join(' ')} node ${flags}`);
  });

  it('the systemd unit: ExecStart= flags and Environment= settings', () => {
    const unit = read('systemd/community-gateway.service');
    const exec = unit.split('\n').filter((l) => l.startsWith('ExecStart='));
    expect(exec).toHaveLength(1);
    expect(flagsAfterNode(exec[0]!)).toBe(flags);
    const set = unit
      .split('\n')
      .filter((l) => l.startsWith('Environment='))
      .flatMap((l) => l.slice('Environment='.length).split(/\s+/));
    expect(set.filter((kv) => /^MALLOC_/.test(kv)).sort()).toEqual(env.filter((kv) => /^MALLOC_/.test(kv)).sort());
  });

  it('install.sh: the technicians\' CLI wrapper', () => {
    const sh = read('systemd/install.sh');
    const exec = sh.split('\n').filter((l) => /^exec .*\/usr\/bin\/node /.test(l));
    expect(exec).toHaveLength(1);
    expect(flagsAfterNode(exec[0]!)).toBe(flags);
    for (const kv of env) expect(sh).toContain(`export ${kv}\n`);
  });

  it('systemd/README.md says how the daemon runs', () => {
    const md = read('systemd/README.md');
    const m = /The daemon runs as `([^`]+)`/.exec(md.replace(/\n/g, ' '));
    expect(m, 'no "The daemon runs as `...`" in systemd/README.md').not.toBeNull();
    expect(m![1]).toContain(`${env.join(' ')} /usr/bin/node ${flags} /opt/community-gateway/dist/src/cli.js`);
  });

  it('the benchmarks start the daemon as npm start does', () => {
    // Every bench that starts the daemon takes the flags from package.json (bench/scale.ts
    // shippedNodeFlags) and writes none of its own.
    for (const f of ['bench/peers/job.ts', 'bench/disk-writes.ts', 'bench/uplink-bench.ts', 'bench/broker-attacks.ts', 'bench/soak.ts', 'bench/perf-profile.ts']) {
      const text = read(f);
      expect(text, f).toMatch(/shippedNodeFlags\(/);
      expect(text, f).not.toMatch(/'--max-semi-space-size|'--optimize-for-size|'--heap-growing-percent/);
    }
  });
});
