// Composition root: builds every part from a validated config and starts and stops them in
// order (zigbee2mqtt's controller pattern). Constructors do no I/O; start() and stop() do.
// Data flows one way: io -> pipeline -> event bus -> local broker / live state.
import { personalWindowSeconds, type SiteConfig } from './config/site-schema.js';
import type { Profile } from './config/profile-schema.js';
import type { Logger } from './log.js';
import { EventBus } from './events.js';
import { ModbusBus } from './io/modbus/bus.js';
import { buildTransport } from './io/modbus/transports.js';
import type { ReadRequest } from './io/modbus/transport.js';
import { encodeWrite } from './io/modbus/device-commands.js';
import { planReads, pointSpan } from './io/modbus/read-plan.js';
import { decodeRegisters } from './io/modbus/codec.js';
import { ModbusError, ModbusLinkError } from './io/modbus/errors.js';
import { scaleValue } from './pipeline/scale.js';
import { GpioInput } from './io/gpio/gpio-input.js';
import type { GpioBackend } from './io/gpio/line.js';
import { OnoffBackend } from './io/gpio/onoff-backend.js';
import { gpioProfile, GPIO_POINT } from './config/gpio-profile.js';
import { facilityTypesOf, profileOrigin, type ProfileSource } from './config/profiles.js';
import { allFacilities, facilityByDevice, type ResolvedFacility } from './config/facilities.js';
import type { FacilityType } from './config/facility-types.js';
import { CounterStore } from './store/counter-store.js';
import { DiskReserve } from './store/disk-reserve.js';
import type { BusConfig } from './config/site-schema.js';
import { DevicePoller } from './io/modbus/device-poller.js';
import { Pipeline } from './pipeline/pipeline.js';
import { LocalBroker } from './broker/local-broker.js';
import { LivePublisher, readingTopic, scanTopic } from './broker/live-publisher.js';
import { AccessControl } from './broker/access.js';
import { LiveState } from './state/live-state.js';
import { publicReading } from './web/public-reading.js';
import { buildSimulator, simulatedGpio } from './sim/simulator.js';
import type { SimServer } from './sim/sim-server.js';
import { packageVersion } from './config/paths.js';
import { openDatabase, type Db } from './store/database.js';
import { Outbox } from './store/outbox.js';
import { RawStore } from './store/raw-store.js';
import { openRawDatabase, rawDatabasePath } from './store/raw-database.js';
import { WindowAggregator } from './aggregate/window-aggregator.js';
import { AlarmMonitor } from './aggregate/alarm-monitor.js';
import { SqliteAlarmState } from './store/alarm-state.js';
import { Uplink, type UplinkRemote } from './uplink/uplink.js';
import type { StatusHealth } from './uplink/contract.js';
import { inventoryItem, type InventoryDevice } from './uplink/inventory.js';
import { placementFields } from './types.js';
import { effectiveProfile, uplinked } from './privacy/policy.js';
import { PersonalAggregator } from './privacy/personal-aggregator.js';
import { LEDGER_FILE, PrivacyLedger } from './privacy/ledger.js';
import { loadOrCreateSiteSecret, pseudonymiser } from './privacy/site-secret.js';
import { ClockSync } from './time/clock-sync.js';
import { ClockWatch } from './time/clock-watch.js';
import type { OutboxItem } from './store/outbox.js';
import { monoNow } from './time/monotonic.js';
import { BusScans, type BusScanState } from './scan/scan-runner.js';
import path from 'node:path';

/** Outbox counter holding the end of the last aggregation window sent (WindowAggregator). */
const CLOSED_UP_TO = 'agg.closedUpTo';

/** One point of a "read now": its public value, or withheld, or the device's refusal. */
export interface UnsavedPoint {
  id: string;
  name?: { zh: string; en: string };
  unit: string;
  privacy: string;
  value?: number | boolean;
  withheld?: true;
  error?: string;
}

