// Read Device Identification (function 43, MEI type 14; Modbus Application Protocol v1.1b3,
// 6.21): the request a bus scan sends to learn vendor, product code and revision. Shared by the
// TCP and RTU transports, which frame it; parsed here, checked at the edge.

export const FC_MEI = 0x2b;
const MEI_DEVICE_ID = 0x0e;
/** Read device id code 01: the basic objects, in a stream (6.21). */
const BASIC_STREAM = 0x01;

/** Object ids of the basic and regular categories (6.21, table "Object Id"). */
export const DEVICE_ID_OBJECTS: Record<number, string> = {
  0: 'vendorName',
  1: 'productCode',
  2: 'revision',
  3: 'vendorUrl',
  4: 'productName',
  5: 'modelName',
  6: 'userApplicationName',
};

/** One reply: the objects it carried and where the stream goes on, if more follow. */
export interface DeviceIdPart {
  conformity: number;
  /** The object id to ask for next, or null when this reply ended the stream. */
  next: number | null;
  objects: { id: number; value: string }[];
}

/** The PDU after the function code: MEI type, read device id code, first object id. */
export function deviceIdRequestBody(objectId: number): Buffer {
  return Buffer.from([MEI_DEVICE_ID, BASIC_STREAM, objectId & 0xff]);
}

/** Bytes of a reply's PDU after the function code, from `at` in `buf`: a number once the
 * header and every object's length are in, -1 while bytes are still missing, NaN if it cannot
 * be a device-identification reply. */
export function deviceIdBodyLength(buf: Buffer, at: number): number {
  // MEI type, read code, conformity, more follows, next object id, number of objects
  if (buf.length < at + 6) return -1;
  if (buf[at] !== MEI_DEVICE_ID) return Number.NaN;
  let n = 6;
  const objects = buf[at + 5]!;
  for (let i = 0; i < objects; i++) {
    if (buf.length < at + n + 2) return -1;
    n += 2 + buf[at + n + 1]!;
    if (n > 252) return Number.NaN; // a PDU is at most 253 bytes (4.1)
  }
  return n;
}

/** The reply's PDU after the function code, or null if it is not a well-formed one. */
export function parseDeviceIdBody(body: Buffer): DeviceIdPart | null {
  const len = deviceIdBodyLength(body, 0);
  if (!(len === body.length)) return null;
  const more = body[3]!;
  if (more !== 0x00 && more !== 0xff) return null;
  const objects: { id: number; value: string }[] = [];
  let o = 6;
  for (let i = 0; i < body[5]!; i++) {
    const id = body[o]!;
    const n = body[o + 1]!;
    // Values are ASCII strings (6.21); anything else is shown, not trusted.
    objects.push({ id, value: body.subarray(o + 2, o + 2 + n).toString('latin1').replace(/[^\x20-\x7e]/g, '?') });
    o += 2 + n;
  }
  return { conformity: body[2]!, next: more === 0xff ? body[4]! : null, objects };
}
