// Fault: the box's wall clock steps (issue 13, "Time that a box without RTC can trust"). The
// real daemon runs under Debian's libfaketime with only the wall clock faked, against a real
// Mosquitto platform; the test counts what the platform receives and when systemd's watchdog
// was pinged. Three scenarios: boot 2 days behind then sync; step back 2 minutes then restart;
// step forward 1 hour with 60 s windows. The contract assertions are soft (expect.soft), so
// one run lists every broken promise with its figure; each scenario also prints its figures.
//
// CLOCK_STEPS_WITHOUT_CLOCK_CONFIG=1 leaves the `clock:` block out of the site config, for a
// build that does not know it yet (it would refuse the config): the "fails before the fix" run.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mosquitto, stopAll } from '../helpers/mosquitto.js';
import { sleep, tmpDir, waitFor } from '../helpers/peers.js';
import {
  CLI,
  FakeClock,
  FaketimeDaemon,
  PlatformCapture,
  bySeq,
  libfaketimePath,
  longestGap,
  seriesKey,
  timedNotifyReceiver,
  watchLive,
  windowKey,
  windowOf,
  writeSite,
  type Item,
} from '../helpers/faketime.js';

const DAY_MS = 86_400_000;
/** WATCHDOG_USEC given to the daemon; it pings every half of it. */
const WATCHDOG_MS = 10_000;
const PING_MS = WATCHDOG_MS / 2;
/** Longest tolerated silence between two WATCHDOG=1 pings. */
const MAX_PING_GAP_MS = 1.5 * PING_MS;
/** Uncertainty, ms, of when the daemon saw a step (it reads the clock file on every call). */
const MARGIN_MS = 2000;
const withClockConfig = process.env.CLOCK_STEPS_WITHOUT_CLOCK_CONFIG !== '1';

const lib = libfaketimePath();
let platform: Mosquitto;

beforeAll(async () => {
  expect(lib, 'libfaketime is missing: apt-get install faketime (test/setup-peers.sh does)').not.toBeNull();
  expect(fs.existsSync(CLI), 'run `npx tsc -p .` first (npm run test:faults does)').toBe(true);
  platform = await Mosquitto.start({ persistence: false });
});
afterAll(() => stopAll('SIGKILL'));

interface Scenario {
  dir: string;
  clock: FakeClock;
  capture: PlatformCapture;
  notify: ReturnType<typeof timedNotifyReceiver>;
  daemon: FaketimeDaemon;
  syncFile: string;
  brokerPort: number;
  webPort: number;
  gatewayId: string;
}

async function scenario(opts: { windowSeconds: number; clock: string; synced: boolean; alarms: Record<string, unknown>[] }): Promise<Scenario> {
  const dir = tmpDir('cgw-clock-');
  const syncFile = path.join(dir, 'synchronized');
  if (opts.synced) fs.writeFileSync(syncFile, '');
  const clock = new FakeClock(lib!, dir, opts.clock);
  const site = await writeSite({
    dir,
    platformPort: platform.port,
    windowSeconds: opts.windowSeconds,
    alarms: opts.alarms,
    clock: withClockConfig ? { sync: 'timesyncd', syncFile } : undefined,
  });
  const capture = await PlatformCapture.start(platform.port);
  const notify = timedNotifyReceiver();
  const daemon = new FaketimeDaemon(clock, site.file, path.join(dir, 'state'), { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: String(WATCHDOG_MS * 1000) });
  fs.mkdirSync(path.join(dir, 'state'), { recursive: true });
  return { dir, clock, capture, notify, daemon, syncFile, brokerPort: site.brokerPort, webPort: site.webPort, gatewayId: site.gatewayId };
}

