// Where the gateway's time goes in the peer job: runs it under `node --cpu-prof` and prints the
// functions with the most self time. Not part of npm run bench:peers (the profiler slows the
// daemon); docs/PERFORMANCE.md quotes its output.
// Usage: node dist/bench/peers/profile-gateway.js DEVICES [one|each] [MEASURE_SECONDS]
//   one: all devices on one TCP connection (as in 1a); each: a connection per device (as in 1b).
import fs from 'node:fs';
import path from 'node:path';
import { byModule, topFunctions } from '../broker-fanout.js';
import { runJob } from './job.js';
import { removeTempDir, tempDir } from './util.js';

const [devicesArg = '20', layout = 'one', measureArg = '15'] = process.argv.slice(2);
const dir = tempDir('cgw-peers-gwprof-');
const SKIP_S = 6;
process.env.BENCH_NODE_FLAGS = `${process.env.BENCH_NODE_FLAGS ?? '--max-semi-space-size=1'} --cpu-prof --cpu-prof-dir=${dir}`;
try {
  const r = await runJob({ system: 'gateway', devices: Number(devicesArg), pollMs: 100, connectionPerDevice: layout === 'each', warmupS: 4, measureS: Number(measureArg) });
  console.log(`${r.devices} devices (${layout === 'each' ? 'a connection each' : 'one connection'}), poll 100 ms, under the profiler: ${Math.round(r.readingsPerS)} readings/s of ${r.offeredReadingsPerS} offered, CPU ${r.cpuPct.toFixed(0)} %, ${r.cpuSPer100k.toFixed(2)} CPU s per 100,000 readings`);
  const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no profile written (did the daemon exit on SIGTERM?)');
  // The first seconds are start-up (module loading, config parsing): left out.
  console.log(`self time, % of non-idle samples after the first ${SKIP_S} s:`);
  for (const f of topFunctions(path.join(dir, file), 15, SKIP_S)) console.log(`  ${f.pct.toFixed(1).padStart(5)} %  ${f.name}`);
  console.log('by the innermost package or source folder on the stack, % of non-idle samples:');
  for (const f of byModule(path.join(dir, file), SKIP_S).slice(0, 20)) console.log(`  ${f.pct.toFixed(1).padStart(5)} %  ${f.name}`);
} finally {
  removeTempDir(dir);
}
process.exit(0);
