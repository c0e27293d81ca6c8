// Caps on what clients can make the broker hold in memory. aedes keeps everything in its
// in-memory persistence (aedes-persistence): inbound QoS 2 messages awaiting PUBREL,
// messages queued for persistent sessions, retained messages. None of these had a byte cap,
// and a persistent session's share was never freed. This wraps the persistence methods
// that store and free them (no fork of aedes):
//  - incomingStorePacket / incomingDelPacket / cleanIncoming: inbound QoS 2 per client
//    (count and bytes) and in total; over a cap the store fails, and aedes closes that
//    connection (MQTT 3.1.1 has no way to refuse one QoS 2 PUBLISH);
//  - outgoingEnqueue(Combi) / outgoingClearMessageId: messages queued per client (count and
//    bytes) and in total; over a cap a message is not queued for that client (counted);
//  - storeRetained: retained messages per account and in total (count and bytes); over a cap
//    the retained publish is refused. local-broker.ts refuses it earlier, in
//    authorizePublish (before any PUBACK), with retainedFits(); this is the hard stop.
// The gateway's own retained messages (availability, bridge state: one per device) are
// counted apart and never refused.

export interface MemoryLimits {
  /** Inbound QoS 2 messages awaiting PUBREL, per client (also aedes' maxInflightInbound). */
  inflightPerClient: number;
  inflightBytesPerClient: number;
  inflightBytesTotal: number;
  /** Messages queued for delivery (QoS 1/2, sent or not yet acknowledged), per client id. */
  queuedPerClient: number;
  queuedBytesPerClient: number;
  queuedBytesTotal: number;
  retainedPerAccount: number;
  retainedBytesPerAccount: number;
  retainedTotal: number;
  retainedBytesTotal: number;
}

export const GATEWAY_OWNER = '';

interface Usage {
  count: number;
  bytes: number;
}

interface StoredPacket {
  topic: string;
  payload?: Buffer | string;
  messageId?: number;
}

/** What aedes-persistence offers that is wrapped here (promise style, as aedes 1.x calls it). */
export interface WrappablePersistence {
  incomingStorePacket(client: { id: string }, packet: StoredPacket): Promise<void>;
  incomingDelPacket(client: { id: string }, packet: StoredPacket): Promise<void>;
  cleanIncoming?(client: { id: string }): Promise<void>;
  outgoingEnqueue(sub: { clientId: string }, packet: StoredPacket): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: StoredPacket): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: StoredPacket): Promise<StoredPacket | undefined>;
  outgoingStream(client: { id: string }): AsyncIterable<StoredPacket>;
  storeRetained(packet: StoredPacket): Promise<void>;
  cleanSubscriptions(client: { id: string }): Promise<void>;
  delWill(client: { id: string; brokerId?: string }): Promise<unknown>;
}

export class CapError extends Error {}

/** Bytes a stored message holds: topic and payload (the object around them is small). */
export function packetBytes(p: StoredPacket): number {
  const payload = p.payload === undefined ? 0 : typeof p.payload === 'string' ? Buffer.byteLength(p.payload) : p.payload.length;
  return Buffer.byteLength(p.topic ?? '') + payload;
}

export class MemoryGuard {
  private readonly incoming = new Map<string, Map<number, number>>();
  private incomingBytes = 0;
  private readonly outgoing = new Map<string, Usage>();
  private outgoingBytes = 0;
  private readonly retained = new Map<string, { owner: string; bytes: number }>();
  private readonly retainedBy = new Map<string, Usage>();
  private readonly retainedAll: Usage = { count: 0, bytes: 0 };
  /** Who published a retained message, keyed by its payload buffer (aedes hands the same
   * Buffer from authorizePublish to storeRetained; the packet object is a copy). */
  private readonly owners = new WeakMap<object, string>();
  private persistence: WrappablePersistence | null = null;

  /** Inbound QoS 2 messages refused (connection closed) by a cap. */
  refusedInflight = 0;
  /** Messages not queued for a client over its (or the total) queue cap. */
  droppedQueued = 0;
  /** Retained publishes refused by a cap. */
  refusedRetained = 0;

  constructor(readonly limits: MemoryLimits) {}

  /** Current usage (for metrics, tests and diagnostics). */
  get usage(): { inflightMessages: number; inflightBytes: number; queuedMessages: number; queuedBytes: number; retainedMessages: number; retainedBytes: number } {
    let inflight = 0;
    for (const m of this.incoming.values()) inflight += m.size;
    let queued = 0;
    for (const u of this.outgoing.values()) queued += u.count;
    return { inflightMessages: inflight, inflightBytes: this.incomingBytes, queuedMessages: queued, queuedBytes: this.outgoingBytes, retainedMessages: this.retainedAll.count, retainedBytes: this.retainedAll.bytes };
  }

