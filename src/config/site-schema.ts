// Site configuration schema (config/*.yaml). The names here are a contract: other tools,
// the web page and the tests rely on them. Unknown keys are errors (strict objects).
import { z } from 'zod';

const range = (lo: number, hi: number) => z.number().int(`must be a whole number ${lo}..${hi}`).min(lo, `must be ${lo}..${hi}`).max(hi, `must be ${lo}..${hi}`);
const ident = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be 1..63 lower-case letters, digits, "-" or "_" (it becomes an MQTT topic level)');
const host = z.string().min(1, 'must not be empty');
const port = range(0, 65535);

function isBrokerUrl(s: string): boolean {
  if (!/^mqtts?:\/\/[^\s]+$/.test(s)) return false;
  try {
    const u = new URL(s);
    // WHATWG URL parsing rejects ports above 65535 and non-numeric ports by throwing.
    return u.hostname !== '' && (u.pathname === '' || u.pathname === '/') && !u.search && !u.hash && u.port !== '0';
  } catch {
    return false;
  }
}

export const SiteSchema = z.strictObject({
  communityCode: z.string().regex(/^\d{12}$/, 'must be the 12-digit statistical division code of the community, e.g. "330106001001"'),
  gatewayId: ident,
  name: z.string().optional(),
});

export const LocalBrokerSchema = z.strictObject({
  host: host.default('0.0.0.0'),
  port: port.default(1883),
});

export const WebSchema = z.strictObject({
  host: host.default('0.0.0.0'),
  port: port.default(8080),
});

export const StorageSchema = z.strictObject({
  path: z.string().min(1, 'must not be empty'),
});

export const UplinkSchema = z.strictObject({
  url: z.string().refine(isBrokerUrl, 'must be mqtt://host[:port] or mqtts://host[:port] (port 1..65535)'),
  windowSeconds: range(5, 86400).default(60),
});

export const ModbusTcpBusSchema = z.strictObject({
  id: ident,
  type: z.literal('modbus-tcp'),
  host,
  port: range(1, 65535).default(502),
  /** Per-request answer timeout; values below one second are fine on a LAN. */
  timeoutMs: range(20, 30000).default(1000),
  retries: range(0, 5).default(1),
  /** Largest run of unused registers read to merge two points into one request. */
  maxGap: range(0, 124).default(10),
  reconnectMinMs: range(50, 600000).default(500),
  reconnectMaxMs: range(100, 3600000).default(30000),
  /** Longest interval between probes of an offline device. */
  offlineBackoffMaxMs: range(1000, 3600000).default(60000),
});

export const BusSchema = z.discriminatedUnion('type', [ModbusTcpBusSchema], {
  error: (iss) => (iss.code === 'invalid_union' ? 'type must be "modbus-tcp" (modbus-rtu follows with RS-485 support)' : undefined),
});

export const FacilitySchema = z.enum(['health', 'canteen', 'security']);

export const DeviceSchema = z.strictObject({
  id: ident,
  facility: FacilitySchema,
  profile: z.string().min(1),
  bus: z.string().min(1),
  unitId: range(1, 247),
  pollMs: range(100, 86_400_000).default(1000),
  /** Overrides the bus' maxGap for this device. */
  maxGap: range(0, 124).optional(),
  name: z.string().optional(),
});

export const SimulatorSchema = z.strictObject({
  enabled: z.boolean().default(false),
  host: host.default('127.0.0.1'),
  port: range(1, 65535).default(5020),
  /** Same seed, same simulated values: reproducible demos and tests. */
  seed: z.number().int().optional(),
});

export const SiteConfigSchema = z.strictObject({
  site: SiteSchema,
  localBroker: LocalBrokerSchema.default({ host: '0.0.0.0', port: 1883 }),
  web: WebSchema.default({ host: '0.0.0.0', port: 8080 }),
  storage: StorageSchema,
  uplink: UplinkSchema,
  buses: z.array(BusSchema).default([]),
  devices: z.array(DeviceSchema).default([]),
  simulator: SimulatorSchema.default({ enabled: false, host: '127.0.0.1', port: 5020 }),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info') }).optional(),
});

export type SiteConfig = z.infer<typeof SiteConfigSchema>;
export type BusConfig = z.infer<typeof BusSchema>;
export type DeviceConfig = z.infer<typeof DeviceSchema>;
