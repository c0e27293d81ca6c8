// The framing guard on its own: Remaining Length across chunk boundaries, the size limit,
// malformed fixed headers (MQTT 3.1.1 sections 2.2.1 to 2.2.3).
import { describe, expect, it } from 'vitest';
import { PacketGuard } from '../../src/broker/packet-guard.js';
import { connectPacket, pingreq, publishPacket } from './raw-mqtt.js';

const connect = connectPacket('guard-test');
const publish = (bytes: number) => publishPacket('t/x', Buffer.alloc(bytes, 0x61));

/** Feeds `data` to a fresh guard in chunks of the given sizes (the last one takes the rest). */
function feed(max: number, data: Buffer, sizes: number[] = []): (string | null)[] {
  const g = new PacketGuard(max);
  const out: (string | null)[] = [];
  let at = 0;
  for (const n of sizes) {
    out.push(g.check(data.subarray(at, at + n)));
    at += n;
  }
  if (at < data.length) out.push(g.check(data.subarray(at)));
  return out;
}

describe('packet guard', () => {
  it('passes a well-formed stream whatever the chunking, byte by byte included', () => {
    const stream = Buffer.concat([connect, publish(10), publish(200), publish(20_000), pingreq, publish(0)]);
    expect(feed(65_536, stream)).toEqual([null]);
    expect(feed(65_536, stream, Array.from({ length: stream.length }, () => 1)).every((v) => v === null)).toBe(true);
    for (const cut of [1, 2, 3, connect.length + 1, connect.length + 2, connect.length + 3, 500]) {
      expect(feed(65_536, stream, [cut, 7, 3]).every((v) => v === null), `cut at ${cut}`).toBe(true);
    }
  });

  it('refuses a packet announcing more than the limit as soon as its Remaining Length is complete', () => {
    const big = publish(2000);
    // The limit counts the whole packet: type byte + 2 length bytes + body.
    expect(feed(big.length, Buffer.concat([connect, big]))).toEqual([null]);
    expect(feed(big.length - 1, Buffer.concat([connect, big]))).toEqual(['oversized']);
    // Only the header has arrived, split inside the Remaining Length: refused before the body.
    expect(feed(1024, Buffer.concat([connect, big.subarray(0, 3)]), [connect.length + 2])).toEqual([null, 'oversized']);
    // 268,435,455 announced (0xff 0xff 0xff 0x7f), nothing more sent.
    expect(feed(262_144, Buffer.concat([connect, Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])]))).toEqual(['oversized']);
  });

  it('tells how many bytes before the offending packet are whole packets', () => {
    const g = new PacketGuard(1024);
    const small = publish(10);
    expect(g.check(Buffer.concat([connect, small, publish(2000)]))).toBe('oversized');
    expect(g.validBytes).toBe(connect.length + small.length);
    // The offending header began in an earlier chunk: nothing of this chunk is whole.
    const h = new PacketGuard(1024);
    expect(h.check(Buffer.concat([connect, small, Buffer.from([0x30, 0xd0])]))).toBeNull();
    expect(h.check(Buffer.from([0x0f]))).toBe('oversized');
    expect(h.validBytes).toBe(0);
  });

  it('refuses a Remaining Length of more than four bytes (section 2.2.3)', () => {
    expect(feed(262_144, Buffer.concat([connect, Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01])]))).toEqual(['malformed']);
    expect(feed(262_144, Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toEqual(['malformed']);
  });

  it('refuses reserved and server-only packet types, wrong flags, and a first packet other than CONNECT', () => {
    const after = (b: number[]) => feed(262_144, Buffer.concat([connect, Buffer.from(b)]))[0];
    expect(after([0x00, 0x00])).toBe('malformed'); // type 0, reserved
    expect(after([0xf0, 0x00])).toBe('malformed'); // type 15, reserved
    expect(after([0x20, 0x02, 0, 0])).toBe('malformed'); // CONNACK from a client
    expect(after([0x36, 0x00])).toBe('malformed'); // PUBLISH QoS 3
    expect(after([0x80, 0x00])).toBe('malformed'); // SUBSCRIBE without flags 0010
    expect(after([0xc1, 0x00])).toBe('malformed'); // PINGREQ with a flag set
    expect(after([0xc0, 0x00])).toBeNull(); // PINGREQ
    expect(after([0x82, 0x00])).toBeNull(); // SUBSCRIBE header (the body is aedes' business)
    expect(feed(262_144, pingreq)).toEqual(['malformed']);
  });
});
