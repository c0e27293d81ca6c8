// mqtt.js's outgoing store for the uplink: it keeps what a PUBACK needs to find its message
// (the message id), not the payload. mqtt.js puts a deep copy of every QoS 1 packet there to
// resend it on a reconnect of the same client; the uplink never does that (a fresh client per
// connection, reconnectPeriod 0; unacknowledged rows are read again from the outbox), so the
// copy was only memory: a second copy of every in-flight payload, alive until its PUBACK, which
// while draining a backlog was promoted out of V8's young generation and held until a full GC.
// mqtt.js still makes the copy before put(); dropped here, it is garbage at once (a scavenge frees it).
import { Readable } from 'node:stream';
import { Store } from 'mqtt';

type Packet = Parameters<Store['put']>[0];
type DoneCallback = Parameters<Store['put']>[1];
type PacketStream = ReturnType<Store['createStream']>;

export class AckOnlyStore extends Store {
  override put(packet: Packet, cb: DoneCallback): this {
    // The packet is mqtt.js's own clone (the original is the one written to the socket).
    if (packet.cmd === 'publish') packet.payload = '';
    return super.put(packet, cb);
  }

  /** Nothing to replay on connect: payloads are not kept, and each client connects once. */
  override createStream(): PacketStream {
    const empty = new Readable({ objectMode: true, read() { this.push(null); } });
    return empty as unknown as PacketStream;
  }
}
