// What the web server, its metrics and its diagnostics need of the running application. An
// interface, so that web/ never imports app.ts: app.ts builds the web server and hands itself
// over as this (the composition root imports downwards only).
import type { ConfigStore, ConfigVersion } from '../config/config-store.js';
import type { Profile } from '../config/profile-schema.js';
import type { SiteConfig } from '../config/site-schema.js';
import type { LogRing } from '../log.js';
import type { Gateway } from '../main.js';
import type { Reading } from '../types.js';
import type { AuditLog } from './audit-log.js';
import type { WebAuth } from './auth.js';
import type { FieldError } from './config-edit.js';
import type { DrainTracker } from './drain-tracker.js';
import type { Metrics } from './metrics.js';

export type ApplyResult =
  | { ok: true; applied: 'none' | 'reload' | 'restart'; version: ConfigVersion }
  | { ok: false; errors: FieldError[] }
  | { ok: false; startError: string };

export interface Actor {
  user: string;
  ip: string;
}

export interface WebApp {
  /** The running gateway: replaced on a restart-apply, so read it each time. */
  readonly gateway: Gateway;
  readonly auth: WebAuth;
  readonly audit: AuditLog;
  readonly configs: ConfigStore;
  readonly metrics: Metrics;
  readonly drain: DrainTracker;
  readonly config: SiteConfig;
  /** The running config's text, secrets included (never sent as it is). */
  readonly configText: string;
  readonly logs: LogRing;
  readonly profiles: ReadonlyMap<string, Profile>;
  /** The site profile folder (drivers/ beside the config), or null when the config sits in the package. */
  siteProfileDir(): string | null;
  /** Set by the CLI when it can restart the daemon (exit 75 under systemd). */
  restartHandler: (() => void) | null;
  onReading(fn: (r: Reading) => void): () => void;
  validate(text: string): { ok: true; config: SiteConfig; text: string } | { ok: false; errors: FieldError[] };
  apply(text: string, who: Actor, note: string, action: 'config-apply' | 'config-rollback', rollbackOf?: number): Promise<ApplyResult>;
}
