// Live readings and availability onto the local broker, on the contract topics:
//   community/<gatewayId>/<facility>/<deviceId>/<point>       {ts, value, unit, quality}
//   community/<gatewayId>/<facility>/<deviceId>/scan          {ts, points: {<point>: {ts, value, unit, quality}}}
//                                                             (opt-in: localBroker.live.perScan)
//   community/<gatewayId>/<facility>/<deviceId>/availability  retained online|offline
//   community/<gatewayId>/bridge/state                        retained online|offline
// Identifier points (card numbers) are never published: they leave io only for privacy.
import type { EventBus } from '../events.js';
import { seriesKey, type Facility, type Reading } from '../types.js';
import type { LocalBroker } from './local-broker.js';

export function readingTopic(gatewayId: string, facility: Facility, device: string, point: string): string {
  return `community/${gatewayId}/${facility}/${device}/${point}`;
}

export function scanTopic(gatewayId: string, facility: Facility, device: string): string {
  return `community/${gatewayId}/${facility}/${device}/scan`;
}

export function bridgeTopic(gatewayId: string): string {
  return `community/${gatewayId}/bridge/state`;
}

/** `{"ts","value","unit","quality"[,"detail"]}`, the same text as JSON.stringify of that
 * object, built from parts: the unit's JSON is made once per unit, numbers print as JSON does
 * (a non-finite one as null). Once per reading, so no object is made for it. */
export function readingPayload(r: Reading): string {
  const v = r.value;
  const value = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : 'null') : v === null ? 'null' : typeof v === 'boolean' ? (v ? 'true' : 'false') : JSON.stringify(v);
  const head = `{"ts":${r.ts},"value":${value},"unit":${unitJson(r.unit)},"quality":"${r.quality}"`;
  return r.detail === undefined ? `${head}}` : `${head},"detail":${JSON.stringify(r.detail)}}`;
}

const unitJsonCache = new Map<string, string>();
function unitJson(unit: string): string {
  let j = unitJsonCache.get(unit);
  if (j === undefined) {
    j = JSON.stringify(unit);
    // Units come from profiles: a handful. The bound only guards against a bug.
    if (unitJsonCache.size < 1000) unitJsonCache.set(unit, j);
  }
  return j;
}

/** Live readings queued inside the broker beyond which new ones are not published: aedes has
 * no back-pressure, and a queue that keeps growing makes delivery slower (mqemitter's
 * Array.shift) until the process collapses (PERFORMANCE.md, peer benchmark). */
export const MAX_PENDING_LIVE = 5000;

/** Which live messages are published (localBroker.live). */
export interface LiveOptions {
  perPoint: boolean;
  perScan: boolean;
}

/** Points of one device collected for its scan message; more than this many readings without
 * a scan's end (a bug, or a source that never ends one) are published as they stand. */
const MAX_SCAN_POINTS = 2000;

interface OpenScan {
  facility: Facility;
  /** `"<point>":{...}` per reading, in the order read. */
  parts: string[];
}

export class LivePublisher {
  private unsubscribe: (() => void)[] = [];
  private readonly known = new Map<string, Facility>();
  /** Topic per series key, made on the series' first reading (facility kept to notice a move). */
  private readonly topics = new Map<string, { facility: Facility; topic: string }>();
  published = 0;
  withheld = 0;
  /** Live readings not published because the broker's subscribers could not keep up. */
  shed = 0;

  private readonly scans = new Map<string, OpenScan>();
  private readonly pointJson = new Map<string, string>();

  constructor(
    private readonly gatewayId: string,
    private readonly broker: LocalBroker,
    private readonly events: EventBus,
    private readonly opts: LiveOptions = { perPoint: true, perScan: false },
  ) {}

  start(): void {
    this.broker.publish(bridgeTopic(this.gatewayId), 'online', { retain: true, qos: 1 });
    this.unsubscribe.push(
      this.events.on('reading', (r) => this.onReading(r)),
      this.events.on('scan', (s) => this.endScan(s.device, s.ts)),
      this.events.on('deviceStatus', (s) => {
        // A device going offline ends its scan: the failed readings go out with it.
        if (!s.online) this.endScan(s.device, Date.now());
        this.known.set(s.device, s.facility);
        this.broker.publish(this.availabilityTopic(s.facility, s.device), s.online ? 'online' : 'offline', { retain: true, qos: 1 });
      }),
    );
  }

  /** Marks every device and the bridge offline; resolves when the broker has sent them. */
  async stop(): Promise<void> {
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    const sent = [...this.known].map(([device, facility]) =>
      this.broker.publishAsync(this.availabilityTopic(facility, device), 'offline', { retain: true, qos: 1 }),
    );
    sent.push(this.broker.publishAsync(bridgeTopic(this.gatewayId), 'offline', { retain: true, qos: 1 }));
    await Promise.all(sent);
  }

  /** A device removed by a config reload: its retained availability is cleared (an empty
   * retained message deletes it, MQTT 3.1.1 section 3.3.1.3). */
  forget(device: string): void {
    const facility = this.known.get(device);
    if (!facility) return;
    this.known.delete(device);
    this.scans.delete(device);
    const prefix = seriesKey({ device, point: '' });
    for (const k of this.topics.keys()) if (k.startsWith(prefix)) this.topics.delete(k);
    this.broker.publish(this.availabilityTopic(facility, device), '', { retain: true, qos: 1 });
  }

  private availabilityTopic(facility: Facility, device: string): string {
    return `community/${this.gatewayId}/${facility}/${device}/availability`;
  }

  private onReading(r: Reading): void {
    if (r.privacy === 'identifier') {
      this.withheld++;
      return;
    }
    // Live values are QoS 0: while the broker's queue is that long, new readings are not
    // published (counted); aggregation and the uplink read the event bus and lose nothing.
    if (this.broker.pending >= MAX_PENDING_LIVE) {
      this.shed++;
      return;
    }
    if (this.opts.perScan) this.addToScan(r);
    if (!this.opts.perPoint) return;
    this.published++;
    this.broker.publish(this.topicOf(r), readingPayload(r));
  }

  private addToScan(r: Reading): void {
    let open = this.scans.get(r.device);
    if (!open) this.scans.set(r.device, (open = { facility: r.facility, parts: [] }));
    let name = this.pointJson.get(r.point);
    if (name === undefined) this.pointJson.set(r.point, (name = JSON.stringify(r.point)));
    open.parts.push(`${name}:${readingPayload(r)}`);
    if (open.parts.length >= MAX_SCAN_POINTS) this.endScan(r.device, r.ts);
  }

  /** One message with every point of the device's scan (each as on its own topic). */
  private endScan(device: string, ts: number): void {
    const open = this.scans.get(device);
    if (!open || open.parts.length === 0) return;
    this.scans.delete(device);
    if (this.broker.pending >= MAX_PENDING_LIVE) {
      this.shed += open.parts.length;
      return;
    }
    this.published += open.parts.length;
    this.broker.publish(scanTopic(this.gatewayId, open.facility, device), `{"ts":${ts},"points":{${open.parts.join(',')}}}`);
  }

  private topicOf(r: Reading): string {
    const k = seriesKey(r);
    const t = this.topics.get(k);
    if (t && t.facility === r.facility) return t.topic;
    const topic = readingTopic(this.gatewayId, r.facility, r.device, r.point);
    this.topics.set(k, { facility: r.facility, topic });
    return topic;
  }
}