/** A device command that cannot be made as asked (unknown device or point, not writable). */
export class DeviceCommandError extends Error {}

export class Gateway {
  readonly events: EventBus;
  readonly pipeline: Pipeline;
  readonly broker: LocalBroker;
  readonly access: AccessControl;
  readonly publisher: LivePublisher;
  readonly state: LiveState;
  simulator: SimServer | null = null;
  readonly buses = new Map<string, ModbusBus>();
  readonly pollers: DevicePoller[] = [];
  readonly gpio: { cfg: SiteConfig['gpio'][number]; input: GpioInput }[] = [];
  /** Built in start(): opening the database is I/O. */
  db: Db | null = null;
  /** The raw store's own file (null when storage.rawRetentionHours is 0). */
  rawDb: Db | null = null;
  outbox: Outbox | null = null;
  raw: RawStore | null = null;
  aggregator: WindowAggregator | null = null;
  alarms: AlarmMonitor | null = null;
  personal: PersonalAggregator | null = null;
  /** dp mode: the per-resident privacy ledger. */
  ledger: PrivacyLedger | null = null;
  uplink: Uplink | null = null;
  /** Wall clock against monotonic: steps (NTP on a box without RTC) go to the aggregator. */
  readonly clockWatch: ClockWatch;
  readonly clockSync: ClockSync;
  private off: (() => void)[] = [];
  private started = false;
  private pseudonymise: ((v: number) => string) | null = null;
  /** Each device's profile with the site's privacy overrides applied. */
  private readonly deviceProfiles = new Map<string, Profile>();
  private counters: CounterStore | null = null;
  /** The backend GPIO inputs open their lines on: deps.gpioBackend, else the simulator's when
   * simulator.gpio is on (chosen per config in buildIo), else sysfs. */
  private gpioBackend: GpioBackend;
  private readonly injectedGpio?: GpioBackend;
  private readonly onoff = new OnoffBackend();
  private readonly stateDir: string;
  /** The running config's facilities and each device's, resolved in buildIo (per config). */
  private placement: { list: ResolvedFacility[]; byDevice: Map<string, ResolvedFacility> } = { list: [], byDevice: new Map() };
  /** The App's audit chain head, reported in the status message (anchored off the box). */
  private readonly auditHead?: () => { seq: number; head: string };
  /** The App's remote configuration hooks for the uplink (src/remote/). */
  private readonly uplinkRemote?: UplinkRemote;
  /** The site config running now; replaced by reloadIo(). */
  config: SiteConfig;
  /** Bus scans started from the page, one per bus at a time (src/scan/). */
  private readonly scans: BusScans;

  /** `deps.gpioBackend` replaces the sysfs backend (tests inject edges; a libgpiod backend
   * may follow behind the same interface). */
  constructor(
    config: SiteConfig,
    private readonly profiles: ReadonlyMap<string, Profile>,
    private readonly log: Logger,
    deps: { gpioBackend?: GpioBackend; stateDir?: string; auditHead?: () => { seq: number; head: string }; uplinkRemote?: UplinkRemote } = {},
  ) {
    this.config = config;
    this.injectedGpio = deps.gpioBackend;
    this.gpioBackend = deps.gpioBackend ?? this.onoff;
    // Without an App (tests, benches) the state folder is the database's.
    this.stateDir = deps.stateDir ?? path.dirname(path.resolve(config.storage.path));
    this.auditHead = deps.auditHead;
    this.uplinkRemote = deps.uplinkRemote;
    this.events = new EventBus(log);
    // The site secret is read in start(); until then no identifier can be decoded anyway.
    this.pipeline = new Pipeline(this.events, (v) => {
      if (!this.pseudonymise) throw new Error('pseudonymiser used before start');
      return this.pseudonymise(v);
    });
    this.buildIo(config);
    this.scans = new BusScans(() => this.buses, () => this.config, profiles, log);
    this.access = new AccessControl({
      anonymous: config.localBroker.anonymous,
      accounts: config.localBroker.accounts,
      personalTopics: this.personalTopics(),
      anonymousSubscribe: ['community/#'],
    });
    this.broker = new LocalBroker(config.localBroker, log, this.access);
    this.publisher = new LivePublisher(config.site.gatewayId, this.broker, this.events, config.localBroker.live);
    this.state = new LiveState(this.events);
    this.clockWatch = new ClockWatch(log);
    this.clockWatch.onStep((s) => this.aggregator?.onClockStep(s));
    this.clockSync = new ClockSync(config.clock);
    this.clockSync.onChange((synced) => log.info({ synchronized: synced, source: this.clockSync.source }, synced ? 'clock synchronised' : 'clock not synchronised: items to the platform are flagged clockUnsynced'));
  }

