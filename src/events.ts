// Typed in-process event bus. A failing listener is logged and never breaks the emitter
// or the other listeners (the zigbee2mqtt eventBus rule): one bad consumer must not stop polling.
import type { Logger } from './log.js';
import type { Reading, DeviceStatus, ScanDone } from './types.js';

export interface GatewayEvents {
  reading: Reading;
  deviceStatus: DeviceStatus;
  scan: ScanDone;
}

type Listener<T> = (payload: T) => void;

export class EventBus {
  private readonly listeners: { [K in keyof GatewayEvents]?: Listener<GatewayEvents[K]>[] } = {};

  constructor(private readonly log: Logger) {}

  on<K extends keyof GatewayEvents>(event: K, fn: Listener<GatewayEvents[K]>): () => void {
    const list = (this.listeners[event] ??= []) as Listener<GatewayEvents[K]>[];
    list.push(fn);
    return () => {
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    };
  }

  emit<K extends keyof GatewayEvents>(event: K, payload: GatewayEvents[K]): void {
    const list = this.listeners[event] as Listener<GatewayEvents[K]>[] | undefined;
    if (!list) return;
    for (const fn of list) {
      try {
        fn(payload);
      } catch (err) {
        this.log.error({ err, event }, 'event listener failed');
      }
    }
  }
}
