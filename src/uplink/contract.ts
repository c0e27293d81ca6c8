// The uplink contract with the provincial platform, written once here and exported as JSON
// Schema (docs/uplink.schema.json, `community-gateway schema`). docs/UPLINK.md explains it.
// Topics: fc/v1/<communityCode>/<gatewayId>/<kind>, kind one of agg, alarm, status, inventory.
// De-duplication: every agg, alarm and inventory item carries (gatewayId, seq); seq is unique
// and increasing per gateway across restarts. A status message carries the highest seq the
// gateway had committed when it was written (a watermark, not an item key).
import { z } from 'zod';

export const CONTRACT_VERSION = 1;
export const KINDS = ['agg', 'alarm', 'status', 'inventory'] as const;
export type UplinkKind = (typeof KINDS)[number];

export function uplinkTopic(communityCode: string, gatewayId: string, kind: UplinkKind): string {
  return `fc/v1/${communityCode}/${gatewayId}/${kind}`;
}

const seq = z.number().int().positive().describe('per-gateway monotonic sequence number; (gatewayId, seq) is the de-duplication key');
const ms = z.number().int().nonnegative().describe('milliseconds since the Unix epoch (UTC)');
const ident = z.string().min(1).max(63);
/** Additive in contract v1: was one of health, canteen, security; now any facility type id. */
const facility = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,31}$/)
  .describe('facility type id (drivers/facility-types.yaml): party-service, health, childcare, elderly-care, canteen, women-children, security, or a site type (codes 50-99 in the inventory); contract v1 gateways before issue 20 send health, canteen or security only');
const facilityId = ident
  .optional()
  .describe("additive in contract v1: the facility (site config facilities[].id); the type id where the site's config lists no facility for the device");
const houseCode = z
  .string()
  .min(1)
  .max(64)
  .optional()
  .describe("additive in contract v1: the unified house code (全省统一的城乡房屋编码) of the facility's building, as the site config gives it; absent when not configured");
const placement = { facilityId, houseCode };
/** Point and personal items, the bulk of the traffic: the facility id only where it is not the
 * type id, and no house code (the facility items and the inventory carry it). */
const pointPlacement = {
  facilityId: ident
    .optional()
    .describe('additive in contract v1: the facility (site config facilities[].id), present only where it is not the type id; absent: the facility id is the type id (as from gateways before facilities). The house code is on the facility item of the same window and in the inventory'),
};
const num = z.number().nullable();
/** Additive in contract v1: absent when the box's clock was synchronised (or its state unknown). */
const clockUnsynced = z
  .literal(true)
  .optional()
  .describe("present when the box's clock was not synchronised (no NTP yet since boot) when this item was made: its timestamps may be off; see status health.clock");

export const PointAggregate = z.strictObject({
  seq,
  type: z.literal('point'),
  windowStart: ms.describe('start of the wall-clock aligned window'),
  windowSeconds: z.number().int().min(5).max(86400),
  facility,
  ...pointPlacement,
  device: ident,
  point: ident,
  unit: z.string(),
  kind: z.enum(['gauge', 'counter', 'state']),
  count: z.number().int().nonnegative().describe('good readings in the window; 0 when the device was silent'),
  bad: z.number().int().nonnegative().describe('readings that failed (timeout, exception, out of range)'),
  mean: num,
  min: num,
  max: num,
  sum: num,
  last: num.describe('last good value in the window (booleans as 0/1)'),
  increase: num.optional().describe('counters: increase over the window, across wraps and resets'),
  trueShare: num.optional().describe('on/off points: share of good readings that were on (1)'),
  changes: z.number().int().nonnegative().optional().describe('on/off points: number of changes seen'),
  clockUnsynced,
});

export const FacilityAvailability = z.strictObject({
  seq,
  type: z.literal('facility'),
  windowStart: ms,
  windowSeconds: z.number().int().min(5).max(86400),
  facility,
  ...placement,
  devices: z.number().int().nonnegative(),
  availability: z.number().min(0).max(1).nullable().describe('time-weighted share of the facility\'s devices online over the observed part of the window'),
  observedSeconds: z.number().nonnegative().describe('part of the window the gateway was running'),
  clockUnsynced,
});

const count = z.number().int().nonnegative();

/** Aggregate of one personal measure (blood pressure, weight) over the window's events; every
 * figure rests on at least k distinct residents or is null (suppressed). No min, max or last. */