  /** Items made while the time daemon says the clock is not synchronised carry
   * clockUnsynced: true, so the platform can tell their timestamps may be off. */
  private flagClock(items: Iterable<OutboxItem>): Iterable<OutboxItem> {
    if (this.clockSync.synchronized !== false) return items;
    // Lazily, item by item, as the window's items are made (WindowSink).
    const flag = (it: OutboxItem): OutboxItem => (it.kind === 'agg' || it.kind === 'alarm' ? { ...it, body: JSON.stringify({ ...(JSON.parse(it.body) as object), clockUnsynced: true }) } : it);
    return { *[Symbol.iterator]() { for (const it of items) yield flag(it); } };
  }

  /** The io side of a config: profiles with overrides, simulator, buses, pollers, GPIO
   * inputs. No I/O here; startIo() and stopIo() do it. */
  private buildIo(c: SiteConfig): void {
    const log = this.log;
    this.deviceProfiles.clear();
    for (const d of c.devices) this.deviceProfiles.set(d.id, effectiveProfile(this.profiles.get(d.profile)!, d.privacy));
    for (const g of c.gpio) this.deviceProfiles.set(g.id, gpioProfile(g));
    this.simulator = buildSimulator(c, this.profiles, log);
    this.gpioBackend = this.injectedGpio ?? simulatedGpio(c) ?? this.onoff;
    this.buses.clear();
    this.pollers.length = 0;
    this.gpio.length = 0;
    for (const b of c.buses) {
      const bus = new ModbusBus({ id: b.id, timeoutMs: b.timeoutMs, retries: b.retries, reconnectMinMs: b.reconnectMinMs, reconnectMaxMs: b.reconnectMaxMs }, buildTransport(b), log);
      // The live messages of a round of polls go out together when it ends (LocalBroker.liveRound).
      bus.onRound((open) => this.broker.liveRound(open));
      this.buses.set(b.id, bus);
    }
    this.placement = { list: allFacilities(c), byDevice: facilityByDevice(c) };
    const places = this.placement.byDevice;
    for (const d of c.devices) {
      const busCfg = c.buses.find((b) => b.id === d.bus)!;
      this.pollers.push(
        new DevicePoller(
          { id: d.id, facility: places.get(d.id)!.type, unitId: d.unitId, pollMs: d.pollMs, maxGap: d.maxGap ?? busCfg.maxGap, profile: this.deviceProfiles.get(d.id)! },
          this.buses.get(d.bus)!,
          this.pipeline,
          { offlineBackoffMaxMs: busCfg.offlineBackoffMaxMs },
          log,
        ),
      );
    }
    for (const g of c.gpio) {
      const point = this.deviceProfiles.get(g.id)!.points[0]!;
      const source = { id: g.id, facility: places.get(g.id)!.type };
      const input = new GpioInput(
        { id: g.id, line: g.line, chip: g.chip, activeLow: g.activeLow, debounceMs: g.debounceMs, pollMs: g.pollMs, reportMs: g.reportMs, kind: g.kind },
        this.gpioBackend,
        { load: (id) => this.counters?.load(id), save: (id, v) => this.counters?.save(id, v) },
        (value, ts) => this.pipeline.input(source, point, value, ts),
        log,
      );
      this.gpio.push({ cfg: g, input });
    }
  }

