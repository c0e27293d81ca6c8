// The link for a configured bus: Modbus TCP or Modbus RTU over a serial port.
import type { BusConfig } from '../../config/site-schema.js';
import type { ModbusTransport } from './transport.js';
import { ModbusTcpTransport } from './tcp-transport.js';
import { ModbusRtuTransport } from './rtu-transport.js';

export function buildTransport(b: BusConfig): ModbusTransport {
  switch (b.type) {
    case 'modbus-tcp':
      return new ModbusTcpTransport({ host: b.host, port: b.port, connectTimeoutMs: Math.max(1000, b.timeoutMs), maxInFlight: b.maxInFlight });
    case 'modbus-rtu':
      return new ModbusRtuTransport({ path: b.path, baudRate: b.baudRate, parity: b.parity, dataBits: b.dataBits, stopBits: b.stopBits });
  }
}