export const PersonalAggregate = z.strictObject({
  seq,
  type: z.literal('personal'),
  windowStart: ms,
  windowSeconds: z.number().int().min(5).max(86400),
  facility,
  ...pointPlacement,
  device: ident,
  point: ident,
  unit: z.string(),
  k: z.number().int().min(2).describe('the smallest number of distinct residents a released figure rests on'),
  measurements: count.nullable().describe('measurements in the window; null when suppressed'),
  residents: count.nullable().describe('distinct residents (by pseudonym, never sent); null when fewer than k'),
  mean: z.number().nullable(),
  bands: z.record(z.string(), count.nullable()).nullable().optional().describe('measurements per band; a null cell is suppressed'),
  suppressed: count.describe('measurements withheld from the released figures'),
  epsilon: z.number().positive().optional().describe('present when counts carry discrete Laplace noise: scale 1/epsilon per count (k-anonymous mode), or the whole item\'s budget (dp mode, with delta)'),
  delta: z
    .number()
    .positive()
    .lt(1)
    .optional()
    .describe('additive in contract v1: present in dp mode (privacy.mode: dp): the figures were released on a noisy resident count reaching threshold, which a window of one resident passes with probability at most delta; the item is (epsilon, delta)-differentially private per resident, and suppressed is 0'),
  threshold: z.number().int().positive().optional().describe('dp mode: the noisy resident count a window needed to be released'),
  clockUnsynced,
});

export const AggItem = z.discriminatedUnion('type', [PointAggregate, FacilityAvailability, PersonalAggregate]);

export const AlarmItem = z.strictObject({
  seq,
  ts: ms,
  alarm: ident.describe('alarm rule id, or "<point>" for an alarm input'),
  state: z.enum(['raised', 'cleared']),
  severity: z.enum(['warning', 'critical']),
  facility,
  ...placement,
  device: ident,
  point: ident,
  value: z.union([z.number(), z.boolean()]).nullable(),
  condition: z.string().describe('human-readable condition, e.g. "> 8 for 600 s"'),
  clockUnsynced,
});

export const InventoryItem = z.strictObject({
  seq,
  ts: ms,
  devices: z.array(
    z.strictObject({
      id: ident,
      facility,
      ...placement,
      profile: z.string(),
      profileSource: z
        .enum(['shipped', 'site'])
        .optional()
        .describe("additive in contract v1: where the profile came from, shipped with the gateway package or the site's own (drivers/ beside the config file); a site profile id is unique on its gateway only"),
      manufacturer: z.string(),
      model: z.string(),
      points: z.array(
        z.strictObject({
          id: ident,
          unit: z.string(),
          kind: z.enum(['gauge', 'counter', 'state']),
          privacy: z.enum(['public', 'personal', 'identifier']),
          uplinked: z.enum(['aggregate', 'k-anonymous aggregate', 'never']).describe('whether and how this point leaves the site'),
        }),
      ),
    }),
  ),
  facilities: z
    .array(
      z.strictObject({
        id: ident.describe("the facility's id on this gateway (site config facilities[].id, or the type id for an unlisted facility)"),
        type: facility,
        code: z.string().regex(/^\d{2}$/).describe("the facility type's two-digit code (drivers/facility-types.yaml)"),
        typeName: z.strictObject({ zh: z.string(), en: z.string() }).describe("the facility type's names"),
        name: z.string().optional().describe('the site\'s name for the facility'),
        houseCode,
        listed: z.boolean().describe('false: not in the config\'s facilities, only named by type on its devices (no house code)'),
        devices: z.number().int().nonnegative().describe('devices and GPIO inputs of this facility'),
      }),
    )
    .optional()
    .describe("additive in contract v1: the community's facilities on this gateway, the gateway's part of the province's facility database; sent on start and on every config change"),
  site: z.strictObject({ name: z.string().optional() }).optional().describe('additive in contract v1: the site config\'s site.name'),
});

const envelope = {
  v: z.literal(CONTRACT_VERSION),
  gatewayId: ident,
  communityCode: z.string().regex(/^\d{12}$/),
};

export const AggMessage = z.strictObject({ ...envelope, kind: z.literal('agg'), items: z.array(AggItem).min(1) });
export const AlarmMessage = z.strictObject({ ...envelope, kind: z.literal('alarm'), items: z.array(AlarmItem).min(1) });
export const InventoryMessage = z.strictObject({ ...envelope, kind: z.literal('inventory'), items: z.array(InventoryItem).min(1) });
/** Field health: per bus counters of every attempt, per device failed requests after retries
 * (timeouts, exceptions, damaged frames, link down), per GPIO input interrupt or polling mode. */
