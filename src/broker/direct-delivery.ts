// The gateway's own live messages (QoS 0, not retained) written straight to each subscriber's
// connection, without aedes' per-message machinery: aedes makes a packet object, a delivery
// closure and a setImmediate per subscriber and serialises the message once per subscriber
// (aedes lib/client.js deliver0), and matches the topic in its topic tree every time. That
// was most of the gateway's CPU per reading on the local side (docs/PERFORMANCE.md). Here the
// message is serialised once, and the clients whose subscriptions match a topic are worked out
// once per topic until a subscription changes.
//
// What aedes did that still holds here:
// - A QoS 0 message is delivered at QoS 0 whatever the subscription's QoS (MQTT 3.1.1 section
//   3.8.4: the lesser of the two) and never queued for an offline session (section 3.1.2.4:
//   QoS 0 messages may be left out of a session).
// - Each delivery passes the ACL (authorizeForward) as the account is now.
// - A client with several matching subscriptions gets the message once (aedes' dedupe; section
//   3.3.5 allows either).
// - A subscriber that does not read: aedes closed it after its drainTimeout. Here its messages
//   are dropped (counted) while more than maxBufferedBytes wait in its connection, and it is
//   closed after drainTimeoutMs of that, so a stuck reader costs neither memory nor the others.
import type { Duplex } from 'node:stream';
import type { Aedes, Client } from 'aedes';
import { matches } from './access.js';
import { monoNow } from '../time/monotonic.js';

export interface DirectDeliveryOptions {
  /** Bytes waiting in a connection beyond which a live message for it is dropped. */
  maxBufferedBytes: number;
  /** A connection over maxBufferedBytes this long is closed. */
  drainTimeoutMs: number;
}

type Forward = (client: Client, packet: { topic: string }) => unknown;

const NOBODY: readonly Client[] = Object.freeze([]);
/** Topics indexed at most (the gateway's own topics are bounded by its config; this bounds a bug). */
const MAX_TOPICS = 100_000;

function sameClients(a: readonly Client[], b: readonly Client[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** MQTT 3.1.1 section 3.3: PUBLISH with QoS 0, DUP 0, RETAIN 0 (fixed header byte 0x30), the
 * Remaining Length (section 2.2.3), the topic as a length-prefixed UTF-8 string (section 1.5.3;
 * no packet identifier at QoS 0, section 3.3.2.2), then the payload. */
export function publishFrame(topic: string, payload: string | Buffer): Buffer {
  const topicBytes = Buffer.byteLength(topic);
  if (topicBytes > 0xffff) throw new Error(`topic of ${topicBytes} bytes: over the 65535 an MQTT string may hold`);
  const payloadBytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const remaining = 2 + topicBytes + payloadBytes;
  if (remaining > 268_435_455) throw new Error(`PUBLISH of ${remaining} bytes: over MQTT's largest Remaining Length`);
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  const buf = Buffer.allocUnsafe(1 + lengthBytes + remaining);
  buf[0] = 0x30;
  let at = 1;
  let n = remaining;
  do {
    let digit = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) digit |= 0x80;
    buf[at++] = digit;
  } while (n > 0);
  buf.writeUInt16BE(topicBytes, at);
  at += 2;
  at += buf.write(topic, at, 'utf8');
  if (typeof payload === 'string') buf.write(payload, at, 'utf8');
  else payload.copy(buf, at);
  return buf;
}

export class DirectDelivery {
  /** Clients whose subscriptions match a topic; cleared when any subscription may have changed. */
  private readonly byTopic = new Map<string, readonly Client[]>();
  private last: readonly Client[] = NOBODY;
  /** Connections over maxBufferedBytes, since when (monotonic ms). */
  private readonly overSince = new WeakMap<Duplex, number>();
  /** Live messages not written to a subscriber whose connection held more than maxBufferedBytes. */
  dropped = 0;
  /** Subscribers closed for holding more than maxBufferedBytes for drainTimeoutMs. */
  closedSlow = 0;

  constructor(
    private readonly opts: DirectDeliveryOptions,
    /** The logged-in clients. */
    private readonly clients: () => Iterable<Client>,
    private readonly authorizeForward: Forward,
    private readonly onSlowClose: (client: Client) => void,
  ) {}

  /** Follows aedes' subscription changes: 'subscribe' is emitted in the same turn as the
   * SUBACK. A client logging in (whose persistent session's subscriptions are restored before
   * its CONNACK) and one leaving are the caller's to report (invalidate()). */
  attach(aedes: Aedes): void {
    aedes.on('subscribe', this.invalidate);
    aedes.on('unsubscribe', this.invalidate);
    aedes.on('clientDisconnect', this.invalidate);
  }

  readonly invalidate = (): void => {
    this.byTopic.clear();
    this.last = NOBODY;
  };

  /** Writes the message to every matching subscriber. */
  deliver(topic: string, payload: string | Buffer): void {
    const targets = this.subscribersOf(topic);
    if (targets.length === 0) return;
    const packet = { topic };
    let frame: Buffer | null = null;
    for (const client of targets) {
      const conn = client.conn as unknown as Duplex;
      if (client.closed || conn.destroyed) continue;
      if (!this.authorizeForward(client, packet)) continue;
      if (conn.writableLength > this.opts.maxBufferedBytes) {
        this.tooSlow(client, conn);
        continue;
      }
      this.overSince.delete(conn);
      frame ??= publishFrame(topic, payload);
      conn.write(frame);
    }
  }

  private tooSlow(client: Client, conn: Duplex): void {
    this.dropped++;
    const now = monoNow();
    const since = this.overSince.get(conn);
    if (since === undefined) this.overSince.set(conn, now);
    else if (now - since >= this.opts.drainTimeoutMs) {
      this.overSince.delete(conn);
      this.closedSlow++;
      this.onSlowClose(client);
      conn.destroy();
    }
  }

  private subscribersOf(topic: string): readonly Client[] {
    let found = this.byTopic.get(topic);
    if (found) return found;
    const list: Client[] = [];
    for (const c of this.clients()) {
      // aedes' own record of a client's subscriptions (lib/client.js; not in its typings).
      for (const filter in (c as Client & { subscriptions: Record<string, unknown> }).subscriptions) {
        if (matches(filter, topic)) {
          list.push(c);
          break;
        }
      }
    }
    // Most topics have the same subscribers: the previous list is shared instead of kept twice
    // (10,000 points, 10,000 entries).
    found = list.length === 0 ? NOBODY : sameClients(list, this.last) ? this.last : list;
    this.last = found;
    if (this.byTopic.size >= MAX_TOPICS) this.byTopic.clear();
    this.byTopic.set(topic, found);
    return found;
  }
}
