// Where the daemon keeps its state beside the data: web-admin.json (the admin login) and
// audit.log. One function, used by the daemon (App) and by `community-gateway reset-admin`,
// so both always agree on the place.
import path from 'node:path';
import type { SiteConfig } from './site-schema.js';

export function stateDirOf(config: SiteConfig): string {
  return path.dirname(path.resolve(config.storage.path));
}
