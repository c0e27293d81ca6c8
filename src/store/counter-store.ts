// Pulse counts of GPIO counter inputs (meal turnstile, people counter), kept in the
// database's counters table so that a restart or a power cut does not reset them. Each
// increment is its own committed write: pulses come a few per second at most.
import type { Db } from './database.js';

const PREFIX = 'gpio.count.';

export class CounterStore {
  private readonly get;
  private readonly put;

  constructor(db: Db) {
    this.get = db.prepare('SELECT value FROM counters WHERE name = ?').pluck();
    this.put = db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value');
  }

  load(id: string): number | undefined {
    const v = this.get.get(PREFIX + id) as number | undefined;
    return v ?? undefined;
  }

  save(id: string, value: number): void {
    this.put.run(PREFIX + id, value);
  }
}
