// A framing guard between a client's socket and aedes. aedes has no packet size limit: a
// client announcing a 256 MB PUBLISH would have it buffered in full. The guard follows the
// MQTT fixed headers of the client's byte stream and says when to drop the connection:
// a packet announcing more than maxPacketBytes (before its body arrives), a malformed
// Remaining Length, a reserved packet type or flags, a first packet that is not CONNECT.
// Everything past the fixed header (the bodies) aedes' parser checks as before.
//
// Cost: JS work only for the 2..5 fixed-header bytes of each packet; bodies are skipped by
// arithmetic on the chunk length, and no byte is copied.

export type GuardVerdict = 'oversized' | 'malformed';

/** Packet types a client may send (MQTT 3.1.1 section 2.2.1, Table 2.1): CONNECT, PUBLISH,
 * PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT. 0 and 15 are
 * reserved; CONNACK, SUBACK, UNSUBACK and PINGRESP go only from server to client. */
const CLIENT_TYPES = [1, 3, 4, 5, 6, 7, 8, 10, 12, 14].reduce((m, t) => m | (1 << t), 0);

/** Section 2.2.2, Table 2.2: PUBREL, SUBSCRIBE and UNSUBSCRIBE carry flags 0010, PUBLISH
 * DUP/QoS/RETAIN with QoS 3 forbidden (section 3.3.1.2), every other type 0000. */
function flagsOk(type: number, flags: number): boolean {
  if (type === 3) return (flags & 0b0110) !== 0b0110;
  if (type === 6 || type === 8 || type === 10) return flags === 0b0010;
  return flags === 0;
}

const FIRST_BYTE = 0;
const LENGTH = 1;

export class PacketGuard {
  private state = FIRST_BYTE;
  /** Body bytes of the current packet not yet seen. */
  private skip = 0;
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private first = true;

  /** After a verdict: how many bytes at the start of that chunk are whole packets before the
   * offending one (they may still be handed on; the offending packet's first byte is next). */
  validBytes = 0;

  constructor(private readonly maxPacketBytes: number) {}

  /** Feed the next chunk the client sent (in order); null while the stream is acceptable. */
  check(chunk: Uint8Array): GuardVerdict | null {
    const n = chunk.length;
    let i = 0;
    // Where the packet being read began in this chunk (0: in an earlier chunk).
    let start = 0;
    while (i < n) {
      if (this.skip > 0) {
        const k = Math.min(this.skip, n - i);
        this.skip -= k;
        i += k;
        continue;
      }
      if (this.state === FIRST_BYTE) start = i;
      const b = chunk[i++]!;
      if (this.state === FIRST_BYTE) {
        const type = b >> 4;
        if (!((CLIENT_TYPES >> type) & 1) || !flagsOk(type, b & 0x0f)) return this.fail('malformed', start);
        // Section 3.1.0-1: the first packet from a client MUST be CONNECT.
        if (this.first && type !== 1) return this.fail('malformed', start);
        this.first = false;
        this.state = LENGTH;
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
        continue;
      }
      // Remaining Length, MQTT 3.1.1 section 2.2.3: a varint of 7 bits per byte, low
      // group first, the top bit saying another byte follows; at most four bytes
      // (so at most 268,435,455).
      this.length += (b & 0x7f) * this.multiplier;
      this.lengthBytes++;
      if (b & 0x80) {
        if (this.lengthBytes === 4) return this.fail('malformed', start);
        this.multiplier *= 128;
        continue;
      }
      // The whole packet: type byte, Remaining Length bytes, then the announced body.
      if (1 + this.lengthBytes + this.length > this.maxPacketBytes) return this.fail('oversized', start);
      this.skip = this.length;
      this.state = FIRST_BYTE;
    }
    return null;
  }

  private fail(verdict: GuardVerdict, validBytes: number): GuardVerdict {
    this.validBytes = validBytes;
    return verdict;
  }
}
