// Which alarms are raised, kept in the database's counters table (one row per raised alarm,
// name "alarm:" + JSON [rule, device, point, facility, severity], value = the wall time it
// was raised since), so that a restart (watchdog kill, power cut, config apply) neither sends
// a still-raised alarm as raised again nor forgets to clear it. No schema of its own: the
// counters table is there in every schema version. Rows change only when an alarm is raised
// or cleared, each change one small committed transaction.
import type { Db } from './database.js';
import type { AlarmStateStore, RaisedAlarm } from '../aggregate/alarm-monitor.js';
import type { Facility } from '../types.js';

const PREFIX = 'alarm:';
// Every name that starts with "alarm:" sorts in [PREFIX, PREFIX_END): a range the primary key serves.
const PREFIX_END = 'alarm;';

export class SqliteAlarmState implements AlarmStateStore {
  private readonly all;
  private readonly clear;
  private readonly put;

  constructor(private readonly db: Db) {
    this.all = db.prepare('SELECT name, value FROM counters WHERE name >= ? AND name < ?');
    this.clear = db.prepare('DELETE FROM counters WHERE name >= ? AND name < ?');
    this.put = db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value');
  }

  load(): RaisedAlarm[] {
    const out: RaisedAlarm[] = [];
    for (const row of this.all.all(PREFIX, PREFIX_END) as { name: string; value: number }[]) {
      const a = parse(row.name.slice(PREFIX.length));
      // A row this version cannot read (hand-edited) is skipped, and dropped at the next save.
      if (a) out.push({ ...a, since: row.value });
    }
    return out;
  }

  /** Replaces the stored set with `raised`, in one transaction. */
  save(raised: RaisedAlarm[]): void {
    this.db.transaction(() => {
      this.clear.run(PREFIX, PREFIX_END);
      for (const a of raised) this.put.run(PREFIX + JSON.stringify([a.id, a.device, a.point, a.facility, a.severity]), Math.round(a.since));
    })();
  }
}

function parse(text: string): Omit<RaisedAlarm, 'since'> | null {
  try {
    const v: unknown = JSON.parse(text);
    if (!Array.isArray(v) || v.length !== 5 || !v.every((x) => typeof x === 'string')) return null;
    const [id, device, point, facility, severity] = v as string[];
    return { id: id!, device: device!, point: point!, facility: facility as Facility, severity: severity! };
  } catch {
    return null;
  }
}