export const StatusHealth = z.strictObject({
  buses: z.array(
    z.strictObject({
      id: ident,
      type: z.enum(['modbus-tcp', 'modbus-rtu']),
      state: z.enum(['connecting', 'up', 'down', 'stopped']),
      requests: count,
      responses: count,
      timeouts: count,
      crcErrors: count,
      shortFrames: count,
      exceptions: count,
      badFrames: count,
    }),
  ),
  devices: z.array(
    z.strictObject({
      id: ident,
      online: z.boolean().nullable().describe('null until the first poll has finished'),
      lastSuccess: ms.nullable(),
      requests: count,
      timeouts: count,
      exceptions: count,
      lineErrors: count,
      linkErrors: count,
    }),
  ),
  gpio: z.array(z.strictObject({ id: ident, mode: z.enum(['interrupt', 'polling', 'unavailable', 'stopped']), lastChange: ms.nullable() })),
  audit: z
    .strictObject({
      seq: z.number().int().nonnegative().describe('seq of the newest audit line'),
      head: z.string().regex(/^[0-9a-f]{64}$/).describe('sha256 of that line: compare with `community-gateway audit verify` on the box'),
    })
    .optional()
    .describe("the box's audit-log chain head, kept by the platform so that a rewritten or cut-off log on the box shows (docs/WEB.md)"),
  clock: z
    .strictObject({
      synchronized: z.boolean().nullable().describe('whether the time daemon says the clock is synchronised; null when unknown (no source)'),
      source: z.enum(['timesyncd', 'timedatectl', 'chrony', 'none']),
      steps: count.describe('wall-clock steps seen since start (wall clock against the monotonic clock, threshold 1 s)'),
      lastStep: z.strictObject({ ts: ms.describe('wall time just after the step'), seconds: z.number().describe('size of the step, positive forwards') }).nullable(),
      lateReadings: count.describe('readings not aggregated because they were stamped before the open window (late, or the clock stepped back)'),
      skippedWindows: count.describe('windows not sent because a forward step jumped over them (never observed)'),
    })
    .optional()
    .describe("the box's clock (a Raspberry Pi has no RTC): additive in contract v1"),
});
export type StatusHealth = z.infer<typeof StatusHealth>;

export const StatusMessage = z.strictObject({
  ...envelope,
  kind: z.literal('status'),
  state: z.enum(['online', 'offline']),
  seq: z.number().int().nonnegative().describe('watermark: the highest seq committed when this was written'),
  ts: ms,
  version: z.string().optional(),
  reason: z.enum(['connected', 'periodic', 'shutdown', 'will']).optional(),
  backlog: z.strictObject({ rows: z.number().int().nonnegative(), bytes: z.number().int().nonnegative(), oldestTs: ms.nullable() }).optional(),
  shed: z.strictObject({ rows: z.number().int().nonnegative(), bytes: z.number().int().nonnegative(), dropped: z.number().int().nonnegative() }).optional(),
  health: StatusHealth.optional(),
  config: z
    .strictObject({
      hash: z.string().regex(/^sha256:[0-9a-f]{64}$/).describe("sha256 of the running config file's text: a remote bundle's `base`"),
      version: z.number().int().nonnegative().nullable().describe('the kept version id (the page\'s version list) the gateway runs on; null when none holds it'),
      remoteVersion: z.number().int().positive().nullable().describe('the highest bundle version this gateway applied; null when none'),
      remote: z.boolean().describe('whether remote configuration is on (remote.trustedKeys in the site config)'),
    })
    .optional()
    .describe('the running configuration (docs/UPLINK.md "Remote configuration"): additive in contract v1'),
});

/** Why a remote bundle was refused (docs/UPLINK.md "Remote configuration"). */
export const REMOTE_REFUSALS = ['malformed', 'too-large', 'unknown-key', 'bad-signature', 'wrong-gateway', 'expired', 'not-yet-valid', 'clock-unsynced', 'replay', 'conflict', 'invalid', 'busy', 'unavailable'] as const;

/** The commands of remote command bundles (src/remote/bundle.ts REMOTE_COMMANDS, kept equal by a test). */
export const REMOTE_COMMAND_NAMES = ['inventory', 'status', 'diagnostics', 'restart'] as const;

