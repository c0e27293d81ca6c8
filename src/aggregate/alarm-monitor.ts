// Alarms: threshold rules from the site config (a fridge above 8 °C for 10 minutes) and alarm
// inputs from the profiles (smoke, gas, emergency button). Raised when the condition has held
// for forSeconds, cleared when it stops holding; each change goes to the outbox at once with
// the highest priority, so it overtakes any backlog.
//
// forSeconds is measured on the monotonic clock, from when the first reading that holds is
// processed: a step of the wall clock (NTP sync on a box without RTC) neither raises an alarm
// early nor delays it. The wall time of that reading is kept for people (AlarmState.since).
//
// Which alarms are raised is persisted (AlarmStateStore), so that after a restart a raised
// alarm is not sent as raised again; it is cleared, once, by the first good reading after the
// restart that does not hold, and stays raised while no reading comes. A hold time that was
// running at the restart starts over. Order of writes (a crash between the two must never hide
// an alarm; a duplicate is the lesser harm): a raise is appended to the outbox before it is
// persisted (a crash between sends it again after the restart); a clear is persisted before
// it is appended (a crash between leaves the platform showing the alarm until the condition
// comes and goes again, rather than showing it cleared while it holds).
import type { AlarmRule } from '../config/site-schema.js';
import type { Profile } from '../config/profile-schema.js';
import type { OutboxItem } from '../store/outbox.js';
import { placementFields, seriesKey, type Facility, type Placement, type Reading } from '../types.js';
import type { Logger } from '../log.js';
import { monoNow, type MonoClock } from '../time/monotonic.js';

interface Rule {
  id: string;
  device: string;
  facility: Facility;
  point: string;
  test: (v: number | boolean) => boolean;
  forMs: number;
  severity: 'warning' | 'critical';
  condition: string;
  /** Wall time of the first reading that held (for people). */
  since: number | null;
  /** Monotonic time that reading was processed: the hold time counts from here. */
  sinceMono: number | null;
  raised: boolean;
}

/** A raised alarm as persisted across restarts. */
export interface RaisedAlarm {
  id: string;
  device: string;
  point: string;
  facility: Facility;
  severity: string;
  /** Wall time it holds since. */
  since: number;
}

/** Where the set of raised alarms survives a restart (src/store/alarm-state.ts). */
export interface AlarmStateStore {
  load(): RaisedAlarm[];
  /** Replaces the stored set. */
  save(raised: RaisedAlarm[]): void;
}

export interface AlarmMonitorOptions {
  store?: AlarmStateStore;
  mono?: MonoClock;
  /** Wall clock, for the stamps of clears sent without a reading. */
  now?: () => number;
  log?: Logger;
}

export interface AlarmState {
  id: string;
  device: string;
  point: string;
  severity: string;
  since: number;
}

type Devices = ({ id: string; facility: Facility; profile: Profile } & Partial<Placement>)[];

const keyOf = (r: { id: string; device: string; point: string }) => `${r.id}\u0000${r.device}\u0000${r.point}`;

export class AlarmMonitor {
  private byPoint = new Map<string, Rule[]>();
  /** Device id -> its facility id and house code, for the alarm items. */
  private placeOf = new Map<string, Partial<Placement>>();
  raisedCount = 0;

  private readonly mono: MonoClock;
  private readonly now: () => number;

  /** Restores the raised alarms from the store (so this runs at start, with the outbox open):
   * those whose rule is still configured stay raised without being sent again; those whose
   * rule is gone are cleared. */
  constructor(
    rules: AlarmRule[],
    devices: Devices,
    private readonly sink: (items: OutboxItem[]) => void,
    private readonly opts: AlarmMonitorOptions = {},
  ) {
    this.mono = opts.mono ?? monoNow;
    this.now = opts.now ?? Date.now;
    this.byPoint = build(rules, devices);
    this.placeOf = placements(devices);
    const stored = this.opts.store?.load() ?? [];
    if (stored.length === 0) return;
    const rulesByKey = new Map(this.rules().map((r) => [keyOf(r), r]));
    const gone: RaisedAlarm[] = [];
    for (const a of stored) {
      const r = rulesByKey.get(keyOf(a));
      if (!r) {
        gone.push(a);
        continue;
      }
      r.raised = true;
      r.since = a.since;
    }
    if (gone.length) this.clearGone(gone);
  }

  private rules(): Rule[] {
    return [...this.byPoint.values()].flat();
  }

  /** New rules and devices from a reloaded config. A rule kept (same id, device and point)
   * keeps its state, so a raised alarm is not raised twice; a raised alarm whose rule is gone
   * is cleared, so the platform does not show it forever. */
  reconfigure(rules: AlarmRule[], devices: Devices): void {
    const next = build(rules, devices);
    this.placeOf = placements(devices);
    const old = new Map(this.rules().map((r) => [keyOf(r), r]));
    for (const r of [...next.values()].flat()) {
      const prev = old.get(keyOf(r));
      if (!prev) continue;
      old.delete(keyOf(r));
      r.since = prev.since;
      r.sinceMono = prev.sinceMono;
      r.raised = prev.raised;
    }
    this.byPoint = next;
    const gone = [...old.values()].filter((r) => r.raised).map((r) => this.raisedAlarm(r));
    if (gone.length) this.clearGone(gone);
  }

