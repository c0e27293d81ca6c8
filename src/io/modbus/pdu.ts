// The PDU part shared by Modbus TCP and RTU: request bodies (jsmodbus' codecs) and the
// unpacking of read replies into words or bits.
import jsmodbus from 'jsmodbus';
import type { ReadRequest, WriteRequest } from './transport.js';

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

/** FC 05/06 for one value, 15/16 for several (Modbus Application Protocol v1.1b3, 6.5-6.12). */
export function writeFc(req: WriteRequest): number {
  if (req.register === 'coil') return req.values.length === 1 ? 5 : 15;
  return req.values.length === 1 ? 6 : 16;
}

export function writeBody(req: WriteRequest) {
  if (req.register === 'coil') {
    return req.values.length === 1
      ? new Req.WriteSingleCoilRequestBody(req.start, req.values[0] ? 1 : 0)
      : new Req.WriteMultipleCoilsRequestBody(req.start, req.values.map((v) => v !== 0));
  }
  return req.values.length === 1 ? new Req.WriteSingleRegisterRequestBody(req.start, req.values[0]!) : new Req.WriteMultipleRegistersRequestBody(req.start, req.values);
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