  private personalTopics(): Set<string> {
    const gw = this.config.site.gatewayId;
    // A device's scan message carries all its points: personal if any one of them is.
    return new Set(
      this.allDevices().flatMap((d) => {
        const personal = d.profile.points.filter((p) => p.privacy === 'personal');
        return personal.length ? [...personal.map((p) => readingTopic(gw, d.facility, d.id, p.id)), scanTopic(gw, d.facility, d.id)] : [];
      }),
    );
  }

  private async startIo(): Promise<void> {
    await this.simulator?.start();
    await Promise.all([...this.buses.values()].map((b) => b.start()));
    for (const p of this.pollers) p.start();
    this.startGpio();
  }

  private async stopIo(): Promise<void> {
    for (const g of this.gpio) g.input.stop();
    await Promise.all(this.pollers.map((p) => p.stop()));
    // A scan's request on the link is failed by the bus stopping: cancelled, not waited for.
    const scans = this.scans.abortAll();
    await Promise.all([...this.buses.values()].map((b) => b.stop()));
    await Promise.all(scans);
    await this.simulator?.stop();
  }

  /** Applies a config whose changes are all on the io side (buses, devices, gpio, alarms,
   * simulator, site.name, log): pollers, buses, inputs and the simulator are rebuilt while the
   * local broker, the store, the open aggregation windows and the uplink session run on. */
  async reloadIo(next: SiteConfig): Promise<void> {
    const before = new Set(this.allDevices().map((d) => `${d.id}\u0000${d.facility}`));
    await this.stopIo();
    this.config = next;
    this.buildIo(next);
    const devices = this.allDevices();
    for (const key of before) {
      if (!devices.some((d) => `${d.id}\u0000${d.facility}` === key)) this.publisher.forget(key.split('\u0000')[0]!);
    }
    this.access.setPersonalTopics(this.personalTopics());
    this.raw?.reclassify(this.classes(devices));
    this.aggregator?.reconfigure(this.aggregatedPoints(devices), devices);
    this.alarms?.reconfigure(next.alarms, devices);
    this.personal?.reconfigure(devices);
    if (next.log?.level) this.log.level = next.log.level;
    this.outbox?.append([this.inventory(devices)]);
    await this.startIo();
    this.log.info({ devices: this.pollers.length, gpio: this.gpio.length, buses: this.buses.size }, 'configuration reloaded');
  }

  /** A fresh inventory item in the outbox now (a platform's `inventory` command); false
   * without an uplink. */
  resendInventory(): boolean {
    if (!this.outbox) return false;
    this.outbox.append([this.inventory()]);
    return true;
  }

  /** Try-read for the technician's page: any range of a device, through its bus queue like
   * a poll (never interleaved with one), without retries. */
  async tryRead(deviceId: string, req: Omit<ReadRequest, 'unitId'>): Promise<number[]> {
    const { bus, unitId } = this.deviceBus(deviceId);
    return bus.read({ ...req, unitId }, { retries: 0 });
  }

