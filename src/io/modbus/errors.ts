// Failures of one Modbus transaction, each mapped to a reading quality by the poller.
import type { Quality } from '../../types.js';

export abstract class ModbusError extends Error {
  abstract readonly quality: Quality;
  /** Worth another attempt on the same request (the bus' retries): no answer, or an answer
   * damaged on the line. An exception is a real answer and is not retried. */
  readonly retryable: boolean = false;
}

/** Names from the Modbus Application Protocol v1.1b3, section 7 "MODBUS Exception Responses". */
const EXCEPTION_NAMES: Record<number, string> = {
  1: 'ILLEGAL FUNCTION',
  2: 'ILLEGAL DATA ADDRESS',
  3: 'ILLEGAL DATA VALUE',
  4: 'SERVER DEVICE FAILURE',
  5: 'ACKNOWLEDGE',
  6: 'SERVER DEVICE BUSY',
  8: 'MEMORY PARITY ERROR',
  10: 'GATEWAY PATH UNAVAILABLE',
  11: 'GATEWAY TARGET DEVICE FAILED TO RESPOND',
};

export class ModbusExceptionError extends ModbusError {
  readonly quality = 'exception' as const;
  constructor(readonly code: number) {
    super(`modbus exception ${code} ${EXCEPTION_NAMES[code] ?? 'UNKNOWN'}`);
  }
  /** 0x0A/0x0B: a TCP gateway could not reach the device behind it: the device is silent. */
  get deviceSilent(): boolean {
    return this.code === 10 || this.code === 11;
  }
}

export class ModbusTimeoutError extends ModbusError {
  readonly quality = 'timeout' as const;
  override readonly retryable = true;
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

export class ModbusLinkError extends ModbusError {
  readonly quality = 'comm_error' as const;
}

/** The reply arrived but is not a valid answer to the request (wrong length, function, count). */
export class ModbusFrameError extends ModbusError {
  readonly quality = 'comm_error' as const;
}

/** An RTU frame damaged on the line: bad CRC, or cut short (Modbus over Serial Line v1.02,
 * 2.5.1.2: the receiver discards a frame whose CRC does not check). */
export class ModbusLineError extends ModbusFrameError {
  override readonly retryable = true;
  constructor(
    readonly reason: 'crc' | 'short',
    message: string,
  ) {
    super(message);
  }
}
