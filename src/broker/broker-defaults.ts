// The local broker's limits and their defaults, shared by the config schema
// (src/config/site-schema.ts) and LocalBroker (for callers that pass a partial config).
// docs/LOCAL-MQTT.md says why each default is what it is.
import type { LoginBackoffOptions } from './login-guard.js';
import type { MemoryLimits } from './memory-guard.js';

const MiB = 1024 * 1024;

export const BROKER_DEFAULTS = {
  maxConnections: 200,
  /** Open connections from one source address. */
  maxConnectionsPerAddress: 20,
  /** CONNECT must arrive this soon after accept (also the TLS and WebSocket handshake timeout). */
  connectTimeoutMs: 5000,
  /** Largest keepalive honoured: a client asking 0 (none) or more is disconnected after 1.5x this
   * without a packet (MQTT 3.1.1 section 3.1.2.10). */
  maxKeepaliveSeconds: 300,
  /** Persistent sessions offline longer than this are expired (their queue freed). */
  sessionExpirySeconds: 3 * 24 * 3600,
  /** Persistent sessions one account (or "anonymous") may hold; a new one past it expires its
   * longest-offline one. */
  maxSessionsPerAccount: 50,
  maxPacketBytes: 262_144,
  maxClientIdLength: 23,
} as const;

/** The gateway's own publishes within this many ms are written to each subscriber together
 * (LocalBroker.cork); 0: each turn of the event loop on its own. */
export const LIVE_COALESCE_MS = 10;

/** A subscriber with more than this waiting in its connection does not get the gateway's live
 * messages until it reads (direct-delivery.ts): 200 stuck connections hold at most 50 MiB. */
export const LIVE_MAX_BUFFERED_BYTES = 256 * 1024;

/** A subscriber that has not read for this long is closed (aedes' drainTimeout, and the same for
 * live messages). */
export const LIVE_DRAIN_TIMEOUT_MS = 10_000;

export const LOGIN_DEFAULTS: LoginBackoffOptions = {
  freeFailures: 5,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
  maxConcurrent: 2,
  maxQueued: 16,
};

export const MEMORY_DEFAULTS: MemoryLimits = {
  // At most 24 MiB of payload in all (4 + 16 + 4) beside an idle ~95 MiB daemon, well under the
  // unit's MemoryHigh=200M (npm run bench:attacks, docs/PERFORMANCE.md); local apps' ordinary
  // use stays far below each of them.
  inflightPerClient: 20,
  inflightBytesPerClient: 512 * 1024,
  inflightBytesTotal: 4 * MiB,
  queuedPerClient: 1000,
  queuedBytesPerClient: 2 * MiB,
  queuedBytesTotal: 16 * MiB,
  retainedPerAccount: 100,
  retainedBytesPerAccount: 1 * MiB,
  retainedTotal: 1000,
  retainedBytesTotal: 4 * MiB,
};