  retainedUsage(owner: string): Usage {
    return { ...(this.retainedBy.get(owner) ?? { count: 0, bytes: 0 }) };
  }

  /** Would a retained message of `bytes` on `topic` from `owner` stay within the caps? */
  retainedFits(owner: string, topic: string, bytes: number): boolean {
    if (owner === GATEWAY_OWNER || bytes === 0) return true;
    const old = this.retained.get(topic);
    const mine = this.retainedBy.get(owner) ?? { count: 0, bytes: 0 };
    const sameOwner = old?.owner === owner;
    const count = mine.count + (sameOwner ? 0 : 1);
    const ownBytes = mine.bytes - (sameOwner ? old.bytes : 0) + bytes;
    const replacesCounted = old !== undefined && old.owner !== GATEWAY_OWNER;
    const total = this.retainedAll.count + (replacesCounted ? 0 : 1);
    const totalBytes = this.retainedAll.bytes - (replacesCounted ? old.bytes : 0) + bytes;
    const l = this.limits;
    return count <= l.retainedPerAccount && ownBytes <= l.retainedBytesPerAccount && total <= l.retainedTotal && totalBytes <= l.retainedBytesTotal;
  }

  /** Marks a client's retained publish with its owner (called from authorizePublish). */
  noteOwner(payload: Buffer, owner: string): void {
    this.owners.set(payload, owner);
  }

  /** Wraps the persistence's store and free methods in place. */
  install(p: WrappablePersistence): void {
    this.persistence = p;
    const l = this.limits;

    const storeIncoming = p.incomingStorePacket.bind(p);
    p.incomingStorePacket = async (client, packet) => {
      // Reserved synchronously: aedes stores a whole read chunk's packets concurrently.
      let mine = this.incoming.get(client.id);
      if (!mine) this.incoming.set(client.id, (mine = new Map<number, number>()));
      const id = packet.messageId ?? 0;
      const had = mine.has(id);
      const old = mine.get(id) ?? 0;
      const bytes = packetBytes(packet);
      const count = mine.size + (had ? 0 : 1);
      const ownBytes = sum(mine) - old + bytes;
      if (count > l.inflightPerClient || ownBytes > l.inflightBytesPerClient || this.incomingBytes - old + bytes > l.inflightBytesTotal) {
        this.refusedInflight++;
        if (mine.size === 0) this.incoming.delete(client.id);
        throw new CapError(`inbound QoS 2 cap: ${count} messages / ${ownBytes} bytes awaiting PUBREL for this client`);
      }
      mine.set(id, bytes);
      this.incomingBytes += bytes - old;
      try {
        await storeIncoming(client, packet);
      } catch (err) {
        this.incomingBytes -= bytes - old;
        if (had) mine.set(id, old);
        else mine.delete(id);
        throw err;
      }
    };
    const delIncoming = p.incomingDelPacket.bind(p);
    p.incomingDelPacket = async (client, packet) => {
      await delIncoming(client, packet);
      this.forgetIncoming(client.id, packet.messageId ?? 0);
    };
    if (p.cleanIncoming) {
      const clean = p.cleanIncoming.bind(p);
      p.cleanIncoming = async (client) => {
        await clean(client);
        this.forgetIncoming(client.id);
      };
    }

    const enqueue = p.outgoingEnqueue.bind(p);
    p.outgoingEnqueue = async (sub, packet) => {
      if (await this.queueFits(sub.clientId, packet)) return enqueue(sub, packet);
    };
    const enqueueCombi = p.outgoingEnqueueCombi.bind(p);
    p.outgoingEnqueueCombi = async (subs, packet) => {
      const fit: { clientId: string }[] = [];
      for (const s of subs) if (await this.queueFits(s.clientId, packet)) fit.push(s);
      if (fit.length > 0) return enqueueCombi(fit, packet);
    };
    const clear = p.outgoingClearMessageId.bind(p);
    p.outgoingClearMessageId = async (client, packet) => {
      const removed = await clear(client, packet);
      const u = this.outgoing.get(client.id);
      if (removed && u) {
        const b = Math.min(u.bytes, packetBytes(removed));
        u.count = Math.max(0, u.count - 1);
        u.bytes -= b;
        this.outgoingBytes -= b;
        if (u.count === 0) {
          this.outgoingBytes -= u.bytes;
          this.outgoing.delete(client.id);
        }
      }
      return removed;
    };

    const storeRetained = p.storeRetained.bind(p);
    p.storeRetained = async (packet) => {
      const payload = packet.payload;
      const owner = (payload && typeof payload === 'object' ? this.owners.get(payload) : undefined) ?? GATEWAY_OWNER;
      const bytes = payload === undefined || payload.length === 0 ? 0 : packetBytes(packet);
      if (!this.retainedFits(owner, packet.topic, bytes)) {
        this.refusedRetained++;
        throw new CapError(`retained cap reached for ${owner}`);
      }
      await storeRetained(packet);
      this.setRetained(packet.topic, owner, bytes);
    };
  }

