// The privacy report: for every point of every configured device, its class, whether the site
// overrode it, and what leaves the site in which form. This is what a data-protection officer
// reads and signs; `community-gateway privacy-report` prints it and /api/privacy serves it.
import type { Profile } from '../config/profile-schema.js';
import { profileOrigin, type ProfileSource } from '../config/profiles.js';
import { personalWindowSeconds, type SiteConfig } from '../config/site-schema.js';
import { effectiveProfile, leavesAs } from './policy.js';
import { rawDatabasePath } from '../store/raw-database.js';

export interface PointReport {
  device: string;
  facility: string;
  point: string;
  /** The device's profile id, and where it came from: shipped with the package, or the
   * site's own (a site profile's classes were set on site, not reviewed with the package). */
  profile: string;
  profileSource?: ProfileSource;
  unit: string;
  privacy: string;
  profileClass: string;
  overridden: boolean;
  localBroker: string;
  stored: string;
  leaves: string;
}

export interface PrivacyReport {
  site: { communityCode: string; gatewayId: string };
  k: number;
  epsilon: number | null;
  windowSeconds: number;
  dailyBudget: string;
  /** The profiles the configured devices use, with their files. */
  profiles: { id: string; source?: ProfileSource; file?: string }[];
  points: PointReport[];
}

export function privacyReport(config: SiteConfig, profiles: ReadonlyMap<string, Profile>): PrivacyReport {
  const k = config.privacy.k;
  const eps = config.privacy.epsilon ?? null;
  const w = config.uplink.windowSeconds;
  const pw = personalWindowSeconds(config);
  const points: PointReport[] = [];
  const used = new Map<string, PrivacyReport['profiles'][number]>();
  let measures = 0;
  for (const d of config.devices) {
    const base = profiles.get(d.profile)!;
    const origin = profileOrigin(profiles, d.profile);
    if (!used.has(d.profile)) used.set(d.profile, { id: d.profile, ...(origin ? { source: origin.source, file: origin.file } : {}) });
    const prof = effectiveProfile(base, d.privacy);
    measures = Math.max(measures, prof.events?.values.length ?? 0);
    for (const p of prof.points) {
      const original = base.points.find((x) => x.id === p.id)!.privacy;
      const how = leavesAs(prof, p);
      const bands = p.bands ? `, counts per band (${p.bands.map((b) => b.id).join(', ')})` : '';
      points.push({
        device: d.id,
        facility: d.facility,
        point: p.id,
        profile: d.profile,
        ...(origin ? { profileSource: origin.source } : {}),
        unit: p.unit,
        privacy: p.privacy,
        profileClass: original,
        overridden: original !== p.privacy,
        localBroker:
          p.privacy === 'identifier'
            ? 'never published'
            : `raw values on community/${config.site.gatewayId}/${d.facility}/${d.id}/${p.id}${p.privacy === 'personal' ? ' (personal: restrict with local broker accounts)' : ''}`,
        stored: p.privacy === 'identifier' ? `never stored; a keyed pseudonym in memory only, to count distinct residents` : `raw values for ${config.storage.rawRetentionHours} h in ${rawDatabasePath(config.storage.path)}`,
        leaves:
          how === 'aggregate'
            ? `per ${w} s window: count, mean, min, max, sum, last${p.kind === 'counter' ? ', increase' : ''}${p.type === 'bool' || p.type === 'bit' ? ', share on, changes' : ''}`
            : how === 'k-anonymous aggregate'
              ? `per ${pw} s window: number of measurements, distinct residents, mean${bands}; only where >= ${k} distinct residents${p.bands ? ', small band cells suppressed with a complement' : ''}${eps ? `; counts with Laplace noise, epsilon ${eps}` : ''}; never min, max or a single value`
              : 'nothing leaves the site',
      });
    }
  }
  const perWindow = 3 * measures;
  const dailyBudget = eps
    ? `each window releases ${perWindow} noisy counts per resident who measured in it (measurements, residents, band histogram for ${measures} measures), one session per resident per window: epsilon ${eps} x ${perWindow} = ${Number((eps * perWindow).toPrecision(4))} per window in which a resident measures; at most ${Math.max(1, Math.floor(86400 / pw))} windows of ${pw} s a day, so a resident measuring n times a day spends at most ${Number((eps * perWindow).toPrecision(4))} x n`
    : 'no differential privacy (privacy.epsilon not set): k-anonymity only';
  return { site: { communityCode: config.site.communityCode, gatewayId: config.site.gatewayId }, k, epsilon: eps, windowSeconds: pw, dailyBudget, profiles: [...used.values()].sort((a, b) => a.id.localeCompare(b.id)), points };
}

export function renderPrivacyReport(r: PrivacyReport): string {
  const lines = [
    `Privacy report — gateway ${r.site.gatewayId}, community ${r.site.communityCode}`,
    `k = ${r.k} distinct residents; personal aggregates per ${r.windowSeconds} s; ${r.epsilon ? `epsilon ${r.epsilon}` : 'no noise'}`,
    `Budget: ${r.dailyBudget}`,
    '',
    'Profiles in use:',
    ...r.profiles.map((p) => `    ${p.id}: ${p.source ?? 'source unknown'}${p.file ? ` (${p.file})` : ''}`),
    '',
  ];
  for (const p of r.points) {
    const site = p.profileSource === 'site' ? `; site profile ${p.profile}` : '';
    lines.push(`${p.device}.${p.point} [${p.facility}] class ${p.privacy}${p.overridden ? ` (profile says ${p.profileClass}; overridden by the site)` : ''}${site}`);
    lines.push(`    local broker: ${p.localBroker}`);
    lines.push(`    stored:       ${p.stored}`);
    lines.push(`    leaves site:  ${p.leaves}`);
  }
  return `${lines.join('\n')}\n`;
}
