// What a bus needs from a link: open it, run reads (one at a time, or up to maxInFlight on a
// Modbus TCP connection that allows it), learn when it drops.
// Modbus TCP and Modbus RTU implement it; the bus owns the queue.
import type { RegisterKind } from '../../config/profile-schema.js';
import type { DeviceIdPart } from './device-id.js';

export interface ReadRequest {
  unitId: number;
  register: RegisterKind;
  start: number;
  count: number;
}

/** A write of holding registers (FC 06/16) or coils (FC 05/15). */
export interface WriteRequest {
  unitId: number;
  register: 'holding' | 'coil';
  start: number;
  /** Register words, or 0/1 per coil. */
  values: number[];
}

export interface LinkStats {
  requests: number;
  responses: number;
  timeouts: number;
  exceptions: number;
  badFrames: number;
  staleFrames: number;
  /** Received bytes dropped to get back in step after garbage (TCP), or with a damaged frame. */
  discardedBytes: number;
  /** RTU only: frames whose CRC did not check, and frames cut short (both retried). */
  crcErrors: number;
  shortFrames: number;
  /** Bytes written and received on the link (the RTU wire budget). */
  txBytes: number;
  rxBytes: number;
}

export interface ModbusTransport {
  /** Connects; rejects with a ModbusLinkError naming the endpoint. */
  open(): Promise<void>;
  close(): Promise<void>;
  readonly isOpen: boolean;
  /** Requests the link takes at once: 1 on a serial line (one master, one frame on the wire). */
  readonly maxInFlight: number;
  /** One read. Resolves with register words, or with 0/1 per bit for coils and discretes. */
  read(req: ReadRequest, timeoutMs: number): Promise<number[]>;
  /** One write; resolves when the device has confirmed it. */
  write(req: WriteRequest, timeoutMs: number): Promise<void>;
  /** One Read Device Identification request (FC 43/14, basic objects from `objectId`). */
  identify(unitId: number, objectId: number, timeoutMs: number): Promise<DeviceIdPart>;
  /** Called once each time an open link drops. */
  onDrop(cb: (reason: string) => void): void;
  readonly stats: LinkStats;
  readonly endpoint: string;
}

export function emptyStats(): LinkStats {
  return { requests: 0, responses: 0, timeouts: 0, exceptions: 0, badFrames: 0, staleFrames: 0, discardedBytes: 0, crcErrors: 0, shortFrames: 0, txBytes: 0, rxBytes: 0 };
}