  /** A persistent session expired: frees everything aedes holds for that client id. */
  async expire(clientId: string): Promise<void> {
    const p = this.persistence;
    if (!p) return;
    const c = { id: clientId };
    await p.cleanSubscriptions(c);
    await p.cleanIncoming?.(c);
    const queued: StoredPacket[] = [];
    for await (const pkt of p.outgoingStream(c)) queued.push(pkt);
    for (const pkt of queued) await p.outgoingClearMessageId(c, pkt);
    this.forgetIncoming(clientId);
    const u = this.outgoing.get(clientId);
    if (u) this.outgoingBytes -= u.bytes;
    this.outgoing.delete(clientId);
  }

  /** Whether one more message fits the client's queue; recounts the real queue before saying
   * no (the running byte count can drift high: a QoS 2 flow replaces its PUBLISH by a PUBREL). */
  private async queueFits(clientId: string, packet: StoredPacket): Promise<boolean> {
    const bytes = packetBytes(packet);
    const l = this.limits;
    const over = (u: Usage) => u.count + 1 > l.queuedPerClient || u.bytes + bytes > l.queuedBytesPerClient || this.outgoingBytes + bytes > l.queuedBytesTotal;
    let u = this.outgoing.get(clientId) ?? { count: 0, bytes: 0 };
    if (over(u) && this.persistence) {
      // Recount from aedes' own queues: this client's, and every other's when the total is what
      // says no (a queue aedes dropped without clearing each message, as for a clean session
      // that went away, would otherwise hold the total high for good).
      const ids = this.outgoingBytes + bytes > l.queuedBytesTotal ? [...new Set([clientId, ...this.outgoing.keys()])] : [clientId];
      for (const id of ids) {
        const real: Usage = { count: 0, bytes: 0 };
        for await (const pkt of this.persistence.outgoingStream({ id })) {
          real.count++;
          real.bytes += packetBytes(pkt);
        }
        this.outgoingBytes += real.bytes - (this.outgoing.get(id)?.bytes ?? 0);
        if (real.count === 0 && id !== clientId) this.outgoing.delete(id);
        else this.outgoing.set(id, real);
      }
      u = this.outgoing.get(clientId)!;
    }
    if (over(u)) {
      this.droppedQueued++;
      return false;
    }
    u.count++;
    u.bytes += bytes;
    this.outgoingBytes += bytes;
    this.outgoing.set(clientId, u);
    return true;
  }

  private forgetIncoming(clientId: string, messageId?: number): void {
    const mine = this.incoming.get(clientId);
    if (!mine) return;
    if (messageId === undefined) {
      this.incomingBytes -= sum(mine);
      this.incoming.delete(clientId);
      return;
    }
    this.incomingBytes -= mine.get(messageId) ?? 0;
    mine.delete(messageId);
    if (mine.size === 0) this.incoming.delete(clientId);
  }

  private setRetained(topic: string, owner: string, bytes: number): void {
    const old = this.retained.get(topic);
    if (old) {
      this.retained.delete(topic);
      const u = this.retainedBy.get(old.owner)!;
      u.count--;
      u.bytes -= old.bytes;
      if (u.count === 0) this.retainedBy.delete(old.owner);
      if (old.owner !== GATEWAY_OWNER) {
        this.retainedAll.count--;
        this.retainedAll.bytes -= old.bytes;
      }
    }
    if (bytes === 0) return; // an empty retained message deletes it (MQTT 3.1.1 section 3.3.1.3)
    this.retained.set(topic, { owner, bytes });
    const u = this.retainedBy.get(owner) ?? { count: 0, bytes: 0 };
    u.count++;
    u.bytes += bytes;
    this.retainedBy.set(owner, u);
    if (owner !== GATEWAY_OWNER) {
      this.retainedAll.count++;
      this.retainedAll.bytes += bytes;
    }
  }
}

function sum(m: Map<number, number>): number {
  let s = 0;
  for (const v of m.values()) s += v;
  return s;
}
