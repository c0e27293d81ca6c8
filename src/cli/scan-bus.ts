// `community-gateway scan`: which unit ids answer on a configured bus and which profiles fit
// them, over its own short-lived link (like `read`). Progress goes to stderr, the table (or
// JSON) to stdout; Ctrl-C stops the scan and prints what it found so far.
import { loadProfileSet } from '../config/profiles.js';
import { loadSiteConfig } from '../config/site-config.js';
import { ModbusBus } from '../io/modbus/bus.js';
import { buildTransport } from '../io/modbus/transports.js';
import { createLogger } from '../log.js';
import { DEFAULT_PROBE_TIMEOUT_MS, PROBE_TIMEOUT_RANGE, lineCharMs, scanBus, type ScanProgress, type ScanResult } from '../scan/bus-scan.js';
import { ALL_UNITS, formatUnits, parseUnits, UnitsError } from '../scan/units.js';

export interface ScanArgs {
  config?: string;
  bus?: string;
  units?: string;
  timeout?: string;
  json?: boolean;
}

export interface ScanOutcome {
  bus: string;
  endpoint: string;
  units: string;
  timeoutMs: number;
  result: ScanResult;
}

interface Out {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** Exit code: 0 scanned (also when cancelled), 1 cannot scan, 2 bad arguments. */
export async function scanCommand(v: ScanArgs, usage: string, out: Out = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const fail = (code: number, msg: string) => {
    out.stderr.write(`scan: ${msg}\n`);
    return code;
  };
  if (!v.config || !v.bus) return fail(2, `needs --config FILE and --bus ID\n\nUsage: community-gateway ${usage}`);
  let units: number[];
  try {
    units = parseUnits(v.units ?? ALL_UNITS);
  } catch (err) {
    if (err instanceof UnitsError) return fail(2, `--units: ${err.message}`);
    throw err;
  }
  const timeoutMs = v.timeout === undefined ? DEFAULT_PROBE_TIMEOUT_MS : Number(v.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < PROBE_TIMEOUT_RANGE.min || timeoutMs > PROBE_TIMEOUT_RANGE.max) {
    return fail(2, `--timeout must be a whole number of ms, ${PROBE_TIMEOUT_RANGE.min}..${PROBE_TIMEOUT_RANGE.max}`);
  }
  let config, profiles;
  try {
    profiles = loadProfileSet({ configFile: v.config });
    config = loadSiteConfig(v.config, profiles);
  } catch (err) {
    return fail(1, (err as Error).message);
  }
  const busCfg = config.buses.find((b) => b.id === v.bus);
  if (!busCfg) return fail(1, `no bus "${v.bus}" in ${v.config} (buses: ${config.buses.map((b) => b.id).join(', ') || 'none'})`);

  const bus = new ModbusBus({ id: busCfg.id, timeoutMs: busCfg.timeoutMs, retries: 0, reconnectMinMs: 60_000, reconnectMaxMs: 60_000 }, buildTransport(busCfg), createLogger('warn'));
  await bus.start();
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    if (bus.status !== 'up') {
      const locked = /lock/i.test(bus.lastError) ? ' (the running gateway holds this port: scan from the web page or its API, POST /api/buses/ID/scan, or stop the service first)' : '';
      return fail(1, `cannot reach bus ${busCfg.id} (${bus.transport.endpoint}): ${bus.lastError}${locked}`);
    }
    const configured = new Map(config.devices.filter((d) => d.bus === busCfg.id).map((d) => [d.unitId, d.id]));
    const progress = progressWriter(out.stderr, busCfg.id);
    const result = await scanBus(bus, { units, timeoutMs, charMs: lineCharMs(busCfg), profiles, configured, signal: abort.signal, onProgress: progress });
    progress.end();
    const outcome: ScanOutcome = { bus: busCfg.id, endpoint: bus.transport.endpoint, units: formatUnits(units), timeoutMs, result };
    out.stdout.write(v.json ? `${JSON.stringify(outcome, null, 2)}\n` : renderScan(outcome));
    return 0;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await bus.stop();
  }
}

/** On a terminal one line rewritten in place; in a log one line per quarter and at the end. */
function progressWriter(err: Out['stderr'], busId: string): ((p: ScanProgress) => void) & { end: () => void } {
  let last: ScanProgress | null = null;
  const line = (p: ScanProgress) => `scanning bus ${busId}: ${p.done}/${p.total} units, ${p.found} answer${p.found === 1 ? 's' : ''}`;
  const f = (p: ScanProgress) => {
    if (err.isTTY) err.write(`\r${line(p)}`);
    else if (p.done === p.total || Math.floor((4 * p.done) / p.total) > Math.floor((4 * (p.done - 1)) / p.total)) err.write(`${line(p)}\n`);
    last = p;
  };
  f.end = () => {
    if (err.isTTY && last) err.write('\n');
  };
  return f;
}

export function renderScan(o: ScanOutcome): string {
  const r = o.result;
  const lines = [
    `bus ${o.bus} (${o.endpoint}): units ${o.units}, ${r.probed} of ${r.total} probed in ${(r.elapsedMs / 1000).toFixed(1)} s, ${r.requests} requests, probe timeout ${o.timeoutMs} ms${r.stopped ? ` (stopped: ${r.stopped})` : ''}`,
  ];
  if (!r.units.length) {
    lines.push('no unit answered');
    return `${lines.join('\n')}\n`;
  }
  const rows = r.units.map((u) => [
    String(u.unitId),
    u.answered,
    u.device ?? '-',
    u.identification ? Object.values(u.identification).join(' ') : '-',
    u.profiles
      .filter((p) => p.fits)
      .map((p) => `${p.id}${p.source === 'site' ? ' (site)' : ''}`)
      .join(', ') || 'none',
  ]);
  const head = ['unit', 'answers', 'device', 'identification', 'profiles that fit (best first)'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  lines.push(fmt(head), ...rows.map(fmt));
  // Why nothing fits, where nothing does: the first failing read or value of each profile.
  for (const u of r.units) {
    if (u.profiles.some((p) => p.fits)) continue;
    lines.push('', `unit ${u.unitId}: ${u.answered === 'damaged' ? `damaged reply: ${u.reply}` : `answers (${u.reply})`}, no profile fits:`);
    for (const p of u.profiles) lines.push(`  ${p.id}: ${p.reason}`);
  }
  return `${lines.join('\n')}\n`;
}
