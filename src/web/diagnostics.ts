// Diagnostics for the technician's page (docs/WEB.md, "Diagnostics"): the recent log records
// and the bundle a technician downloads and sends to support. The bundle is built from the
// same read-only state the page shows, then checked once more: no secret of the running
// config, and no value of a personal or identifier point, leaves the box inside it.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { WebApp } from './web-app.js';
import { LEVELS, type LevelName } from '../log.js';
import { packageVersion } from '../config/paths.js';
import { redactSecrets, REDACTED } from '../config/secrets.js';

export const LOG_LEVEL_NAMES = Object.keys(LEVELS) as LevelName[];

// Edge validation of this module's requests (kept here beside the routes they serve; the
// style of api-schemas.ts: strict, unknown fields refused).
/** GET /api/logs?level=warn */
export const LogsQuery = z.strictObject({ level: z.enum(LOG_LEVEL_NAMES as [LevelName, ...LevelName[]]).default('trace') });
/** POST /api/system/restart and /api/uplink/reconnect: an optional note for the audit log. */
export const SystemCommandBody = z.strictObject({ note: z.string().max(200).optional() });

/** The ring's records at `level` and above, oldest first, with the level's name beside its number. */
export function recentLogs(app: WebApp, level: LevelName = 'trace'): { capacity: number; total: number; level: LevelName; records: Record<string, unknown>[] } {
  const ring = app.logs;
  return { capacity: ring.capacity, total: ring.total, level, records: ring.records(level).map(withLevelName) };
}

function withLevelName(r: Record<string, unknown>): Record<string, unknown> {
  const name = LOG_LEVEL_NAMES.find((n) => LEVELS[n] === r.level);
  return { ...r, levelName: name ?? String(r.level) };
}

/** Free and total bytes of the file system holding the storage folder (null when unknown). */
function diskOf(dir: string): { path: string; freeBytes: number; totalBytes: number } | { path: string; error: string } {
  try {
    const s = fs.statfsSync(dir);
    return { path: dir, freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
  } catch (err) {
    return { path: dir, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
}

/** The gateway snapshot with only public points: a personal or identifier point is dropped
 * whole (not just its value: its timestamps say when a resident was measured). */
function publicStatus(app: WebApp): unknown {
  const g = app.gateway;
  const snap = g.snapshot() as { devices?: { id: string; points?: Record<string, unknown> }[]; gpio?: { id: string; points?: Record<string, unknown> }[] };
  const keep = (dev: { id: string; points?: Record<string, unknown> }) => {
    const profile = g.profileOf(dev.id);
    const pts = Object.entries(dev.points ?? {}).filter(([pid]) => profile?.points.find((p) => p.id === pid)?.privacy === 'public');
    return { ...dev, points: Object.fromEntries(pts) };
  };
  return { ...snap, devices: snap.devices?.map(keep), gpio: snap.gpio?.map(keep) };
}

/** Secrets the bundle must never hold, whatever path they take into it: the running config's
 * (uplink password, broker account hashes). */
function runningSecrets(app: WebApp): string[] {
  const c = app.config;
  const out: string[] = [];
  if (c.uplink.password) out.push(c.uplink.password);
  for (const a of c.localBroker.accounts ?? []) if (a.passwordHash) out.push(a.passwordHash);
  return out.filter((s) => s.length >= 4);
}

export interface Bundle {
  name: string;
  body: string;
}

/** The diagnostic bundle as one JSON document (a file name with the gateway id and time). */
export async function diagnosticBundle(app: WebApp, now = new Date()): Promise<Bundle> {
  const c = app.config;
  const bundle = {
    kind: 'community-gateway-diagnostics',
    generatedAt: now.toISOString(),
    gateway: { gatewayId: c.site.gatewayId, communityCode: c.site.communityCode, name: c.site.name ?? null },
    versions: { package: packageVersion(), node: process.version, platform: `${process.platform} ${process.arch}` },
    uptimeSeconds: Math.round(process.uptime()),
    disk: diskOf(path.dirname(path.resolve(c.storage.path))),
    status: publicStatus(app),
    counters: await app.metrics.render(),
    config: { file: app.configs.file, text: redactSecrets(app.configText) },
    configVersions: app.configs.versions(app.configText),
    logs: recentLogs(app).records,
  };
  let body = JSON.stringify(bundle, null, 1);
  // Belt and braces: a secret that found another way in (a log line quoting a config) is cut.
  for (const s of runningSecrets(app)) body = body.split(JSON.stringify(s).slice(1, -1)).join(REDACTED);
  const stamp = now.toISOString().replace(/[-:.]/g, '').slice(0, 15);
  return { name: `diagnostics-${c.site.gatewayId.replace(/[^\w-]/g, '_')}-${stamp}.json`, body };
}
