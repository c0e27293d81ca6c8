// Bus scans in the running daemon: one at a time per bus, through that bus' own queue (at low
// priority: polls go first), with progress and the last result kept for the page to ask for.
import type { Profile } from '../config/profile-schema.js';
import type { BusConfig, SiteConfig } from '../config/site-schema.js';
import type { ModbusBus } from '../io/modbus/bus.js';
import type { Logger } from '../log.js';
import { DEFAULT_PROBE_TIMEOUT_MS, lineCharMs, scanBus, type ScanProgress, type ScanResult } from './bus-scan.js';
import { formatUnits, MAX_UNIT, MIN_UNIT } from './units.js';

export interface BusScanState {
  bus: string;
  state: 'running' | 'done' | 'cancelled' | 'failed';
  /** The unit ids asked for, short form ("1-247"). */
  units: string;
  timeoutMs: number;
  /** Wall-clock times, for display only. */
  startedAt: number;
  finishedAt?: number;
  progress: ScanProgress;
  result?: ScanResult;
  error?: string;
}

/** Why a scan cannot start: no such bus, one already running, or the bus is not up. */
export class ScanRefused extends Error {
  constructor(
    readonly reason: 'unknown-bus' | 'busy' | 'bus-down',
    message: string,
  ) {
    super(message);
  }
}

interface Running {
  state: BusScanState;
  abort: AbortController;
  done: Promise<void>;
}

export class BusScans {
  private readonly scans = new Map<string, Running>();

  constructor(
    private readonly buses: () => ReadonlyMap<string, ModbusBus>,
    private readonly config: () => SiteConfig,
    private readonly profiles: ReadonlyMap<string, Profile>,
    private readonly log: Logger,
  ) {}

  /** Starts a scan of `busId` and answers at once with its state. `units` defaults to
   * 1..247, `timeoutMs` to the probe default. */
  start(busId: string, opts: { units?: readonly number[]; timeoutMs?: number } = {}): BusScanState {
    const bus = this.buses().get(busId);
    const cfg = this.config().buses.find((b) => b.id === busId);
    if (!bus || !cfg) throw new ScanRefused('unknown-bus', `no bus ${busId} (buses: ${[...this.buses().keys()].join(', ') || 'none'})`);
    if (this.scans.get(busId)?.state.state === 'running') throw new ScanRefused('busy', `a scan of bus ${busId} is already running: wait for it or cancel it`);
    if (bus.status !== 'up') throw new ScanRefused('bus-down', `bus ${busId} is ${bus.status}${bus.lastError ? `: ${bus.lastError}` : ''}`);
    const units = opts.units ?? Array.from({ length: MAX_UNIT - MIN_UNIT + 1 }, (_, i) => MIN_UNIT + i);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    const state: BusScanState = { bus: busId, state: 'running', units: formatUnits(units), timeoutMs, startedAt: Date.now(), progress: { done: 0, total: units.length, found: 0 } };
    const abort = new AbortController();
    this.log.info({ bus: busId, units: state.units, timeoutMs }, 'bus scan started');
    const done = scanBus(bus, {
      units,
      timeoutMs,
      charMs: lineCharMs(cfg),
      profiles: this.profiles,
      configured: configuredUnits(this.config(), cfg),
      signal: abort.signal,
      onProgress: (p) => (state.progress = p),
    }).then(
      (result) => {
        state.result = result;
        state.state = result.stopped === 'cancelled' ? 'cancelled' : result.stopped ? 'failed' : 'done';
        if (result.stopped && result.stopped !== 'cancelled') state.error = result.stopped;
        state.finishedAt = Date.now();
        this.log.info({ bus: busId, state: state.state, found: result.units.map((u) => u.unitId), requests: result.requests, elapsedMs: result.elapsedMs }, 'bus scan ended');
      },
      (err: Error) => {
        state.state = 'failed';
        state.error = err.message;
        state.finishedAt = Date.now();
        this.log.error({ bus: busId, err: err.message }, 'bus scan failed');
      },
    );
    this.scans.set(busId, { state, abort, done });
    return state;
  }

  /** The running or last scan of the bus, or null if none since the daemon (re)started. */
  state(busId: string): BusScanState | null {
    return this.scans.get(busId)?.state ?? null;
  }

  /** Cancels a running scan; resolves once it has stopped (after at most the request on the
   * link). false if none was running. */
  async cancel(busId: string): Promise<boolean> {
    const s = this.scans.get(busId);
    if (!s || s.state.state !== 'running') return false;
    s.abort.abort();
    await s.done;
    return true;
  }

  /** Before the buses stop (config reload, shutdown): every running scan is cancelled. */
  abortAll(): Promise<void>[] {
    return [...this.scans.values()].filter((s) => s.state.state === 'running').map((s) => (s.abort.abort(), s.done));
  }
}

function configuredUnits(c: SiteConfig, bus: BusConfig): Map<number, string> {
  return new Map(c.devices.filter((d) => d.bus === bus.id).map((d) => [d.unitId, d.id]));
}
