// The poller's durations against a real pymodbus server: scheduling and the watchdog's
// liveness use the monotonic clock, so a step of the wall clock neither pauses polling nor
// looks like a stall, while reading stamps still follow the wall clock.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PymodbusServer, waitFor } from '../../helpers/peers.js';
import { fixtureProfile } from '../../helpers/fixtures.js';
import { ModbusBus } from '../../../src/io/modbus/bus.js';
import { ModbusTcpTransport } from '../../../src/io/modbus/tcp-transport.js';
import { DevicePoller, type PollSink } from '../../../src/io/modbus/device-poller.js';
import { silentLogger } from '../../../src/log.js';
import { monoNow } from '../../../src/time/monotonic.js';

let server: PymodbusServer | null = null;
let bus: ModbusBus | null = null;
let poller: DevicePoller | null = null;
const more: DevicePoller[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await poller?.stop();
  for (const p of more.splice(0)) await p.stop();
  await bus?.stop();
  await server?.stop();
  server = bus = poller = null;
});

const profile = fixtureProfile('test-gaps');

/** A poller of unit 1 every `pollMs`, with `mono` as its monotonic clock; counts scans and stamps. */
async function start(pollMs: number, mono: () => number, onScan: (n: number) => void = () => {}) {
  server = await PymodbusServer.start({ units: { '1': { hr: { '0': 7 } } }, ignoreMissingUnits: true });
  const log = silentLogger();
  bus = new ModbusBus({ id: 'plc', timeoutMs: 300, retries: 0, reconnectMinMs: 100, reconnectMaxMs: 400 }, new ModbusTcpTransport({ host: '127.0.0.1', port: server.port, connectTimeoutMs: 1000 }), log);
  await bus.start();
  const scans: number[] = [];
  const sink: PollSink = {
    block: () => {},
    failed: () => {},
    availability: () => {},
    scanDone: (_d, ts) => {
      scans.push(ts);
      onScan(scans.length);
    },
  };
  poller = new DevicePoller({ id: 'dev', facility: 'canteen', unitId: 1, pollMs, maxGap: 10, profile }, bus, sink, { offlineBackoffMaxMs: 1000, mono }, log);
  poller.start();
  return scans;
}

describe('DevicePoller on the monotonic clock', () => {
  it('keeps its rate when the wall clock steps back an hour during a scan', async () => {
    const realNow = Date.now.bind(Date);
    let offset = 0;
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
    // The step lands between a scan's start and its end, as NTP would at any moment.
    const scans = await start(100, monoNow, (n) => {
      if (n === 1) offset = -3_600_000;
    });
    // Computed on the wall clock, the next scan would wait an hour and this would time out.
    await waitFor(() => scans.length >= 5, 5000, 'scans after the step');
    // The stamps are wall time: the data says what the clock said.
    expect(scans[0]! - scans[4]!).toBeGreaterThan(3_500_000);
  });

  it('judges a stall by the monotonic clock only', async () => {
    let extra = 0;
    const scans = await start(60_000, () => monoNow() + extra);
    await waitFor(() => scans.length >= 1, 5000, 'first scan');
    expect(poller!.stalled()).toBeNull();
    // A forward step of the wall clock by two days is no stall.
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 2 * 86_400_000);
    expect(poller!.stalled()).toBeNull();
    // Three minutes without a scan on the monotonic clock is one (limit: 3 x pollMs = 180 s).
    extra = 181_000;
    expect(poller!.stalled()).toMatch(/^device dev: no scan finished for 18\d s$/);
    expect(poller!.stalled(monoNow())).toBeNull();
  });

  it('polls the devices of a bus on one timer, together, at their rate', async () => {
    const scans = await start(100, monoNow);
    const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    await waitFor(() => scans.length >= 2, 5000, 'the first device on the clock');
    const before = timeouts();
    const starts = new Map<string, number[]>();
    const sink: PollSink = { block: () => {}, failed: () => {}, availability: () => {}, scanDone: (d) => void starts.get(d.id)!.push(monoNow()) };
    for (let i = 0; i < 4; i++) {
      starts.set(`dev-${i}`, []);
      const p = new DevicePoller({ id: `dev-${i}`, facility: 'canteen', unitId: 1, pollMs: 100, maxGap: 10, profile }, bus!, sink, { offlineBackoffMaxMs: 1000 }, silentLogger());
      more.push(p);
      p.start();
    }
    await waitFor(() => [...starts.values()].every((s) => s.length >= 10), 5000, 'ten scans each');
    // Four more devices, not one timer more: the bus' clock wakes them all (before, one each).
    expect(timeouts() - before).toBe(0);
    // Each at its rate, not two scans in one tick (a gap of about 0 ms). A tick that fires late
    // on a loaded machine makes the next gap short but not nil: the clock keeps its grid.
    for (const s of starts.values()) {
      const gaps = s.slice(2, 10).map((t, i) => t - s[i + 1]!);
      for (const g of gaps) expect(g).toBeGreaterThan(5);
      expect(s[9]! - s[1]!).toBeGreaterThan(8 * 100 * 0.75);
    }
  });

  it('never runs two scans of one device at once, even when a link-up probe lands during one', async () => {
    let inScan = 0;
    let most = 0;
    let calls = 0;
    const orig = DevicePoller.prototype.pollOnce;
    vi.spyOn(DevicePoller.prototype, 'pollOnce').mockImplementation(async function (this: DevicePoller) {
      most = Math.max(most, ++inScan);
      // The link "comes up" (a reconnect's onUp) while the first scan runs, before the device
      // is known to be online: that asks for a probe now.
      if (++calls === 1) for (const cb of (bus as unknown as { upListeners: (() => void)[] }).upListeners) cb();
      try {
        await orig.call(this);
      } finally {
        inScan--;
      }
    });
    const scans = await start(100, monoNow);
    await waitFor(() => scans.length >= 4, 5000, 'scans');
    expect(most).toBe(1);
  });
});
