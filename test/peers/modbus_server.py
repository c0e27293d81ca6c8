#!/usr/bin/python3
"""pymodbus test peer: serves a register map described by a JSON file.

Run with Debian's interpreter (/usr/bin/python3, package python3-pymodbus 3.0):
    /usr/bin/python3 test/peers/modbus_server.py MAP.json

MAP.json:
  {"port": 15020,                      # TCP port on 127.0.0.1
   "serial": "/dev/pts/N", "baudrate": 9600,   # instead of port: RTU on a pty
   "ignoreMissingUnits": true,         # unknown unit ids stay silent (a dead device)
   "units": {"1": {
       "failing": false,               # every read answers exception 4 SLAVE DEVICE FAILURE
       "hr": {"0": 17, ...}, "ir": {...}, "co": {"0": 1}, "di": {...},   # raw words / bits
       "typed": [{"kind": "hr", "address": 10, "type": "float32", "order": "CDAB", "value": 1.5}]}}}

Typed values are packed here with Python's struct module, independently of the gateway's
encoder, so a decode test compares two separate implementations. Only the listed addresses
exist: reading any other address answers exception 2 ILLEGAL DATA ADDRESS.

Every request is printed on stdout as "REQ <unit> <fc> <address> <count>" (flushed), and
"READY" once the server listens, so tests count requests at the server.

"identity": {"VendorName": ..., "ProductCode": ..., "MajorMinorRevision": ...} answers Read
Device Identification (FC 43/14, printed as "REQ <unit> 43 <object id> 0") for every unit,
except a unit with "noIdentity": true (exception 1 ILLEGAL FUNCTION, as a device without
FC 43 answers) and a "failing" unit (exception 4, like its reads).

"kiosk": {"unit": 1, "intervalMs": 250, "cards": [12345678, ...], "seed": 7} turns that unit
into a health kiosk (drivers/fc-health-kiosk-v1.yaml) serving a randomised stream of
measurement sessions: every intervalMs a random card and random values are written to input
registers 1..7, then the counter at 0 advances. Each session is printed as
"EVENT <count> <card> <systolic> <diastolic> <pulse> <weight_raw> <glucose_raw>".
"""
import asyncio
import json
import random
import struct
import sys

from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext, ModbusSparseDataBlock
from pymodbus.device import ModbusDeviceIdentification
from pymodbus.mei_message import ReadDeviceInformationRequest
from pymodbus.pdu import ModbusExceptions
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer
from pymodbus.transaction import ModbusRtuFramer

FMT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f", "float64": ">d"}


def words_of(value, typ, order):
    raw = struct.pack(FMT[typ], int(value) if "int" in typ else float(value))
    words = [raw[i:i + 2] for i in range(0, len(raw), 2)]
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    if order in ("CDAB", "DCBA"):
        words = words[::-1]
    return [int.from_bytes(w, "big") for w in words]


class CountingContext(ModbusSlaveContext):
    def __init__(self, unit, failing, no_identity=False, **kw):
        super().__init__(zero_mode=True, **kw)
        self.unit = unit
        self.failing = failing
        self.no_identity = no_identity

    def validate(self, fc_as_hex, address, count=1):
        print(f"REQ {self.unit} {fc_as_hex} {address} {count}", flush=True)
        if self.failing:
            # Raised inside request.execute: pymodbus answers exception 4 SLAVE DEVICE FAILURE.
            raise RuntimeError("simulated device failure")
        return super().validate(fc_as_hex, address, count)


_read_device_information = ReadDeviceInformationRequest.execute


def read_device_information(self, context):
    # pymodbus answers FC 43 from one global identity without asking the unit's context:
    # counted and refused per unit here, like the reads.
    print(f"REQ {context.unit} 43 {self.object_id} 0", flush=True)
    if context.failing:
        raise RuntimeError("simulated device failure")
    if context.no_identity:
        return self.doException(ModbusExceptions.IllegalFunction)
    return _read_device_information(self, context)


ReadDeviceInformationRequest.execute = read_device_information


def build(spec):
    slaves = {}
    for unit, u in spec["units"].items():
        blocks = {k: {int(a): v for a, v in u.get(k, {}).items()} for k in ("hr", "ir", "co", "di")}
        for t in u.get("typed", []):
            for i, w in enumerate(words_of(t["value"], t["type"], t.get("order", "ABCD"))):
                blocks[t["kind"]][t["address"] + i] = w
        # An empty sparse block would reject the constructor; park a value far away.
        kw = {k: ModbusSparseDataBlock(v or {65000: 0}) for k, v in blocks.items()}
        slaves[int(unit)] = CountingContext(int(unit), u.get("failing", False), u.get("noIdentity", False), **kw)
    return ModbusServerContext(slaves=slaves, single=False)


async def kiosk_stream(context, k):
    rnd = random.Random(k.get("seed", 1))
    unit = int(k["unit"])
    count = 0
    while True:
        await asyncio.sleep(k.get("intervalMs", 250) / 1000)
        card = rnd.choice(k["cards"])
        values = [rnd.randint(95, 185), rnd.randint(55, 115), rnd.randint(48, 115), rnd.randint(400, 950), rnd.randint(35, 120)]
        # Results first, the counter last: a poller that sees the counter advance reads a consistent set.
        context[unit].setValues(4, 1, [card >> 16, card & 0xFFFF] + values)
        count = (count + 1) & 0xFFFF
        context[unit].setValues(4, 0, [count])
        print("EVENT", count, card, *values, flush=True)


async def main():
    spec = json.load(open(sys.argv[1]))
    context = build(spec)
    if "kiosk" in spec:
        asyncio.get_running_loop().create_task(kiosk_stream(context, spec["kiosk"]))
    ignore = spec.get("ignoreMissingUnits", True)
    # Read Device Identification (FC 43/14): pymodbus answers it for every unit from one
    # identity, e.g. {"VendorName": "Eastron", "ProductCode": "SDM120", "MajorMinorRevision": "2.1"}.
    identity = None
    if "identity" in spec:
        identity = ModbusDeviceIdentification(info_name=spec["identity"])
    print("READY", flush=True)
    if "serial" in spec:
        await StartAsyncSerialServer(context, framer=ModbusRtuFramer, port=spec["serial"], identity=identity,
                                     baudrate=spec.get("baudrate", 9600), ignore_missing_slaves=ignore)
    else:
        await StartAsyncTcpServer(context, address=("127.0.0.1", spec["port"]), ignore_missing_slaves=ignore,
                                  identity=identity, allow_reuse_address=True)


if __name__ == "__main__":
    asyncio.run(main())
