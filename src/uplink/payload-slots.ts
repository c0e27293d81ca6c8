// Reusable payload buffers for the uplink's in-flight messages, one per slot of the window.
// A Buffer per message is external memory that only a GC frees, and while a backlog drains
// the window's payloads outlive the young generation (they wait in the socket's queue until
// the broker reads them), so they piled up until a full GC (10-20 MB). A slot is given back
// on the message's PUBACK: by then the broker has read every byte, so nothing still reads it.

export class PayloadSlots {
  private free: Buffer[] = [];

  constructor(private readonly size: number) {}

  /** A buffer of at least `bytes`: a free slot, or a new one (a single row larger than the
   * usual message gets a buffer of its own size, kept until clear()). */
  take(bytes: number): Buffer {
    const i = this.free.findIndex((b) => b.length >= bytes);
    if (i >= 0) return this.free.splice(i, 1)[0]!;
    return Buffer.allocUnsafeSlow(Math.max(bytes, this.size));
  }

  give(buf: Buffer): void {
    this.free.push(buf);
  }

  /** Forgets the free slots (an idle uplink keeps none). */
  clear(): void {
    this.free = [];
  }
}
