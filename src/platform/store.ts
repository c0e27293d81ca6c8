// What the reference consumer stores and reads back, whatever the database: SQLite for one
// laptop (store-sqlite.ts), PostgreSQL for the province (store-postgres.ts). The consumer
// validates a message once (the contract) and hands it here; the report (report/) reads
// items back as a stream, so a province-wide report never holds all items at once.
import type { AggItem, AlarmItem, ConfigResultMessage, InventoryItem, StatusMessage } from '../uplink/contract.js';
import type { z } from 'zod';

export type ItemKind = 'agg' | 'alarm' | 'inventory';
export type AnyItem = z.infer<typeof AggItem> | z.infer<typeof AlarmItem> | z.infer<typeof InventoryItem>;

/** One stored item: the envelope's ids, its seq, its own time, its body as the gateway sent it. */
export interface StoredItem {
  gatewayId: string;
  communityCode: string;
  kind: ItemKind;
  seq: number;
  /** The item's own time, ms: windowStart of an agg item, ts of an alarm or inventory item. */
  itemTs: number;
  body: AnyItem;
  /** When the consumer stored it, ms. */
  receivedAt: number;
}

export interface StoredStatus {
  gatewayId: string;
  communityCode: string;
  ts: number;
  body: StatusMessage;
  receivedAt: number;
}

export interface StoredConfigResult {
  ts: number;
  version: number | null;
  outcome: ConfigResultMessage['outcome'];
  reason: string | null;
  body: ConfigResultMessage;
}

/** A device of the facility register: the latest inventory of each gateway, one row per device. */
export interface RegisterDevice {
  gatewayId: string;
  communityCode: string;
  deviceId: string;
  facility: string;
  /** The facility on the gateway and its building's house code (null from older gateways). */
  facilityId: string | null;
  houseCode: string | null;
  profile: string;
  profileSource: 'shipped' | 'site' | null;
  manufacturer: string;
  model: string;
  points: number;
  /** seq and ts of the inventory item it comes from. */
  inventorySeq: number;
  inventoryTs: number;
}

/** A facility of the register: the `facilities` of each gateway's newest inventory (older
 * gateways send none). (gatewayId, facilityId) is its key; houseCode joins it to the buildings. */
export interface RegisterFacility {
  gatewayId: string;
  communityCode: string;
  facilityId: string;
  type: string;
  code: string;
  name: string | null;
  houseCode: string | null;
  listed: boolean;
  devices: number;
  inventorySeq: number;
  inventoryTs: number;
}

/** Items whose own time is in [from, to), optionally of one community and of some kinds,
 * ordered by (gatewayId, seq). */
export interface ItemQuery {
  from: number;
  to: number;
  community?: string;
  kinds?: ItemKind[];
}

export interface StoreResult {
  inserted: number;
  /** Same (gatewayId, seq), same content: a resend (QoS 1 is at least once; a reconnect). */
  duplicates: number;
  /** Same (gatewayId, seq), other content: a gateway bug or a reused gatewayId; kept out. */
  conflicts: number;
}

export interface ConsumerStore {
  /** Creates or upgrades the schema (idempotent; safe when several consumers start at once). */
  migrate(): Promise<void>;
  /** Opens an existing, up-to-date database for reading only (a report): no schema change,
   * an error naming `platform migrate` when the schema is older. */
  openForReading(): Promise<void>;
  /** The items of one message, in one transaction: resolved once they are committed. */
  storeItems(gatewayId: string, communityCode: string, kind: ItemKind, items: readonly AnyItem[], receivedAt: number): Promise<StoreResult>;
  storeStatus(m: StatusMessage, receivedAt: number): Promise<void>;
  /** false when the same answer was stored already (a QoS 1 resend). */
  storeConfigResult(m: ConfigResultMessage, receivedAt: number): Promise<boolean>;
  storeRejected(topic: string, reason: string, payload: string, receivedAt: number): Promise<void>;
  close(): Promise<void>;

  // Reads: tests, integrity checks, the report.
  seqs(gatewayId: string): Promise<number[]>;
  /** How many items of the gateway have a seq in [lo, hi] (the report's gap check). */
  countSeqs(gatewayId: string, lo: number, hi: number): Promise<number>;
  items(gatewayId: string, kind?: ItemKind): Promise<StoredItem[]>;
  lastStatus(gatewayId: string): Promise<StatusMessage | null>;
  configResults(gatewayId: string): Promise<StoredConfigResult[]>;
  /** Every item in the query's range, streamed in pages. */
  scanItems(q: ItemQuery): AsyncIterable<StoredItem>;
  /** Every status message whose ts is in [from, to), and per gateway the last one before `from`. */
  scanStatuses(q: { from: number; to: number; community?: string }): AsyncIterable<StoredStatus>;
  register(community?: string): Promise<RegisterDevice[]>;
  /** The facilities of the register, ordered by (gatewayId, facilityId). */
  facilities(community?: string): Promise<RegisterFacility[]>;
}

/** The item's own time (the partition key in PostgreSQL). */
export function itemTime(kind: ItemKind, item: AnyItem): number {
  return kind === 'agg' ? (item as { windowStart: number }).windowStart : (item as { ts: number }).ts;
}