/** The gateway's answer to a bundle, on fc/v1/<communityCode>/<gatewayId>/config/result (QoS 1). */
export const ConfigResultMessage = z.strictObject({
  ...envelope,
  kind: z.literal('config-result'),
  ts: ms,
  version: z.number().int().positive().nullable().describe("the bundle's version; null when the bundle could not be read"),
  outcome: z.enum(['applied', 'refused', 'rolled-back']),
  reason: z.enum(REMOTE_REFUSALS).optional().describe('with refused: why'),
  detail: z.string().max(4000).optional().describe('what the check or the failed start said, in English (e.g. "devices[2].unitId: must be 1..247 (line 14)")'),
  applied: z.enum(['none', 'reload', 'restart']).optional().describe('with applied: how the config took effect'),
  command: z.enum(REMOTE_COMMAND_NAMES).optional().describe('additive in contract v1: present when the bundle was a command (kind "command"): which one'),
  profiles: z
    .record(z.string().max(80), z.string().regex(/^sha256:[0-9a-f]{64}$/))
    .optional()
    .describe('additive in contract v1: with applied, when the bundle carried site profiles: each file name with the sha256 of the text now in the site profile folder'),
  config: StatusMessage.shape.config.unwrap().describe('the config running after this bundle (the previous one when refused or rolled back)'),
});
export type ConfigResultMessage = z.infer<typeof ConfigResultMessage>;

/** A diagnostic bundle asked for by a `diagnostics` command, on fc/v1/<communityCode>/<gatewayId>/diagnostics
 * (QoS 1, not retained), in parts: `data` of parts 1..parts joined in order is the JSON text of
 * the page's diagnostic bundle (secrets redacted, no personal or identifier value). */
export const DiagnosticsMessage = z.strictObject({
  ...envelope,
  kind: z.literal('diagnostics'),
  ts: ms,
  version: z.number().int().positive().describe("the command bundle's version this answers"),
  name: z.string().min(1).max(200).describe('a file name for the joined bundle, as the page names its download'),
  part: z.number().int().min(1).describe('1-based index of this part'),
  parts: z.number().int().min(1).max(256).describe('how many parts the bundle has'),
  bytes: z.number().int().nonnegative().describe('UTF-8 bytes of the joined bundle text'),
  trimmed: z.number().int().nonnegative().describe('log records left out (oldest first) to keep the bundle within 4 MiB; 0 when none'),
  data: z.string().describe('this part of the bundle text'),
});
export type DiagnosticsMessage = z.infer<typeof DiagnosticsMessage>;

export function diagnosticsTopic(communityCode: string, gatewayId: string): string {
  return `fc/v1/${communityCode}/${gatewayId}/diagnostics`;
}

/** Topics of remote configuration: the platform publishes `config/set`, the gateway answers on `config/result`. */
export function remoteTopic(communityCode: string, gatewayId: string, which: 'set' | 'result'): string {
  return `fc/v1/${communityCode}/${gatewayId}/config/${which}`;
}


export const UplinkMessage = z.discriminatedUnion('kind', [AggMessage, AlarmMessage, InventoryMessage, StatusMessage]);
export type UplinkMessage = z.infer<typeof UplinkMessage>;
export type StatusMessage = z.infer<typeof StatusMessage>;

/** The JSON Schema of every message a gateway sends: the uplink kinds (UplinkMessage, as the
 * consumer validates them) and, as one more alternative of the same `kind`-tagged union, the
 * answer to a bundle on config/result (additive in contract v1). */
export function uplinkJsonSchema(): object {
  const gatewayMessage = z.discriminatedUnion('kind', [...UplinkMessage.options, ConfigResultMessage, DiagnosticsMessage]);
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'urn:community-gateway:uplink:v1',
    title: 'community-gateway uplink message, contract v1',
    description: 'Payload of every message on fc/v1/<communityCode>/<gatewayId>/<kind> (kind agg, alarm, inventory, status) and of the answer to a remote-configuration bundle on fc/v1/<communityCode>/<gatewayId>/config/result (kind config-result), and of the parts of a diagnostic bundle on fc/v1/<communityCode>/<gatewayId>/diagnostics (kind diagnostics). See docs/UPLINK.md.',
    ...(z.toJSONSchema(gatewayMessage, { target: 'draft-2020-12' }) as object),
  };
}
