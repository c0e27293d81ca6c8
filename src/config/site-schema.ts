// Site configuration schema (config/*.yaml). The names here are a contract: other tools,
// the web page and the tests rely on them. Unknown keys are errors (strict objects).
import { z } from 'zod';
import { BROKER_DEFAULTS, LIVE_COALESCE_MS, LOGIN_DEFAULTS, MEMORY_DEFAULTS } from '../broker/broker-defaults.js';
import { PUBLIC_KEY } from '../remote/bundle.js';
import { divisionCodeProblem } from './division-code.js';

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

/** A pattern of the config (site.houseCodePattern): a regular expression, matched whole. */
export function anchored(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`, 'u');
}

/** A group with a quantifier inside, itself quantified: (a+)+, (a|b*){2,}, (?:x+)*. */
const NESTED_REPEAT = /\((?:[^()\\]|\\.)*(?:[+*]|\{\d+,\d*\})(?:[^()\\]|\\.)*\)(?:[+*]|\{\d+,\d*\})/;

export const SiteSchema = z.strictObject({
  communityCode: z.string().superRefine((c, ctx) => {
    const problem = divisionCodeProblem(c);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
  gatewayId: ident,
  name: z.string().optional(),
  /** The format of facilities[].houseCode, a regular expression matched against the whole code.
   * The province's unified house code (全省统一的城乡房屋编码) is not public; set the pattern
   * its authority gives. Default: 1..64 letters, digits, "-" or "_" (docs/FACILITIES.md). */
  houseCodePattern: z
    .string()
    .min(1)
    .max(500)
    .refine((p) => {
      try {
        anchored(p);
        return true;
      } catch {
        return false;
      }
    }, 'must be a regular expression (JavaScript syntax), e.g. "\\d{19}"')
    // A repeated group that itself repeats ((a+)+) can take exponential time on a code that
    // almost matches: every check of the config would hang on it.
    .refine((p) => !NESTED_REPEAT.test(p), 'must not repeat a group that itself repeats, e.g. (\\d+)+: write \\d+ instead')
    .optional(),
});

export const DEFAULT_HOUSE_CODE_PATTERN = '[A-Za-z0-9_-]{1,64}';

/** The matcher of facilities[].houseCode: site.houseCodePattern or the default; null for a
 * pattern the schema refuses (not a regular expression, or a nested repeat). */
export function houseCodeMatcher(given: string | undefined): RegExp | null {
  if (given !== undefined && NESTED_REPEAT.test(given)) return null;
  try {
    return anchored(given ?? DEFAULT_HOUSE_CODE_PATTERN);
  } catch {
    return null;
  }
}

/** A facility of the community (a health station, a canteen, a childcare room): what the
 * province's facility database lists. Devices name it in their `facility`. */
export const FacilityConfigSchema = z.strictObject({
  id: ident,
  /** A facility type id of drivers/facility-types.yaml (shipped or the site's own). */
  type: z.string().min(1, 'must not be empty'),
  name: z.string().max(200).optional(),
  /** The building's unified house code; checked against site.houseCodePattern. */
  houseCode: z.string().min(1, 'must not be empty').max(64, 'must be at most 64 characters').optional(),
});

const topicFilter = z.string().regex(/^(?:[^#+/]*|\+)(?:\/(?:[^#+/]*|\+))*(?:\/#)?$|^#$/, 'must be an MQTT topic filter (+ for one level, # last)');

export const AccountSchema = z.strictObject({
  username: z.string().min(1).max(64),
  /** argon2 hash from `community-gateway hash-password`; never the password itself. */
  passwordHash: z.string().regex(/^\$argon2(id|i|d)\$/, 'must be an argon2 hash (community-gateway hash-password)'),
  publish: z.array(topicFilter).default([]),
  subscribe: z.array(topicFilter).default([]),
  /** May receive personal readings (one resident's measurements). */
  personal: z.boolean().default(false),
});

/** A second listener for MQTT over TLS, served by the same broker (same accounts and ACLs). */
export const LocalBrokerTlsSchema = z
  .strictObject({
    /** Default: localBroker.host. */
    host: host.optional(),
    port: port.default(8883),
    /** PEM files, read at start. Relative paths are from the working directory. */
    certFile: z.string().min(1, 'must not be empty'),
    keyFile: z.string().min(1, 'must not be empty'),
    /** CA that signs client certificates (with requireClientCert). */
    caFile: z.string().min(1, 'must not be empty').optional(),
    /** Mutual TLS: a client without a certificate signed by caFile is refused in the handshake. */
    requireClientCert: z.boolean().default(false),
  })
  .refine((t) => !t.requireClientCert || t.caFile !== undefined, { message: 'requireClientCert needs caFile (the CA that signs client certificates)', path: ['caFile'] });

/** MQTT over WebSocket (ws://host:port/mqtt, subprotocol "mqtt"), for browser apps. */
export const LocalBrokerWebSocketSchema = z.strictObject({
  /** Default: localBroker.host. */
  host: host.optional(),
  port: port.default(8083),
});

const LoginBackoffSchema = z.strictObject({
  /** Failures allowed before any delay. */
  freeFailures: range(1, 1000).default(LOGIN_DEFAULTS.freeFailures),
  /** First delay; it doubles with each further failure, up to maxDelayMs. */
  baseDelayMs: range(1, 3_600_000).default(LOGIN_DEFAULTS.baseDelayMs),
  maxDelayMs: range(1, 3_600_000).default(LOGIN_DEFAULTS.maxDelayMs),
  /** argon2 verifications at once; more wait (up to maxQueued), past that refused as busy. */
  maxConcurrent: range(1, 64).default(LOGIN_DEFAULTS.maxConcurrent),
  maxQueued: range(0, 10_000).default(LOGIN_DEFAULTS.maxQueued),
});

const BrokerMemorySchema = z.strictObject({
  /** Inbound QoS 2 messages awaiting PUBREL per client, and their bytes; over it the client is disconnected. */
  inflightPerClient: range(1, 65_535).default(MEMORY_DEFAULTS.inflightPerClient),
  inflightBytesPerClient: range(1024, 1024 ** 3).default(MEMORY_DEFAULTS.inflightBytesPerClient),
  inflightBytesTotal: range(1024, 4 * 1024 ** 3).default(MEMORY_DEFAULTS.inflightBytesTotal),
  /** Messages queued (QoS 1/2, unacknowledged or offline) per client id, and bytes; over it new ones are dropped for that client. */
  queuedPerClient: range(1, 1_000_000).default(MEMORY_DEFAULTS.queuedPerClient),
  queuedBytesPerClient: range(1024, 1024 ** 3).default(MEMORY_DEFAULTS.queuedBytesPerClient),
  queuedBytesTotal: range(1024, 4 * 1024 ** 3).default(MEMORY_DEFAULTS.queuedBytesTotal),
  /** Retained messages per account and in total (the gateway's own are not counted); over it a retained publish is refused. */
  retainedPerAccount: range(0, 1_000_000).default(MEMORY_DEFAULTS.retainedPerAccount),
  retainedBytesPerAccount: range(0, 1024 ** 3).default(MEMORY_DEFAULTS.retainedBytesPerAccount),
  retainedTotal: range(0, 10_000_000).default(MEMORY_DEFAULTS.retainedTotal),
  retainedBytesTotal: range(0, 4 * 1024 ** 3).default(MEMORY_DEFAULTS.retainedBytesTotal),
});

/** What the gateway publishes of each scan on the local broker (docs/LOCAL-MQTT.md). */
export const LocalLiveSchema = z
  .strictObject({
    /** community/<gatewayId>/<facility>/<deviceId>/<point>: one message per reading. */
    perPoint: z.boolean().default(true),
    /** community/<gatewayId>/<facility>/<deviceId>/scan: one message per scan, every point in it. */
    perScan: z.boolean().default(false),
    /** The gateway's publishes within this many ms go to each subscriber in one socket write
     * (0: those of one turn of the event loop); a live value waits at most this long. */
    coalesceMs: range(0, 100).default(LIVE_COALESCE_MS),
  })
  .refine((l) => l.perPoint || l.perScan, { message: 'perPoint and perScan are both false: nothing would be published live; set one of them true', path: ['perPoint'] });

export const LocalBrokerSchema = z.strictObject({
  host: host.default('0.0.0.0'),
  port: port.default(1883),
  /** off: accounts only; loopback: anonymous read of public readings from this box only; lan: from anywhere. */
  anonymous: z.enum(['off', 'loopback', 'lan']).default('off'),
  accounts: z.array(AccountSchema).default([]),
  /** Open connections over all listeners (TCP, TLS, WebSocket); further ones are closed at once. */
  maxConnections: range(1, 100_000).default(BROKER_DEFAULTS.maxConnections),
  /** Open connections from one source address; further ones are closed at once. */
  maxConnectionsPerAddress: range(1, 100_000).default(BROKER_DEFAULTS.maxConnectionsPerAddress),
  /** Connections not logged in yet at most (default: half of maxConnections); past it the
   * oldest of them is closed, so clients that send CONNECT at once always get in. */
  maxPendingConnections: range(1, 100_000).optional(),
  /** CONNECT (and the TLS/WebSocket handshake) must arrive this soon after accept. */
  connectTimeoutMs: range(100, 60_000).default(BROKER_DEFAULTS.connectTimeoutMs),
  /** Longest keepalive honoured: a client silent for 1.5x this is closed, whatever it asked. */
  maxKeepaliveSeconds: range(1, 65_535).default(BROKER_DEFAULTS.maxKeepaliveSeconds),
  /** A persistent session (CleanSession 0) offline this long is expired and its queue freed. */
  sessionExpirySeconds: range(1, 30 * 86_400).default(BROKER_DEFAULTS.sessionExpirySeconds),
  /** Persistent sessions one account (or all anonymous clients) may hold; a new one past it
   * expires the account's longest-offline session. */
  maxSessionsPerAccount: range(1, 100_000).default(BROKER_DEFAULTS.maxSessionsPerAccount),
  /** Login back-off per source address and per user name (a growing delay, never a lock). */
  loginBackoff: LoginBackoffSchema.default(() => LoginBackoffSchema.parse({})),
  /** What clients may make the broker hold in memory. */
  memory: BrokerMemorySchema.default(() => BrokerMemorySchema.parse({})),
  /** Largest MQTT packet a client may send, fixed header included; a larger one (announced
   * in the Remaining Length) closes that client's connection before its body is read. */
  maxPacketBytes: range(1024, 268_435_455).default(BROKER_DEFAULTS.maxPacketBytes),
  /** Longest client id accepted (23 is the length every MQTT 3.1.1 server must accept). */
  maxClientIdLength: range(23, 65_535).default(BROKER_DEFAULTS.maxClientIdLength),
  tls: LocalBrokerTlsSchema.optional(),
  websocket: LocalBrokerWebSocketSchema.optional(),
  live: LocalLiveSchema.default(() => LocalLiveSchema.parse({})),
});

export const WebAuditSchema = z.strictObject({
  /** Rotate audit.log once it would grow past this many bytes. */
  maxFileBytes: range(64 * 1024, 64 * 1024 * 1024).default(1024 * 1024),
  /** All audit files together should stay under this; files inside the retention are never
   * deleted for it (over budget is warned, counted and audited instead). */
  budgetBytes: range(1024 * 1024, 4 * 1024 ** 3).default(32 * 1024 * 1024),
  /** No audit file younger than this is deleted (网络安全法 Art. 21: at least six months). */
  retentionDays: range(180, 3650).default(180),
});

export const WebSchema = z
  .strictObject({
    host: host.default('0.0.0.0'),
    port: port.default(8080),
    /** HTTPS with a self-signed certificate made on first start (or tls: the site's own); false
     * serves plain HTTP (passwords and the session cookie in clear on the LAN: warned at start). */
    https: z.boolean().default(true),
    /** The site's own certificate instead of the self-signed one (PEM files). */
    tls: z.strictObject({ certFile: z.string().min(1, 'must not be empty'), keyFile: z.string().min(1, 'must not be empty') }).optional(),
    audit: WebAuditSchema.prefault({}),
    /** Extra names the page is opened by (a DNS name of the box). Its own addresses, hostname,
     * hostname.local and localhost are always accepted; any other Host header is refused
     * (DNS rebinding, docs/WEB.md). */
    allowedHosts: z.array(z.string().regex(/^[A-Za-z0-9.-]{1,253}$/, 'must be a host name')).max(20).default([]),
    /** A login session ends after this long without a request (GB/T 22239 8.1.4.1 b). */
    sessionIdleMinutes: range(1, 720).default(15),
    /** A login session ends this long after login, however active. */
    sessionMaxHours: range(1, 168).default(12),
    /** true: the admin must enrol a second factor (TOTP) at setup and cannot switch it off. */
    requireTotp: z.boolean().default(false),
  })
  .refine((w) => w.https || w.tls === undefined, { message: 'tls needs https: true (or remove tls to serve plain HTTP)', path: ['tls'] });

export const StorageSchema = z.strictObject({
  /** One SQLite file holds the outbox and the raw store. Relative paths are from the working directory. */
  path: z.string().min(1, 'must not be empty'),
  /** Hours of raw readings kept for local charts and diagnosis (never uplinked); 0 keeps none. */
  rawRetentionHours: range(0, 720).default(24),
  /** Outbox cap: past either limit the oldest non-alarm rows are shed (and counted). */
  outbox: z
    .strictObject({
      maxRows: range(10, 100_000_000).default(2_000_000),
      maxBytes: range(65_536, 64 * 1024 ** 3).default(1024 ** 3),
    })
    .default({ maxRows: 2_000_000, maxBytes: 1024 ** 3 }),
});

const optionalFile = z.string().min(1, 'must not be empty').optional();

export const UplinkSchema = z.strictObject({
  url: z.string().refine(isBrokerUrl, 'must be mqtt://host[:port] or mqtts://host[:port] (port 1..65535)'),
  /** Aggregation window, aligned to the wall clock. */
  windowSeconds: range(5, 86400).default(60),
  /** MQTT protocol: 4 is MQTT 3.1.1, 5 is MQTT 5. */
  protocolVersion: z.union([z.literal(4), z.literal(5)], { error: 'must be 4 (MQTT 3.1.1) or 5 (MQTT 5)' }).default(4),
  clientId: z.string().min(1).max(64).optional(),
  username: z.string().min(1).optional(),
  password: z.string().min(1).optional(),
  /** PEM files for mqtts://: the platform's CA, and this gateway's certificate and key for mutual TLS. */
  caFile: optionalFile,
  certFile: optionalFile,
  keyFile: optionalFile,
  keepaliveSeconds: range(5, 3600).default(60),
  connectTimeoutMs: range(1000, 120_000).default(15_000),
  reconnectMinMs: range(100, 600_000).default(1000),
  reconnectMaxMs: range(1000, 3_600_000).default(120_000),
  /** Unacknowledged messages allowed at once. */
  inflight: range(1, 1000).default(16),
  /** Largest uplink message; aggregates are batched up to this size. */
  maxMessageBytes: range(1024, 16 * 1024 * 1024).default(64 * 1024),
  statusIntervalSeconds: range(5, 86400).default(60),
});

/** Settings every Modbus bus has, whatever the link. */
const busCommon = {
  id: ident,
  /** Extra attempts after a timeout or a damaged frame (never after a Modbus exception). */
  retries: range(0, 5).default(1),
  /** Largest run of unused registers read to merge two points into one request. */
  maxGap: range(0, 124).default(10),
  reconnectMinMs: range(50, 600000).default(500),
  reconnectMaxMs: range(100, 3600000).default(30000),
  /** Longest interval between probes of an offline device. */
  offlineBackoffMaxMs: range(1000, 3600000).default(60000),
};

export const ModbusTcpBusSchema = z.strictObject({
  ...busCommon,
  type: z.literal('modbus-tcp'),
  host,
  port: range(1, 65535).default(502),
  /** Per-request answer timeout; values below one second are fine on a LAN. */
  timeoutMs: range(20, 30000).default(1000),
  /** Requests on the connection at once, to different unit ids (one per unit at a time).
   * 1 (one at a time) unless the server answers several transactions at once: a PLC or a
   * multi-unit TCP gateway may; many serial converters queue or drop the rest. */
  maxInFlight: range(1, 32).default(1),
});

/** Baud rates RS-485 field devices offer (the XY-MD02, R4DCB08 and SDM120 manuals list subsets). */
const BAUD_RATES = [1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200] as const;

export const ModbusRtuBusSchema = z.strictObject({
  ...busCommon,
  type: z.literal('modbus-rtu'),
  /** Serial device; prefer /dev/serial/by-id/... (stable across reboots and replugs) over /dev/ttyUSB0. */
  path: z.string().regex(/^\//, 'must be an absolute device path, e.g. /dev/serial/by-id/usb-FTDI_...-if00-port0'),
  baudRate: z
    .number()
    .refine((n) => (BAUD_RATES as readonly number[]).includes(n), `must be one of ${BAUD_RATES.join(', ')}`)
    .default(9600),
  parity: z.enum(['none', 'even', 'odd']).default('none'),
  dataBits: z.union([z.literal(7), z.literal(8)], { error: 'must be 7 or 8' }).default(8),
  stopBits: z.union([z.literal(1), z.literal(2)], { error: 'must be 1 or 2' }).default(1),
  /** Per-request answer timeout, counted after our request has left the wire. Slow
   * RS-485 devices answer in 50-300 ms. */
  timeoutMs: range(20, 30000).default(500),
});

export const BusSchema = z.discriminatedUnion('type', [ModbusTcpBusSchema, ModbusRtuBusSchema], {
  error: (iss) => (iss.code === 'invalid_union' ? 'type must be "modbus-tcp" or "modbus-rtu"' : undefined),
});

/** A device's facility: the id of an entry of `facilities`, or a facility type id (a device of
 * a facility the config does not list: its facility id is the type id). Resolved in site-config.ts. */
export const FacilitySchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be a facility id of facilities, or a facility type id (e.g. "canteen")');
const PrivacyClassSchema = z.enum(['public', 'personal', 'identifier']);

export const DeviceSchema = z.strictObject({
  id: ident,
  facility: FacilitySchema,
  profile: z.string().min(1),
  bus: z.string().min(1),
  unitId: range(1, 247),
  pollMs: range(100, 86_400_000).default(1000),
  /** Overrides the bus' maxGap for this device. */
  maxGap: range(0, 124).optional(),
  /** Per-point privacy class overriding the profile's (the privacy report lists every override). */
  privacy: z.record(z.string(), PrivacyClassSchema).optional(),
  name: z.string().optional(),
});

/** A dry contact or pulse input on the Pi's GPIO header (onoff, sysfs). The reading's value:
 * contact and alarm true while the line is active (after activeLow), counter the number of
 * inactive-to-active transitions, kept across restarts. */
export const GpioSchema = z
  .strictObject({
    id: ident,
    facility: FacilitySchema,
    kind: z.enum(['contact', 'alarm', 'counter']),
    /** Line offset on the chip (BCM number on a Raspberry Pi header), not the sysfs number:
     * the sysfs number is resolved from the chip's base at start (kernel 6.6+ offsets it). */
    line: range(0, 1023),
    /** GPIO chip label (/sys/class/gpio/gpiochip*\/label); default: the Pi header controller. */
    chip: z.string().min(1).optional(),
    activeLow: z.boolean().default(false),
    /** A new level counts only after it has held this long (contact bounce, relay chatter). */
    debounceMs: range(0, 10000).default(20),
    /** Read interval where the pin cannot interrupt (the fallback is logged and shown). */
    pollMs: range(5, 1000).default(20),
    /** The current value is re-sent this often even without a change, for aggregation. */
    reportMs: range(100, 3_600_000).default(1000),
    /** For kind alarm: how the platform should treat it. */
    severity: z.enum(['warning', 'critical']).optional(),
    name: z.string().optional(),
  })
  .refine((g) => g.severity === undefined || g.kind === 'alarm', { message: 'severity is only for kind: alarm', path: ['severity'] });

export const SimulatorSchema = z.strictObject({
  enabled: z.boolean().default(false),
  host: host.default('127.0.0.1'),
  port: range(1, 65535).default(5020),
  /** Same seed, same simulated values: reproducible demos and tests. */
  seed: z.number().int().optional(),
  /** The GPIO inputs are simulated too (a contact as a door, an alarm input as an emergency call
   * button, a counter as pulses); no header line is read. For demos on a machine without GPIO. */
  gpio: z.boolean().default(false),
});

/** A threshold alarm: raised when the condition has held for forSeconds, cleared when it no
 * longer holds. Sent to the platform at once, ahead of any backlog. */
export const AlarmRuleSchema = z
  .strictObject({
    id: ident,
    device: z.string().min(1),
    point: z.string().min(1),
    above: z.number().optional(),
    below: z.number().optional(),
    /** For boolean points: raised while the value equals this. */
    equals: z.boolean().optional(),
    forSeconds: range(0, 86400).default(0),
    severity: z.enum(['warning', 'critical']).default('warning'),
  })
  .refine((r) => [r.above, r.below, r.equals].filter((x) => x !== undefined).length === 1, {
    message: 'needs exactly one of above, below, equals',
  });

/** How the gateway learns that the wall clock is synchronised (src/time/clock-sync.ts). Until
 * it is, items sent to the platform carry clockUnsynced: true (docs/UPLINK.md). */
export const ClockSchema = z.strictObject({
  /** auto: timesyncd when it runs, else chrony when installed, else none (unknown: no flag). */
  sync: z.enum(['auto', 'timesyncd', 'timedatectl', 'chrony', 'none']).default('auto'),
  /** systemd-timesyncd's flag file; another path for tests or another daemon that touches one. */
  syncFile: z.string().min(1).refine((p) => p.startsWith('/'), { message: 'must be an absolute path' }).default('/run/systemd/timesync/synchronized'),
});

/** Remote configuration from the platform (docs/CONFIG.md `remote`, docs/UPLINK.md "Remote
 * configuration: the gateway"). Absent: off, and the gateway does not even subscribe. A bundle is
 * applied only when signed by one of these keys; a bundle can change this list too, but only one
 * signed by a key already in it. */
export const RemoteSchema = z.strictObject({
  trustedKeys: z
    .array(z.string().regex(PUBLIC_KEY, 'must be an Ed25519 public key "ed25519:<base64 of 32 bytes>" (community-gateway keygen)'))
    .min(1, 'needs 1 to 8 keys (remove remote to turn remote configuration off)')
    .max(8, 'needs 1 to 8 keys (remove remote to turn remote configuration off)')
    .refine((keys) => new Set(keys).size === keys.length, 'lists a key twice'),
});

export const SiteConfigSchema = z.strictObject({
  site: SiteSchema,
  /** The community's facilities with their house codes (the inventory lists them). */
  facilities: z.array(FacilityConfigSchema).default([]),
  localBroker: LocalBrokerSchema.default(() => LocalBrokerSchema.parse({})),
  web: WebSchema.prefault({}),
  storage: StorageSchema,
  uplink: UplinkSchema,
  buses: z.array(BusSchema).default([]),
  devices: z.array(DeviceSchema).default([]),
  gpio: z.array(GpioSchema).default([]),
  simulator: SimulatorSchema.default({ enabled: false, host: '127.0.0.1', port: 5020, gpio: false }),
  alarms: z.array(AlarmRuleSchema).default([]),
  clock: ClockSchema.prefault({}),
  remote: RemoteSchema.optional(),
  privacy: z
    .strictObject({
      /** Smallest number of distinct residents a personal figure may rest on. */
      k: range(2, 1000).default(5),
      /** Window of personal aggregates: a multiple of uplink.windowSeconds, long enough for k
       * residents to measure (a health station sees a few sessions an hour). */
      windowSeconds: range(5, 7 * 86400).optional(),
      /** k-anonymous (the default): figures rest on at least k residents, decided on exact
       * counts. dp: (epsilon, delta)-differential privacy per window with a per-resident annual
       * budget (docs/PRIVACY.md). */
      mode: z.enum(['k-anonymous', 'dp']).default('k-anonymous'),
      /** k-anonymous mode: every released count gets discrete Laplace noise of scale 1/epsilon.
       * dp mode: each released item's budget per resident. At least 0.001, three decimals used. */
      epsilon: z.number().min(0.001).max(10).optional(),
      /** dp mode: the chance that a window resting on one resident is released at all. */
      delta: z.number().positive().max(1e-3).optional(),
      /** dp mode: the epsilon a resident may spend in a calendar year (China time); past it their
       * sessions are left out of releases and counted as excluded. */
      annualEpsilon: z.number().min(0.001).max(1000).optional(),
      /** The site secret for pseudonyms; default: site-secret in the state folder (src/config/state-dir.ts). */
      secretFile: z.string().min(1).optional(),
      /** dp mode: the per-resident ledger; default: privacy-ledger.json in the state folder. */
      ledgerFile: z.string().min(1).optional(),
    })
    .superRefine((p, ctx) => {
      if (p.mode !== 'dp') {
        for (const f of ['delta', 'annualEpsilon'] as const) {
          if (p[f] !== undefined) ctx.addIssue({ code: 'custom', path: [f], message: 'applies to privacy.mode: dp only' });
        }
        return;
      }
      for (const f of ['epsilon', 'delta', 'annualEpsilon'] as const) {
        if (p[f] === undefined) ctx.addIssue({ code: 'custom', path: [f], message: 'is required with privacy.mode: dp' });
      }
      if (p.epsilon !== undefined && p.annualEpsilon !== undefined && p.annualEpsilon < p.epsilon) {
        ctx.addIssue({ code: 'custom', path: ['annualEpsilon'], message: `must be at least epsilon (${p.epsilon}): a resident could never take part in a release` });
      }
    })
    .default({ k: 5, mode: 'k-anonymous' }),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info') }).optional(),
});

export type SiteConfig = z.infer<typeof SiteConfigSchema>;
export type BusConfig = z.infer<typeof BusSchema>;
export type GpioConfig = z.infer<typeof GpioSchema>;
export type DeviceConfig = z.infer<typeof DeviceSchema>;
export type UplinkConfig = z.infer<typeof UplinkSchema>;
export type AlarmRule = z.infer<typeof AlarmRuleSchema>;
export type RemoteConfig = z.infer<typeof RemoteSchema>;
export type FacilityConfig = z.infer<typeof FacilityConfigSchema>;

/** The window of personal aggregates: as configured, or the first multiple of the uplink
 * window that is at least an hour. */
export function personalWindowSeconds(c: Pick<SiteConfig, 'privacy' | 'uplink'>): number {
  const w = c.uplink.windowSeconds;
  return c.privacy.windowSeconds ?? Math.ceil(3600 / w) * w;
}
