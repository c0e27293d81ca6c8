// Alarms: threshold rules from the site config (a fridge above 8 °C for 10 minutes) and alarm
// inputs from the profiles (smoke, gas, emergency button). Raised when the condition has held
// for forSeconds, cleared when it stops holding; each change goes to the outbox at once with
// the highest priority, so it overtakes any backlog.
import type { AlarmRule } from '../config/site-schema.js';
import type { Profile } from '../config/profile-schema.js';
import type { OutboxItem } from '../store/outbox.js';
import type { Facility, Reading } from '../types.js';

interface Rule {
  id: string;
  device: string;
  facility: Facility;
  point: string;
  test: (v: number | boolean) => boolean;
  forMs: number;
  severity: 'warning' | 'critical';
  condition: string;
  since: number | null;
  raised: boolean;
}

export interface AlarmState {
  id: string;
  device: string;
  point: string;
  severity: string;
  since: number;
}

type Devices = { id: string; facility: Facility; profile: Profile }[];

export class AlarmMonitor {
  private byPoint = new Map<string, Rule[]>();
  raisedCount = 0;

  constructor(
    rules: AlarmRule[],
    devices: Devices,
    private readonly sink: (items: OutboxItem[]) => void,
  ) {
    this.byPoint = build(rules, devices);
  }

  /** New rules and devices from a reloaded config. A rule kept (same id, device and point)
   * keeps its state, so a raised alarm is not raised twice; a raised alarm whose rule is gone
   * is cleared, so the platform does not show it forever. */
  reconfigure(rules: AlarmRule[], devices: Devices, now = Date.now()): void {
    const next = build(rules, devices);
    const old = new Map([...this.byPoint.values()].flat().map((r) => [`${r.id}\u0000${r.device}\u0000${r.point}`, r]));
    for (const r of [...next.values()].flat()) {
      const prev = old.get(`${r.id}\u0000${r.device}\u0000${r.point}`);
      if (!prev) continue;
      old.delete(`${r.id}\u0000${r.device}\u0000${r.point}`);
      r.since = prev.since;
      r.raised = prev.raised;
    }
    for (const gone of old.values()) {
      if (gone.raised) this.sink([{ kind: 'alarm', ts: now, body: JSON.stringify({ ts: now, alarm: gone.id, state: 'cleared', severity: gone.severity, facility: gone.facility, device: gone.device, point: gone.point, value: null, condition: 'rule removed from the configuration' }) }]);
    }
    this.byPoint = next;
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
    const rules = this.byPoint.get(`${r.device}\u0000${r.point}`);
    if (!rules) return;
    for (const rule of rules) {
      if (rule.test(r.value)) {
        rule.since ??= r.ts;
        if (!rule.raised && r.ts - rule.since >= rule.forMs) {
          rule.raised = true;
          this.raisedCount++;
          this.emit(rule, 'raised', r);
        }
      } else {
        rule.since = null;
        if (rule.raised) {
          rule.raised = false;
          this.emit(rule, 'cleared', r);
        }
      }
    }
  }

  private emit(rule: Rule, state: 'raised' | 'cleared', r: Reading): void {
    const body = JSON.stringify({
      ts: r.ts,
      alarm: rule.id,
      state,
      severity: rule.severity,
      facility: rule.facility,
      device: rule.device,
      point: rule.point,
      value: r.value,
      condition: rule.condition,
    });
    this.sink([{ kind: 'alarm', ts: r.ts, body }]);
  }
}

function build(rules: AlarmRule[], devices: Devices): Map<string, Rule[]> {
  const byPoint = new Map<string, Rule[]>();
  const add = (r: Rule) => {
    const k = `${r.device}\u0000${r.point}`;
    const list = byPoint.get(k) ?? [];
    list.push(r);
    byPoint.set(k, list);
  };
  const facilityOf = new Map(devices.map((d) => [d.id, d.facility]));
  for (const r of rules) {
    const base = { id: r.id, device: r.device, facility: facilityOf.get(r.device)!, point: r.point, forMs: r.forSeconds * 1000, severity: r.severity, since: null, raised: false };
    const hold = r.forSeconds > 0 ? ` for ${r.forSeconds} s` : '';
    if (r.above !== undefined) add({ ...base, test: (v) => Number(v) > r.above!, condition: `> ${r.above}${hold}` });
    else if (r.below !== undefined) add({ ...base, test: (v) => Number(v) < r.below!, condition: `< ${r.below}${hold}` });
    else add({ ...base, test: (v) => Boolean(v) === r.equals, condition: `= ${String(r.equals)}${hold}` });
  }
  for (const d of devices) {
    for (const p of d.profile.points) {
      if (!p.alarm || rules.some((r) => r.device === d.id && r.point === p.id)) continue;
      const when = p.alarm.when;
      add({ id: p.id, device: d.id, facility: d.facility, point: p.id, test: (v) => Boolean(v) === when, forMs: 0, severity: p.alarm.severity, condition: `= ${String(when)}`, since: null, raised: false });
    }
  }
  return byPoint;
}