/** Waits until nothing new has arrived on the platform for quietMs (at most maxMs). */
async function settle(capture: PlatformCapture, quietMs = 2000, maxMs = 15_000): Promise<void> {
  const until = Date.now() + maxMs;
  let n = -1;
  let since = Date.now();
  while (Date.now() < until) {
    if (capture.messages.length !== n) {
      n = capture.messages.length;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
    await sleep(100);
  }
}

async function finish(s: Scenario): Promise<void> {
  await s.capture.stop();
  s.notify.close();
}

const aggItems = (items: Item[]) => items.filter((it) => windowKey(it) !== null);

/** Items of windows the box never observed: strictly inside (before, after) of fake time, whole windows only. */
function inGap(items: Item[], beforeMs: number, afterMs: number, windowSeconds: number): Item[] {
  const lo = windowOf(beforeMs + MARGIN_MS, windowSeconds);
  const hi = windowOf(afterMs - MARGIN_MS, windowSeconds);
  return items.filter((it) => typeof it.windowStart === 'number' && it.windowStart > lo && it.windowStart < hi);
}

function perSeriesMax(items: Item[]): number {
  const n = new Map<string, number>();
  for (const it of items) n.set(seriesKey(it), (n.get(seriesKey(it)) ?? 0) + 1);
  return Math.max(0, ...n.values());
}

const claimsData = (it: Item) => (typeof it.count === 'number' && it.count > 0) || (typeof it.availability === 'number' && it.availability > 0) || (typeof it.measurements === 'number' && it.measurements > 0);

/** Every received copy of a window item grouped by its content key: the seqs it went out
 * under and its distinct contents (seq and arrival time left out). */
function byWindowKey(copies: Item[]) {
  const seqsByKey = new Map<string, Set<number>>();
  const bodyByKey = new Map<string, Set<string>>();
  for (const it of copies) {
    const k = windowKey(it)!;
    if (!seqsByKey.has(k)) seqsByKey.set(k, new Set());
    seqsByKey.get(k)!.add(it.seq!);
    const { seq: _seq, at: _at, ...content } = it as Item & { at: number };
    if (!bodyByKey.has(k)) bodyByKey.set(k, new Set());
    bodyByKey.get(k)!.add(JSON.stringify(content));
  }
  const twice = [...seqsByKey].filter(([, v]) => v.size > 1);
  const differing = [...bodyByKey].filter(([, v]) => v.size > 1);
  return { seqsByKey, bodyByKey, twice, differing };
}

/** The reason the daemon logged when it stopped pinging the watchdog, if it did. */
const watchdogStopped = (d: FaketimeDaemon) => d.logLines().find((l) => String(l.msg).startsWith('watchdog: stopped pinging'))?.reason ?? null;

const raised = <T extends Item>(items: T[], alarm: string): T[] => bySeq(items).filter((a) => a.alarm === alarm && a.state === 'raised');

describe('fault: wall-clock steps under libfaketime', () => {
  // A harness that silently fakes nothing proves nothing: Node under libfaketime must see the
  // faked Date.now(), a real-speed performance.now() and setTimeout, and a step written to the
  // file while it runs.
  it('libfaketime fakes Date.now() only, and a rewritten clock file takes effect at once', async () => {
    const clock = new FakeClock(lib!, tmpDir('cgw-ftcheck-'), '-2d');
    const script = `
      const d0 = Date.now(), p0 = performance.now();
      console.log(JSON.stringify({ d: d0 }));
      setTimeout(() => console.log(JSON.stringify({ d: Date.now(), dd: Date.now() - d0, pp: performance.now() - p0 })), 1500);`;
    const p = spawn(process.execPath, ['-e', script], { env: { ...process.env, ...clock.env() }, stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: { at: number; v: { d: number; dd?: number; pp?: number } }[] = [];
    let buf = '';
    p.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) lines.push({ at: Date.now(), v: JSON.parse(buf.slice(0, i)) });
    });
    await waitFor(() => lines.length >= 1, 10_000, 'first line');
    clock.step('+0');
    await new Promise((r) => p.once('exit', r));
    expect(lines).toHaveLength(2);
    const [first, second] = lines as [(typeof lines)[0], (typeof lines)[0]];
    // Wall clock two days behind at first, then real again after the step.
    expect(Math.abs(first.at - DAY_MS * 2 - first.v.d)).toBeLessThan(5000);
    expect(Math.abs(second.at - second.v.d)).toBeLessThan(5000);
    expect(second.v.dd!).toBeGreaterThan(2 * DAY_MS - 10_000);
    // The monotonic clock and the timer did not move with it.
    expect(second.v.pp!).toBeGreaterThanOrEqual(1490);
    expect(second.v.pp!).toBeLessThan(5000);
  });

  it('A: boot 2 days behind, then sync: no flood, unsynced items flagged, step reported, watchdog and alarm unaffected', async () => {
    const W = 5;
    const F = 30;
    const s = await scenario({
      windowSeconds: W,
      clock: '-2d',
      synced: false,
      alarms: [
        // Always holds: raised at the first reading, while the clock is still unsynchronised.
        { id: 'cold-now', device: 'fridge-1', point: 'fridge_1_temperature', above: -1000, forSeconds: 0 },
        // Always holds: raised once, F seconds of monotonic time after its first holding reading.
        { id: 'cold-held', device: 'fridge-1', point: 'fridge_1_temperature', above: -1000, forSeconds: F },
      ],
    });
    await s.daemon.start();
    await sleep(2 * W * 1000 + 2000);
    // timesyncd steps the clock, then marks it synchronised.
    const stepReal = Date.now();
    s.clock.step('+0');
    fs.writeFileSync(s.syncFile, '');
    await sleep(Math.max(5 * W * 1000, s.daemon.spawnedAt + (F + 8) * 1000 - Date.now()));
    const stillRunning = s.daemon.running;
    const stopAt = Date.now();
    const exit = await s.daemon.stop('SIGTERM');
    await settle(s.capture);

    const before = stepReal - 2 * DAY_MS; // the box's time just before the step
    const all = bySeq(aggItems(s.capture.items('agg')));
    const gap = inGap(all, before, stepReal, W);
    const series = new Set(all.map(seriesKey)).size;
    const observedWindows = Math.ceil((stepReal - s.daemon.spawnedAt) / (W * 1000)) + 1 + Math.ceil((stopAt - stepReal) / (W * 1000)) + 1;
    const closeDelayMs = Math.min(2000, W * 100);
    const pre = all.filter((it) => (it.windowStart as number) + W * 1000 + closeDelayMs + MARGIN_MS <= before);
    // Two windows of slack: the daemon may look at the sync file only every few seconds.
    const post = all.filter((it) => (it.windowStart as number) >= stepReal + 2 * W * 1000);
    const alarms = s.capture.items('alarm');
    const now = raised(alarms, 'cold-now');
    const held = raised(alarms, 'cold-held');
    const statuses = s.capture.statuses();
    // The clock rides in the status message's health (docs/UPLINK.md, health.clock).
    const clockOf = (st: Record<string, unknown>) => (st.health as { clock?: unknown } | undefined)?.clock as { synchronized?: boolean; source?: string; steps?: number; lastStep?: { ts?: number; seconds?: number } } | undefined;
    const preStatus = statuses.filter((st) => st.at < stepReal - 500);
    // The last status with health (the shutdown status and the will carry none).
    const lastStatus = statuses.filter((st) => st.at > stepReal + 2 * W * 1000 && st.health !== undefined).at(-1);
    const pings = s.notify.pings();
    const figures = {
      received: all.length,
      series,
      bound: (observedWindows + 2) * series,
      gapItems: gap.length,
      gapMaxPerSeries: perSeriesMax(gap),
      gapClaimingData: gap.filter(claimsData).length,
      gapFacilityObserved: gap.filter((it) => it.type === 'facility' && it.observedSeconds !== 0).length,
      preItems: pre.length,
      preNotFlagged: pre.filter((it) => it.clockUnsynced !== true).length,
      postItems: post.length,
      postFlagged: post.filter((it) => it.clockUnsynced === true).length,
      alarmNowRaised: now.length,
      alarmNowFlagged: now.filter((a) => a.clockUnsynced === true).length,
      alarmHeldRaised: held.length,
      alarmHeldAfterSpawnS: held.map((a) => (a.at - s.daemon.spawnedAt) / 1000),
      alarmHeldFlagged: held.filter((a) => a.clockUnsynced === true).length,
      statusClockBefore: preStatus.map(clockOf),
      statusClockLast: lastStatus && clockOf(lastStatus),
      pings: pings.length,
      longestPingGapMs: pings.length ? longestGap(pings, pings[0]!, stopAt) : null,
      longestPingGapAroundStepMs: longestGap(pings, stepReal - PING_MS, stopAt),
      pingsAfterStep: pings.filter((t) => t > stepReal).length,
      watchdogStopped: watchdogStopped(s.daemon),
      stillRunning,
      exit,
    };
    console.log(`clock steps A (boot 2 days behind, then sync): ${JSON.stringify(figures)}`);
    await finish(s);

    expect(stillRunning, `daemon exited: ${s.daemon.tail()}`).toBe(true);
    expect.soft(exit.code, 'clean exit on SIGTERM').toBe(0);
    // No flood, nothing claimed for the two days the box never saw.
    expect.soft(figures.gapMaxPerSeries, 'items per series for the unobserved gap').toBeLessThanOrEqual(1);
    expect.soft(figures.gapClaimingData, 'gap items with count > 0 or availability > 0').toBe(0);
    expect.soft(figures.gapFacilityObserved, 'gap facility items with observedSeconds != 0').toBe(0);
    expect.soft(figures.received, 'items received, bound (observed windows + 2) x series').toBeLessThanOrEqual(figures.bound);
    // Made while unsynchronised: flagged; made after sync: not.
    expect.soft(figures.preItems, 'windows closed before the sync').toBeGreaterThan(0);
    expect.soft(figures.preNotFlagged, 'pre-sync items without clockUnsynced: true').toBe(0);
    expect.soft(figures.postItems, 'windows after the sync').toBeGreaterThan(0);
    expect.soft(figures.postFlagged, 'post-sync items with clockUnsynced: true').toBe(0);
    expect.soft(figures.alarmNowRaised, 'forSeconds 0 alarm raised').toBe(1);
    expect.soft(figures.alarmNowFlagged, 'that alarm, raised before sync, flagged clockUnsynced').toBe(1);
    // The held alarm: once, not before F s of monotonic time, not flagged (raised after sync).
    expect.soft(figures.alarmHeldRaised, `forSeconds ${F} alarm raised exactly once`).toBe(1);
    for (const a of held) expect.soft(a.at - s.daemon.spawnedAt, `forSeconds ${F} alarm raised early`).toBeGreaterThanOrEqual(F * 1000);
    expect.soft(figures.alarmHeldFlagged, 'post-sync alarm flagged clockUnsynced').toBe(0);
    // Status: the clock's state and the step.
    expect.soft(preStatus.length, 'status messages before the sync').toBeGreaterThan(0);
    for (const st of preStatus) expect.soft(clockOf(st)?.synchronized, 'status clock.synchronized before sync').toBe(false);
    expect.soft(lastStatus, 'a status message well after the sync').toBeDefined();
    const c = lastStatus && clockOf(lastStatus);
    expect.soft(c?.synchronized, 'status clock.synchronized after sync').toBe(true);
    expect.soft(typeof c?.source, 'status clock.source').toBe('string');
    expect.soft(c?.steps ?? 0, 'status clock.steps').toBeGreaterThanOrEqual(1);
    expect.soft(typeof c?.lastStep?.ts, 'status clock.lastStep.ts').toBe('number');
    expect.soft(Math.abs((c?.lastStep?.seconds ?? 0) - 2 * 86_400), 'status clock.lastStep.seconds - 172800').toBeLessThanOrEqual(5);
    // The watchdog went on pinging through the step.
    expect.soft(pings.length, 'watchdog pings').toBeGreaterThan(2);
    expect.soft(figures.longestPingGapMs ?? Infinity, 'longest gap between WATCHDOG=1 pings, ms').toBeLessThanOrEqual(MAX_PING_GAP_MS);
  }, 180_000);

  it('B: step back 2 minutes, then restart (SIGTERM, then kill -9): no window sent twice, no alarm raised twice, step reported', async () => {
    const W = 5;
    const s = await scenario({
      windowSeconds: W,
      clock: '+0',
      synced: true,
      alarms: [{ id: 'cold-soon', device: 'fridge-1', point: 'fridge_1_temperature', above: -1000, forSeconds: 5 }],
    });
    // Run 1: more than two windows at the right time, then the clock goes back 2 minutes.
    await s.daemon.start();
    await sleep(3 * W * 1000 + 2000);
    const stepReal = Date.now();
    s.clock.step('-120');
    // Long enough for a periodic status after the step.
    await sleep(W * 1000 + 3000);
    const run1Exit = await s.daemon.stop('SIGTERM');
    const run1End = s.capture.messages.length;
    const run1EndAt = Date.now();
    // Run 2: the same state, the clock still 2 minutes behind; a power cut this time.
    await s.daemon.start();
    await sleep(2 * W * 1000);
    await s.daemon.stop('SIGKILL');
    // Run 3: until the wall clock has caught up with where it was before the step, and beyond.
    await s.daemon.start();
    await sleep(Math.max(0, stepReal + 120_000 + 3 * W * 1000 - Date.now()));
    const run3Running = s.daemon.running;
    const run3Exit = await s.daemon.stop('SIGTERM');
    await settle(s.capture);

    const copies = aggItems(s.capture.items('agg'));
    const distinct = bySeq(copies);
    const { seqsByKey, bodyByKey, twice, differing } = byWindowKey(copies);
    const alarms = s.capture.items('alarm');
    const soon = raised(alarms, 'cold-soon');
    const statusesRun1 = s.capture.statuses().filter((st) => st.at > stepReal + 500 && st.at <= run1EndAt);
    const stepSeen = statusesRun1.map((st) => ((st.health as { clock?: unknown } | undefined)?.clock as { lastStep?: { seconds?: number } } | undefined)?.lastStep?.seconds ?? null);
    const caughtUp = distinct.filter((it) => (it.windowStart as number) >= windowOf(stepReal, W) + W * 1000);
    const figures = {
      received: distinct.length,
      keys: seqsByKey.size,
      keysSentTwice: twice.length,
      keysWithDifferentContent: differing.length,
      exampleTwice: twice.slice(0, 3).map(([k]) => ({ key: k, versions: [...bodyByKey.get(k)!].map((b) => JSON.parse(b)).map((b) => ({ count: b.count, measurements: b.measurements, availability: b.availability, observedSeconds: b.observedSeconds })) })),
      windowsAfterCatchUp: caughtUp.length,
      alarmRaised: soon.length,
      alarmRaisedInRun1: soon.filter((a) => a.at <= run1EndAt).length,
      statusLastStepSecondsRun1: stepSeen,
      run1Exit,
      run3Running,
      run3Exit,
      run1Messages: run1End,
    };
    console.log(`clock steps B (step back 2 min, then restart): ${JSON.stringify(figures)}`);
    await finish(s);

    expect(run3Running, `daemon exited: ${s.daemon.tail()}`).toBe(true);
    expect.soft(run1Exit.code, 'run 1 clean exit on SIGTERM').toBe(0);
    expect.soft(figures.keysSentTwice, '(device, point, windowStart) / (facility, windowStart) sent under more than one seq').toBe(0);
    expect.soft(figures.keysWithDifferentContent, 'one window key with different content').toBe(0);
    expect.soft(figures.windowsAfterCatchUp, 'windows sent once the clock caught up').toBeGreaterThan(0);
    expect.soft(figures.alarmRaisedInRun1, 'alarm raised before the restart').toBe(1);
    expect.soft(figures.alarmRaised, 'alarm raised in all runs together').toBe(1);
    expect.soft(stepSeen.some((x) => x !== null && Math.abs(x + 120) <= 5), 'a status after the step in run 1 with clock.lastStep.seconds ~ -120').toBe(true);
  }, 300_000);

  it('C: step forward 1 hour with 60 s windows: watchdog, polling and alarm unaffected, no flood', async () => {
    const W = 60;
    const F = 60;
    // The box boots a few seconds ahead, 15 s before a window boundary of its clock: the first
    // window closes soon after the start (no minute of waiting) and the step comes before the
    // alarm's F seconds are up.
    const ahead = Math.round(((45_000 - (Date.now() % 60_000) + 60_000) % 60_000) / 1000);
    const s = await scenario({
      windowSeconds: W,
      clock: `+${ahead}`,
      synced: true,
      alarms: [{ id: 'cold-long', device: 'fridge-1', point: 'fridge_1_temperature', above: -1000, forSeconds: F }],
    });
    await s.daemon.start();
    const live = await watchLive(s.brokerPort, s.gatewayId);
    // One window closed at the right time first.
    await waitFor(() => s.capture.messages.some((m) => m.kind === 'agg'), (W + 15) * 1000, 'first window');
    const stepReal = Date.now();
    s.clock.step(`+${ahead + 3600}`);
    const before = stepReal + ahead * 1000; // the box's time just before the step
    // One more window after the step, and long enough for the alarm's F seconds.
    await sleep(Math.max(W * 1000 + 10_000, s.daemon.spawnedAt + (F + 15) * 1000 - Date.now()));
    const stillRunning = s.daemon.running;
    const stopAt = Date.now();
    const exit = await s.daemon.stop('SIGTERM');
    await live.stop();
    await settle(s.capture);

    const all = bySeq(aggItems(s.capture.items('agg')));
    const gap = inGap(all, before, before + 3_600_000, W);
    const after = all.filter((it) => (it.windowStart as number) >= windowOf(before + 3_600_000, W));
    const cold = raised(s.capture.items('alarm'), 'cold-long');
    const pings = s.notify.pings();
    const liveAfter = live.times.filter((t) => t > stepReal);
    const figures = {
      received: all.length,
      gapItems: gap.length,
      gapMaxPerSeries: perSeriesMax(gap),
      gapClaimingData: gap.filter(claimsData).length,
      windowsAfterStep: after.length,
      alarmRaised: cold.length,
      alarmAfterSpawnS: cold.map((a) => (a.at - s.daemon.spawnedAt) / 1000),
      runS: (stopAt - s.daemon.spawnedAt) / 1000,
      stepAfterSpawnS: (stepReal - s.daemon.spawnedAt) / 1000,
      pings: pings.length,
      longestPingGapMs: pings.length ? longestGap(pings, pings[0]!, stopAt) : null,
      longestPingGapAfterStepMs: longestGap(pings, stepReal, stopAt),
      pingsAfterStep: pings.filter((t) => t > stepReal).length,
      watchdogStopped: watchdogStopped(s.daemon),
      liveReadingsAfterStep: liveAfter.length,
      longestLiveGapAfterStepMs: longestGap(liveAfter, stepReal, stopAt),
      stillRunning,
      exit,
    };
    console.log(`clock steps C (step forward 1 h, 60 s windows): ${JSON.stringify(figures)}`);
    await finish(s);

    expect(stillRunning, `daemon exited: ${s.daemon.tail()}`).toBe(true);
    expect.soft(exit.code, 'clean exit on SIGTERM').toBe(0);
    expect.soft(pings.length, 'watchdog pings').toBeGreaterThan(2);
    expect.soft(figures.longestPingGapMs ?? Infinity, 'longest gap between WATCHDOG=1 pings, ms').toBeLessThanOrEqual(MAX_PING_GAP_MS);
    expect.soft(figures.gapMaxPerSeries, 'items per series for the unobserved hour').toBeLessThanOrEqual(1);
    expect.soft(figures.gapClaimingData, 'gap items with count > 0 or availability > 0').toBe(0);
    expect.soft(figures.windowsAfterStep, 'windows sent after the step').toBeGreaterThan(0);
    // Not early; and raised once when the run lasted long enough for it.
    for (const a of cold) expect.soft(a.at - s.daemon.spawnedAt, `forSeconds ${F} alarm raised early`).toBeGreaterThanOrEqual(F * 1000);
    expect.soft(cold.length, 'alarm raised at most once').toBeLessThanOrEqual(1);
    if (figures.runS > F + 10) expect.soft(cold.length, 'alarm raised once the condition held F s').toBe(1);
    // Polling goes on: live readings keep coming on the local broker.
    expect.soft(figures.liveReadingsAfterStep, 'live readings after the step').toBeGreaterThan(0);
    expect.soft(figures.longestLiveGapAfterStepMs, 'longest gap between live readings after the step, ms').toBeLessThanOrEqual(5000);
  }, 300_000);

  it('D: step back 1 hour without restart: polling goes on, late readings counted, nothing sent twice', async () => {
    const W = 5;
    const s = await scenario({ windowSeconds: W, clock: '+0', synced: true, alarms: [] });
    await s.daemon.start();
    const live = await watchLive(s.brokerPort, s.gatewayId);
    await sleep(3 * W * 1000 + 2000);
    const stepReal = Date.now();
    s.clock.step('-1h');
    await sleep(4 * W * 1000);
    // Readings stamped in the hour already closed are late: counted somewhere a technician sees.
    const metrics = await fetch(`http://127.0.0.1:${s.webPort}/metrics`).then((r) => r.text()).catch((e: Error) => `fetch failed: ${e.message}`);
    const late = [...metrics.matchAll(/^(cgw_aggregate_late_readings_total)(?:\{[^}]*\})? ([\d.e+]+)$/gm)].map((m) => ({ name: m[1]!, value: Number(m[2]) }));
    const stillRunning = s.daemon.running;
    const stopAt = Date.now();
    const exit = await s.daemon.stop('SIGTERM');
    await live.stop();
    await settle(s.capture);

    const { twice, differing } = byWindowKey(aggItems(s.capture.items('agg')));
    const pings = s.notify.pings();
    const liveAfter = live.times.filter((t) => t > stepReal);
    const figures = {
      keysSentTwice: twice.length,
      keysWithDifferentContent: differing.length,
      metricsSeries: metrics.split('\n').filter((l) => l.startsWith('cgw_')).length,
      lateMetrics: late,
      pings: pings.length,
      longestPingGapMs: pings.length ? longestGap(pings, pings[0]!, stopAt) : null,
      watchdogStopped: watchdogStopped(s.daemon),
      liveReadingsAfterStep: liveAfter.length,
      longestLiveGapAfterStepMs: longestGap(liveAfter, stepReal, stopAt),
      stillRunning,
      exit,
    };
    console.log(`clock steps D (step back 1 h, no restart): ${JSON.stringify(figures)}`);
    await finish(s);

    expect(stillRunning, `daemon exited: ${s.daemon.tail()}`).toBe(true);
    expect.soft(exit.code, 'clean exit on SIGTERM').toBe(0);
    expect.soft(figures.liveReadingsAfterStep, 'live readings after the step').toBeGreaterThan(0);
    expect.soft(figures.longestLiveGapAfterStepMs, 'longest gap between live readings after the step, ms').toBeLessThanOrEqual(5000);
    expect.soft(figures.longestPingGapMs ?? Infinity, 'longest gap between WATCHDOG=1 pings, ms').toBeLessThanOrEqual(MAX_PING_GAP_MS);
    expect.soft(figures.keysSentTwice, 'window keys sent under more than one seq').toBe(0);
    expect.soft(figures.keysWithDifferentContent, 'one window key with different content').toBe(0);
    expect.soft(late.reduce((n, m) => n + m.value, 0), 'late readings counted in /metrics (a cgw_*late* series)').toBeGreaterThan(0);
  }, 120_000);
});
