// start one demo daemon (raw on/off per RAW env) with a platform; print pid; keep running for S seconds
import { BenchMosquitto } from '/work/wt-storage/dist/bench/peers/mosquitto.js';
import { freePort, tempDir, sleep } from '/work/wt-storage/dist/bench/peers/util.js';
import { spawn } from 'node:child_process';
import fs from 'node:fs'; import path from 'node:path';
import { parse, stringify } from 'yaml';
const platform = await BenchMosquitto.start();
const base = parse(fs.readFileSync('/work/wt-storage/config/default.yaml','utf8'));
const dir = tempDir('cgw-one-'); const webPort = await freePort(); const simPort = await freePort();
base.localBroker = { ...base.localBroker, host: '127.0.0.1', port: 0 };
base.web = { host: '127.0.0.1', port: webPort, https: false };
base.storage = { path: path.join(dir, 'data', 'gateway.db'), ...(process.env.RAW ? { rawRetentionHours: Number(process.env.RAW) } : {}) };
base.uplink = { ...base.uplink, url: `mqtt://127.0.0.1:${platform.port}` };
base.buses = base.buses.map((b) => ({ ...b, port: simPort })); base.simulator = { ...base.simulator, port: simPort };
fs.writeFileSync(path.join(dir,'site.yaml'), stringify(base));
const p = spawn(process.execPath, ['--max-semi-space-size=1', '/work/wt-storage/dist/src/cli.js', 'run', '--config', path.join(dir,'site.yaml')], { stdio: ['ignore','ignore','inherit'], env: { ...process.env, LOG_LEVEL: 'error' } });
console.log(JSON.stringify({ pid: p.pid, webPort, dir }));
await sleep(Number(process.env.S ?? 150) * 1000);
p.kill('SIGTERM'); await new Promise((r) => p.once('exit', r)); await platform.stop(); process.exit(0);