  /** "Read now" for a device not in the config yet (the page's device form): every point of
   * `profileId` at `unitId`, read once through the running bus' queue like a poll, without
   * retries, decoded and scaled. Only public values are returned: the result reaches the page.
   * A block the device refuses is reported on its points; a dead link rejects (ModbusError). */
  async readUnsaved(busId: string, unitId: number, profileId: string): Promise<UnsavedPoint[]> {
    const bus = this.buses.get(busId);
    if (!bus) throw new DeviceCommandError(`no bus ${busId} is running: apply the bus first`);
    if (bus.status !== 'up') throw new DeviceCommandError(`bus ${busId} is ${bus.status}${bus.lastError ? `: ${bus.lastError}` : ''}`);
    const profile = this.profiles.get(profileId);
    if (!profile) throw new DeviceCommandError(`no profile ${profileId}`);
    // A unit that is already a configured device keeps its privacy whatever profile is tried on
    // it: a register its own profile (with the site's overrides) holds as personal or identifier
    // is withheld even where the tried profile calls it public.
    const existing = this.config.devices.find((d) => d.bus === busId && d.unitId === unitId);
    const guarded = (existing ? this.deviceProfiles.get(existing.id)?.points ?? [] : []).filter((p) => p.privacy !== 'public');
    const covered = (p: Profile['points'][number]) => {
      const a = pointSpan(p);
      return guarded.some((g) => g.register === p.register && pointSpan(g).from <= a.to && pointSpan(g).to >= a.from);
    };
    const out: UnsavedPoint[] = [];
    for (const b of planReads(profile.points, profile.holes, { maxGap: 0, maxRegisters: profile.maxRegistersPerRead })) {
      let words: number[] | null = null;
      let error: string | null = null;
      try {
        words = await bus.read({ unitId, register: b.register, start: b.start, count: b.count }, { retries: 0 });
      } catch (err) {
        // The link itself down: nothing more can be read. A refusal of one block: say so there.
        if (err instanceof ModbusLinkError || !(err instanceof ModbusError)) throw err;
        error = err.message;
      }
      for (const p of b.points) {
        const base = { id: p.id, unit: p.unit, privacy: p.privacy, ...(p.name ? { name: p.name } : {}) };
        if (error !== null || !words) out.push({ ...base, error: error ?? 'no answer' });
        else if (p.privacy !== 'public' || covered(p)) out.push({ ...base, withheld: true });
        else out.push({ ...base, value: scaleValue(p, decodeRegisters(words, p.address - b.start, p.type, p.order, p.bit)) });
      }
    }
    return out;
  }

  /** A write of a point its profile marks writable (value in engineering units). Rejects
   * with DeviceCommandError for a request that cannot be made, or a ModbusError from the device. */
  async writePoint(deviceId: string, pointId: string, value: unknown): Promise<void> {
    const { bus, unitId } = this.deviceBus(deviceId);
    const point = this.deviceProfiles.get(deviceId)!.points.find((p) => p.id === pointId);
    if (!point) throw new DeviceCommandError(`device ${deviceId} has no point ${pointId}`);
    const req = encodeWrite(point, unitId, value);
    if (typeof req === 'string') throw new DeviceCommandError(req);
    await bus.write(req);
  }

  /** Starts a scan of a running bus through its own queue, at low priority (a poll waits for
   * at most one scan request); throws ScanRefused for an unknown bus, a scan already running
   * on it, or a bus that is not up. */
  startScan(busId: string, opts: { units?: readonly number[]; timeoutMs?: number } = {}): BusScanState {
    return this.scans.start(busId, opts);
  }

  /** The running or last scan of a bus (progress, then result), or null. */
  scanState(busId: string): BusScanState | null {
    return this.scans.state(busId);
  }

  /** Cancels a running scan of the bus; false if none was running. */
  cancelScan(busId: string): Promise<boolean> {
    return this.scans.cancel(busId);
  }

  private deviceBus(deviceId: string): { bus: ModbusBus; unitId: number } {
    const d = this.config.devices.find((x) => x.id === deviceId);
    if (!d) throw new DeviceCommandError(`no Modbus device ${deviceId}`);
    return { bus: this.buses.get(d.bus)!, unitId: d.unitId };
  }

  /** true while every loop makes progress, else the first reason it does not: the service
   * watchdog pings only while this holds, so systemd restarts a daemon that is stuck. `mono` is
   * a monotonic time (monoNow): a step of the wall clock is not a stall. */
  liveness(mono = monoNow()): true | string {
    if (!this.started) return true;
    for (const p of this.pollers) {
      const why = p.stalled(mono);
      if (why) return why;
    }
    return this.aggregator?.stalled(mono) ?? true;
  }