  /** Clears alarms whose rule is no longer configured (persisted first, as every clear). */
  private clearGone(gone: RaisedAlarm[]): void {
    this.persist();
    const now = this.now();
    this.sink(
      gone.map((a) => ({
        kind: 'alarm' as const,
        ts: now,
        body: JSON.stringify({ ts: now, alarm: a.id, state: 'cleared', severity: a.severity, facility: a.facility, ...placementFields(this.placeOf.get(a.device)), device: a.device, point: a.point, value: null, condition: 'rule removed from the configuration' }),
      })),
    );
  }

  /** Alarms currently raised (for the status page). */
  active(): AlarmState[] {
    const out: AlarmState[] = [];
    for (const list of this.byPoint.values()) {
      for (const r of list) if (r.raised) out.push({ id: r.id, device: r.device, point: r.point, severity: r.severity, since: r.since ?? 0 });
    }
    return out;
  }

  onReading(r: Reading): void {
    if (r.quality !== 'good' || r.value === null || typeof r.value === 'string') return;
    const rules = this.byPoint.get(seriesKey(r));
    if (!rules) return;
    const mono = this.mono();
    for (const rule of rules) {
      if (rule.test(r.value)) {
        rule.since ??= r.ts;
        rule.sinceMono ??= mono;
        if (!rule.raised && mono - rule.sinceMono >= rule.forMs) {
          rule.raised = true;
          this.raisedCount++;
          this.emit(rule, 'raised', r);
          this.persist();
        }
      } else {
        rule.since = null;
        rule.sinceMono = null;
        if (rule.raised) {
          rule.raised = false;
          this.persist();
          this.emit(rule, 'cleared', r);
        }
      }
    }
  }

  private raisedAlarm(r: Rule): RaisedAlarm {
    return { id: r.id, device: r.device, point: r.point, facility: r.facility, severity: r.severity, since: r.since ?? this.now() };
  }

  /** Writes the set of raised alarms. A failure is logged, not thrown: the alarm itself is
   * in the outbox, and a lost record only risks a duplicate after a restart. */
  private persist(): void {
    const store = this.opts.store;
    if (!store) return;
    try {
      store.save(this.rules().filter((r) => r.raised).map((r) => this.raisedAlarm(r)));
    } catch (err) {
      this.opts.log?.error({ err }, 'raised alarms could not be persisted; a restart may send one again');
    }
  }

  private emit(rule: Rule, state: 'raised' | 'cleared', r: Reading): void {
    const body = JSON.stringify({
      ts: r.ts,
      alarm: rule.id,
      state,
      severity: rule.severity,
      facility: rule.facility,
      ...placementFields(this.placeOf.get(rule.device)),
      device: rule.device,
      point: rule.point,
      value: r.value,
      condition: rule.condition,
    });
    this.sink([{ kind: 'alarm', ts: r.ts, body }]);
  }
}

/** A device still configured keeps its placement on a clear sent after its rule was removed;
 * a device gone from the config leaves the fields out (they are optional in the contract). */
function placements(devices: Devices): Map<string, Partial<Placement>> {
  return new Map(devices.map((d) => [d.id, placementFields(d)]));
}

function build(rules: AlarmRule[], devices: Devices): Map<string, Rule[]> {
  const byPoint = new Map<string, Rule[]>();
  const add = (r: Rule) => {
    const k = seriesKey(r);
    const list = byPoint.get(k) ?? [];
    list.push(r);
    byPoint.set(k, list);
  };
  const facilityOf = new Map(devices.map((d) => [d.id, d.facility]));
  for (const r of rules) {
    const base = { id: r.id, device: r.device, facility: facilityOf.get(r.device)!, point: r.point, forMs: r.forSeconds * 1000, severity: r.severity, since: null, sinceMono: null, raised: false };
    const hold = r.forSeconds > 0 ? ` for ${r.forSeconds} s` : '';
    if (r.above !== undefined) add({ ...base, test: (v) => Number(v) > r.above!, condition: `> ${r.above}${hold}` });
    else if (r.below !== undefined) add({ ...base, test: (v) => Number(v) < r.below!, condition: `< ${r.below}${hold}` });
    else add({ ...base, test: (v) => Boolean(v) === r.equals, condition: `= ${String(r.equals)}${hold}` });
  }
  for (const d of devices) {
    for (const p of d.profile.points) {
      if (!p.alarm || rules.some((r) => r.device === d.id && r.point === p.id)) continue;
      const when = p.alarm.when;
      add({ id: p.id, device: d.id, facility: d.facility, point: p.id, test: (v) => Boolean(v) === when, forMs: 0, severity: p.alarm.severity, condition: `= ${String(when)}`, since: null, sinceMono: null, raised: false });
    }
  }
  return byPoint;
}
