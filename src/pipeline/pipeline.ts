// pipeline: decode -> scale -> range/quality check. Turns poll results and GPIO input values
// into Readings and hands them on through the event bus (local broker, raw store, aggregation).
import type { Point } from '../config/profile-schema.js';
import type { EventBus } from '../events.js';
import type { PolledDevice, PollSink } from '../io/modbus/device-poller.js';
import type { ReadBlock } from '../io/modbus/read-plan.js';
import { decodeRegisters } from '../io/modbus/codec.js';
import { seriesKey, type Quality, type Reading } from '../types.js';
import { checkRange, scaleValue } from './scale.js';

/** Where a reading comes from: a polled Modbus device or a GPIO input. */
type Source = Pick<PolledDevice, 'id' | 'facility'>;

export class Pipeline implements PollSink {
  readings = 0;
  /** Series keys of each read block's points, made on the block's first reply (a poller
   * keeps its blocks until it plans again). */
  private readonly blockKeys = new WeakMap<ReadBlock, { device: string; keys: string[] }>();

  /** `pseudonymise` turns an identifier's value into its keyed pseudonym here, at the edge:
   * nothing after the pipeline ever sees a card number in clear. */
  constructor(
    private readonly events: EventBus,
    private readonly pseudonymise: (value: number) => string,
  ) {}

  block(device: PolledDevice, block: ReadBlock, values: number[], ts: number): void {
    const keys = this.keysOf(device, block);
    const points = block.points;
    for (let i = 0; i < points.length; i++) {
      const p = points[i]!;
      const raw = decodeRegisters(values, p.address - block.start, p.type, p.order, p.bit);
      if (p.privacy === 'identifier') {
        // 0 means "no card" by convention: no pseudonym for nobody.
        const v = Number(raw);
        this.emit(device, p, ts, v === 0 ? null : this.pseudonymise(v), 'good', undefined, keys[i]);
        continue;
      }
      const value = scaleValue(p, raw);
      this.emit(device, p, ts, value, checkRange(p, value), undefined, keys[i]);
    }
  }

  private keysOf(device: PolledDevice, block: ReadBlock): string[] {
    const c = this.blockKeys.get(block);
    if (c && c.device === device.id) return c.keys;
    const keys = block.points.map((p) => seriesKey({ device: device.id, point: p.id }));
    this.blockKeys.set(block, { device: device.id, keys });
    return keys;
  }

  scanDone(device: PolledDevice, ts: number): void {
    this.events.emit('scan', { device: device.id, facility: device.facility, ts });
  }

  failed(device: PolledDevice, points: readonly Point[], quality: Quality, detail: string, ts: number): void {
    for (const p of points) this.emit(device, p, ts, null, quality, detail);
  }

  /** A GPIO input: the value is already logical (contact state or pulse count). Each change
   * is a scan of its own (for the live scan message). */
  input(device: Source, p: Point, value: boolean | number, ts: number): void {
    this.emit(device, p, ts, value, 'good');
    this.events.emit('scan', { device: device.id, facility: device.facility, ts });
  }

  availability(device: Source, online: boolean, reason?: string): void {
    this.events.emit('deviceStatus', { device: device.id, facility: device.facility, online, ...(reason ? { reason } : {}) });
  }

  private emit(device: Source, p: Point, ts: number, value: number | boolean | string | null, quality: Quality, detail?: string, key?: string): void {
    this.readings++;
    // One shape for every reading (detail always present), so the listeners stay monomorphic.
    const r: Reading = {
      device: device.id,
      facility: device.facility,
      point: p.id,
      ts,
      value,
      quality,
      unit: p.unit,
      privacy: p.privacy,
      kind: p.kind,
      detail: detail || undefined,
      key: key ?? seriesKey({ device: device.id, point: p.id }),
    };
    this.events.emit('reading', r);
  }
}