  /** The facility types and the facilities of the running config (the page's names and choices). */
  facilities(): { types: FacilityType[]; list: ResolvedFacility[]; byDevice: Map<string, ResolvedFacility> } {
    return { types: facilityTypesOf(this.profiles).all(), ...this.placement };
  }

  /** A device's effective profile (with the site's privacy overrides). */
  profileOf(deviceId: string): Profile | undefined {
    return this.deviceProfiles.get(deviceId);
  }

  private aggregatedPoints(devices: ReturnType<Gateway['allDevices']>) {
    return devices.flatMap((d) => d.profile.points.filter(uplinked).map((point) => ({ device: d.id, facility: d.facility, ...placementFields(d), point })));
  }

  private classes(devices: ReturnType<Gateway['allDevices']>) {
    return devices.flatMap((d) => d.profile.points.map((p) => ({ device: d.id, point: p.id, privacy: p.privacy })));
  }

  /** Where a device's profile came from, for the inventory; a GPIO input's is built in. */
  private readonly profileSource = (deviceId: string): ProfileSource | undefined => {
    if (this.config.gpio.some((g) => g.id === deviceId)) return 'shipped';
    const d = this.config.devices.find((x) => x.id === deviceId);
    return d ? profileOrigin(this.profiles, d.profile)?.source : undefined;
  };

  /** Modbus devices and GPIO inputs alike, with their effective profiles and their facility:
   * the type (topics, items' `facility`), the facility id and the house code. */
  private allDevices(): InventoryDevice[] {
    const places = this.placement.byDevice;
    return [...this.config.devices, ...this.config.gpio].map((d) => {
      const f = places.get(d.id)!;
      return { id: d.id, facility: f.type, ...placementFields(f), profile: this.deviceProfiles.get(d.id)! };
    });
  }

  /** The inventory item of the running config: facilities and devices. */
  private inventory(devices = this.allDevices()): OutboxItem {
    const c = this.config;
    return inventoryItem(devices, Date.now(), this.profileSource, { facilities: this.placement.list, types: facilityTypesOf(this.profiles), ...(c.site.name !== undefined ? { name: c.site.name } : {}) });
  }

