// The PDU part shared by Modbus TCP and RTU: request bodies (jsmodbus' codecs) and the
// unpacking of read replies into words or bits.
import jsmodbus from 'jsmodbus';
import type { ReadRequest } from './transport.js';

const { requests: Req } = jsmodbus;

export const FC = { coil: 1, discrete: 2, holding: 3, input: 4 } as const;

export function requestBody(req: ReadRequest) {
  switch (req.register) {
    case 'holding':
      return new Req.ReadHoldingRegistersRequestBody(req.start, req.count);
    case 'input':
      return new Req.ReadInputRegistersRequestBody(req.start, req.count);
    case 'coil':
      return new Req.ReadCoilsRequestBody(req.start, req.count);
    case 'discrete':
      return new Req.ReadDiscreteInputsRequestBody(req.start, req.count);
  }
}

/** Bytes of data a read reply carries for this request. */
export function replyDataBytes(req: ReadRequest): number {
  return req.register === 'holding' || req.register === 'input' ? req.count * 2 : Math.ceil(req.count / 8);
}
/** Registers are big-endian words; coils and discretes are packed LSB first
 * (Modbus Application Protocol v1.1b3, 6.1 and 6.3). Returns null on a count mismatch. */
export function unpack(req: ReadRequest, buf: Buffer): number[] | null {
  if (req.register === 'holding' || req.register === 'input') {
    if (buf.length !== req.count * 2) return null;
    const out = new Array<number>(req.count);
    for (let i = 0; i < req.count; i++) out[i] = buf.readUInt16BE(2 * i);
    return out;
  }
  if (buf.length !== Math.ceil(req.count / 8)) return null;
  const out = new Array<number>(req.count);
  for (let i = 0; i < req.count; i++) out[i] = (buf[i >> 3]! >> (i & 7)) & 1;
  return out;
}
