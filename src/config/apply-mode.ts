// How a changed site config is applied by a running daemon, whichever way it came (the web
// page today, the platform later): in place, by a restart, or not at all. Some fields are
// fixed while the daemon runs: moving them would silently start a new outbox (its seq from 1,
// which the platform's de-duplication then drops as already seen) or a new site secret (every
// pseudonym changes). They change in the file, with the daemon stopped (docs/CONFIG.md).
import type { SiteConfig } from './site-schema.js';

export interface FixedFieldChange {
  path: string;
  message: string;
}

const FIXED: { path: string; of: (c: SiteConfig) => unknown; why: string }[] = [
  { path: 'storage.path', of: (c) => c.storage.path, why: 'the outbox and its sequence numbers live there' },
  { path: 'privacy.secretFile', of: (c) => c.privacy.secretFile, why: 'a new site secret would change every pseudonym' },
  { path: 'privacy.ledgerFile', of: (c) => c.privacy.ledgerFile, why: 'a new ledger would give every resident a fresh annual budget' },
];

/** Fields of `b` that differ from the running `a` but cannot change while the daemon runs. */
export function fixedFieldChanges(a: SiteConfig, b: SiteConfig): FixedFieldChange[] {
  return FIXED.filter((f) => JSON.stringify(f.of(a)) !== JSON.stringify(f.of(b))).map((f) => ({
    path: f.path,
    message: `cannot be changed while the gateway runs (${f.why}); stop the service, move the files and edit the config file (docs/CONFIG.md)`,
  }));
}

// facilities: only the items' facility ids and house codes and the inventory change.
const HOT = new Set(['buses', 'devices', 'gpio', 'alarms', 'simulator', 'log', 'facilities']);

/** 'reload' when only io-side sections, facilities (and site.name, site.houseCodePattern) changed, 'restart' for anything else,
 * 'none' when nothing did. */
export function applyMode(a: SiteConfig, b: SiteConfig): 'none' | 'reload' | 'restart' {
  let mode: 'none' | 'reload' = 'none';
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof SiteConfig>;
  for (const k of keys) {
    if (k === 'site') {
      if (a.site.communityCode !== b.site.communityCode || a.site.gatewayId !== b.site.gatewayId) return 'restart';
      if (a.site.name !== b.site.name || a.site.houseCodePattern !== b.site.houseCodePattern) mode = 'reload';
      continue;
    }
    if (JSON.stringify(a[k]) === JSON.stringify(b[k])) continue;
    if (!HOT.has(k)) return 'restart';
    mode = 'reload';
  }
  return mode;
}