  async start(): Promise<void> {
    // Consumers first, producers last, so no reading is emitted into a part not yet running.
    try {
      this.clockSync.start();
      this.clockWatch.start();
      this.startStore();
      await this.broker.start();
      this.state.start();
      this.publisher.start();
      this.uplink!.start();
      await this.startIo();
      this.started = true;
      this.log.info({ gatewayId: this.config.site.gatewayId, devices: this.pollers.length, buses: this.buses.size }, 'gateway started');
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** GPIO inputs never stop the gateway: a missing sysfs (Raspberry Pi 5 on current
   * Raspberry Pi OS) or a bad line leaves that input unavailable, said in the log and status. */
  private startGpio(): void {
    if (this.gpio.length === 0) return;
    for (const { cfg, input } of this.gpio) {
      input.start();
      const online = input.stats.mode !== 'unavailable';
      this.pipeline.availability({ id: cfg.id, facility: cfg.facility }, online, online ? undefined : input.stats.lastError);
    }
    const unavailable = this.gpio.filter((g) => g.input.stats.mode === 'unavailable');
    if (unavailable.length) this.log.warn({ inputs: unavailable.map((g) => g.cfg.id) }, `${unavailable.length} of ${this.gpio.length} GPIO inputs unavailable; everything else keeps running`);
  }

  /** Database, outbox, raw store, aggregation, alarms and the uplink, wired to the event bus. */
  private startStore(): void {
    const c = this.config;
    try {
      this.db = openDatabase(c.storage.path, (w) => this.log.warn(w));
    } catch (err) {
      throw new Error(`storage.path ${c.storage.path}: ${(err as Error).message}`);
    }
    const outbox = new Outbox(this.db, c.storage.outbox, this.log);
    outbox.start();
    this.outbox = outbox;
    // The raw store's own file, only when it keeps anything (docs/RELIABILITY.md, "Raw store").
    if (c.storage.rawRetentionHours > 0) {
      try {
        this.rawDb = openRawDatabase(rawDatabasePath(c.storage.path), (w) => this.log.warn(w));
      } catch (err) {
        throw new Error(`storage.path ${rawDatabasePath(c.storage.path)}: ${(err as Error).message}`);
      }
    }
    this.raw = new RawStore(this.rawDb, c.storage.rawRetentionHours, this.log);
    const raw0 = this.raw;
    raw0.watchSpace(c.storage.path);
    outbox.onDiskFull(() => raw0.makeRoom());
    outbox.useReserve(new DiskReserve(`${path.resolve(c.storage.path)}.reserve`));
    this.counters = new CounterStore(this.db);
    const secretFile = c.privacy.secretFile ?? path.join(this.stateDir, 'site-secret');
    this.pseudonymise = pseudonymiser(loadOrCreateSiteSecret(secretFile));
    const devices = this.allDevices();
    const sink = (items: OutboxItem[]) => void outbox.append(this.flagClock(items));
    // Each window's items commit with the end of that window: after a step back and a
    // restart, nothing before it is sent again.
    const windowSink = (items: Iterable<OutboxItem>, closedUpTo: number) => void outbox.append(this.flagClock(items), { marks: { [CLOSED_UP_TO]: closedUpTo } });
    const p = c.privacy;
    this.ledger = p.mode === 'dp' ? new PrivacyLedger(p.ledgerFile ?? path.join(this.stateDir, LEDGER_FILE), p.annualEpsilon!).load() : null;
    const personal = new PersonalAggregator(devices, { k: p.k, mode: p.mode, epsilon: p.epsilon, delta: p.delta, ...(this.ledger ? { ledger: this.ledger } : {}) }, personalWindowSeconds(c) * 1000);
    this.personal = personal;
    this.aggregator = new WindowAggregator(
      { windowSeconds: c.uplink.windowSeconds, closeDelayMs: Math.min(2000, c.uplink.windowSeconds * 100), closedUpTo: outbox.mark(CLOSED_UP_TO), checkClock: () => void this.clockWatch.check() },
      this.aggregatedPoints(devices),
      devices,
      windowSink,
      this.log,
      Date.now,
      [personal],
    );
    // Raised alarms survive a restart in the counters table: not raised twice, cleared once.
    this.alarms = new AlarmMonitor(c.alarms, devices, sink, { store: new SqliteAlarmState(this.db), log: this.log });
    this.uplink = new Uplink(c.uplink, { communityCode: c.site.communityCode, gatewayId: c.site.gatewayId, version: packageVersion() }, outbox, this.log, () => this.health(), this.uplinkRemote);
    const raw = this.raw;
    const agg = this.aggregator;
    const alarms = this.alarms;
    this.off.push(
      this.events.on('reading', (r) => {
        raw.add(r);
        agg.onReading(r);
        alarms.onReading(r);
        personal.onReading(r);
      }),
      this.events.on('scan', (s) => personal.onScan(s)),
      this.events.on('deviceStatus', (s) => agg.onStatus(s)),
    );
    raw.reclassify(this.classes(devices));
    raw.start();
    agg.start();
    outbox.append([this.inventory(devices)]);
  }

  /** Producers first; then the uplink says offline, the store is flushed and closed; then
   * the local broker after it has said bridge/state offline. */
  async stop(): Promise<void> {
    await this.stopIo();
    this.clockWatch.stop();
    this.clockSync.stop();
    for (const f of this.off) f();
    this.off = [];
    this.aggregator?.stop();
    this.raw?.stop();
    await this.uplink?.stop();
    this.outbox?.stop();
    this.db?.close();
    this.db = null;
    this.rawDb?.close();
    this.rawDb = null;
    this.counters = null;
    if (this.started) await this.publisher.stop();
    this.state.stop();
    await this.broker.stop();
    if (this.started) this.log.info('gateway stopped');
    this.started = false;
  }

  /** "Reconnect uplink now" (web page): null when this gateway has no uplink. */
  reconnectUplink(): ReturnType<Uplink['reconnectNow']> | null {
    return this.uplink?.reconnectNow() ?? null;
  }

  snapshot(): unknown {
    return {
      version: packageVersion(),
      site: this.config.site,
      process: process.memoryUsage(),
      clock: { now: Date.now(), ...this.clockState() },
      localBroker: { port: this.broker.port, clients: this.broker.clients },
      uplink: this.uplink && { state: this.uplink.state, url: this.config.uplink.url, lastError: this.uplink.lastError, connectedSince: this.uplink.connectedSince, ...this.uplink.stats },
      outbox: this.outbox?.stats() ?? null,
      rawStore: this.raw && { written: this.raw.written, dropped: this.raw.dropped, pruned: this.raw.pruned, evicted: this.raw.evicted },
      alarms: this.alarms?.active() ?? [],
      buses: [...this.buses.values()].map((b) => ({ id: b.opts.id, type: this.busType(b.opts.id), endpoint: b.transport.endpoint, state: b.status, lastError: b.lastError, queue: b.queueLength, ...b.transport.stats })),
      devices: this.pollers.map((p) => ({
        id: p.device.id,
        facility: p.device.facility,
        profile: p.device.profile.id,
        online: p.stats.online,
        polls: p.stats.polls,
        failedPolls: p.stats.failedPolls,
        requests: p.stats.requests,
        errors: p.stats.errors,
        lastSuccess: p.stats.lastSuccess,
        lastError: p.stats.lastError,
        requestsPerScan: p.readPlan.length,
        unsupportedPoints: p.stats.unsupportedPoints,
        points: this.lastPoints(p.device.id),
      })),
      gpio: this.gpio.map(({ cfg, input }) => ({
        id: cfg.id,
        facility: cfg.facility,
        kind: cfg.kind,
        line: cfg.line,
        chip: cfg.chip ?? null,
        ...input.stats,
        point: GPIO_POINT[cfg.kind],
        points: this.lastPoints(cfg.id),
      })),
    };
  }

  private lastPoints(device: string): Record<string, unknown> {
    return Object.fromEntries([...(this.state.last.get(device)?.values() ?? [])].map((r) => [r.point, publicReading(r)]));
  }

  private busType(id: string): BusConfig['type'] {
    return this.config.buses.find((b) => b.id === id)!.type;
  }

  /** Bus, device and pin health for the uplink status message (contract: StatusHealth). */
  health(): StatusHealth {
    return {
      buses: [...this.buses.values()].map((b) => {
        const s = b.transport.stats;
        return { id: b.opts.id, type: this.busType(b.opts.id), state: b.status, requests: s.requests, responses: s.responses, timeouts: s.timeouts, crcErrors: s.crcErrors, shortFrames: s.shortFrames, exceptions: s.exceptions, badFrames: s.badFrames };
      }),
      devices: this.pollers.map((p) => ({ id: p.device.id, online: p.stats.online, lastSuccess: p.stats.lastSuccess, requests: p.stats.requests, ...p.stats.errors })),
      gpio: this.gpio.map(({ cfg, input }) => ({ id: cfg.id, mode: input.stats.mode, lastChange: input.stats.lastChange })),
      ...(this.auditHead ? { audit: this.auditHead() } : {}),
      clock: this.clockState(),
    };
  }

  /** The clock as the status message and the page report it. */
  clockState(): NonNullable<StatusHealth['clock']> {
    return {
      synchronized: this.clockSync.synchronized,
      source: this.clockSync.source,
      steps: this.clockWatch.steps,
      lastStep: this.clockWatch.lastStep,
      lateReadings: this.aggregator?.late ?? 0,
      skippedWindows: this.aggregator?.windowsSkipped ?? 0,
    };
  }
}
