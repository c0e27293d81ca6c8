// The latest reading per point and the availability per device, kept for the web page and
// the status API. It only listens: nothing here reaches into drivers.
import type { EventBus } from '../events.js';
import type { DeviceStatus, Reading } from '../types.js';

export class LiveState {
  readonly last = new Map<string, Map<string, Reading>>();
  readonly status = new Map<string, DeviceStatus>();
  private off: (() => void)[] = [];

  constructor(private readonly events: EventBus) {}

  start(): void {
    this.off.push(
      this.events.on('reading', (r) => {
        let m = this.last.get(r.device);
        if (!m) this.last.set(r.device, (m = new Map()));
        m.set(r.point, r);
      }),
      this.events.on('deviceStatus', (s) => this.status.set(s.device, s)),
    );
  }

  stop(): void {
    for (const f of this.off) f();
    this.off = [];
  }
}
