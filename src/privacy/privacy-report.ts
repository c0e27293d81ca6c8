// The privacy report: for every point of every configured device, its class, whether the site
// overrode it, and what leaves the site in which form. This is what a data-protection officer
// reads and signs; `community-gateway privacy-report` prints it and /api/privacy serves it.
import type { Profile } from '../config/profile-schema.js';
import { profileOrigin, type ProfileSource } from '../config/profiles.js';
import { personalWindowSeconds, type SiteConfig } from '../config/site-schema.js';
import { effectiveProfile, leavesAs } from './policy.js';
import { dpThreshold } from './dp-release.js';
import path from 'node:path';
import { LEDGER_FILE, PrivacyLedger, type LedgerSummary } from './ledger.js';
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
  mode: 'k-anonymous' | 'dp';
  /** Which guarantee the release holds, in words a data-protection officer signs. */
  guarantee: string;
  k: number;
  epsilon: number | null;
  delta: number | null;
  /** dp mode: the noisy resident count each measure's window needs to be released. */
  thresholds: { device: string; point: string; threshold: number }[];
  /** dp mode: the per-resident ledger (counts only, each under the k rule); null otherwise or
   * when it could not be read. */
  ledger: LedgerSummary | null;
  windowSeconds: number;
  dailyBudget: string;
  /** The profiles the configured devices use, with their files. */
  profiles: { id: string; source?: ProfileSource; file?: string }[];
  points: PointReport[];
}

export function privacyReport(config: SiteConfig, profiles: ReadonlyMap<string, Profile>, ledger: LedgerSummary | null = null): PrivacyReport {
  const k = config.privacy.k;
  const eps = config.privacy.epsilon ?? null;
  const dp = config.privacy.mode === 'dp';
  const delta = config.privacy.delta ?? null;
  const thresholds: PrivacyReport['thresholds'] = [];
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
      if (dp && how === 'k-anonymous aggregate' && p.range) thresholds.push({ device: d.id, point: p.id, threshold: dpThreshold(p, { epsilon: eps!, delta: delta! }).threshold });
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
              ? dp
                ? `per ${pw} s window: a noisy resident count, a mean from a noisy sum of values clamped to ${p.range ? `${p.range.min}..${p.range.max}` : 'the range'}${p.bands ? `, noisy counts per band (${p.bands.map((b) => b.id).join(', ')})` : ''}; released only when the noisy count reaches ${dpThreshold(p, { epsilon: eps!, delta: delta! }).threshold}; one session per resident; epsilon ${eps} per resident per window; never min, max or a single value`
                : `per ${pw} s window: number of measurements, distinct residents, mean${bands}; only where >= ${k} distinct residents${p.bands ? ', small band cells suppressed with a complement' : ''}${eps ? `; counts with discrete Laplace noise, epsilon ${eps}` : ''}; never min, max or a single value`
              : 'nothing leaves the site',
      });
    }
  }
  const perWindow = 3 * measures;
  const dailyBudget = dp
    ? `each item costs a resident who appears in it epsilon ${eps}; a kiosk session with ${measures} measures costs ${Number((eps! * measures).toPrecision(4))} per window; the ledger caps a resident at ${config.privacy.annualEpsilon} a calendar year (China time), past which their sessions are left out and counted as excluded`
    : eps
    ? `each window releases ${perWindow} noisy counts per resident who measured in it (measurements, residents, band histogram for ${measures} measures), one session per resident per window: epsilon ${eps} x ${perWindow} = ${Number((eps * perWindow).toPrecision(4))} per window in which a resident measures; at most ${Math.max(1, Math.floor(86400 / pw))} windows of ${pw} s a day, so a resident measuring n times a day spends at most ${Number((eps * perWindow).toPrecision(4))} x n`
    : 'no differential privacy (privacy.epsilon not set): k-anonymity only';
  const guarantee = dp
    ? `(epsilon ${eps}, delta ${delta})-differential privacy per resident and released item, per ${pw} s window; at most ${config.privacy.annualEpsilon} epsilon per resident per calendar year (basic composition over the ledger)`
    : `k-anonymity: every released figure rests on at least ${k} distinct residents (decided on exact counts)${eps ? `; counts also carry discrete Laplace noise (epsilon ${eps}), but the k decision on exact counts means this is not differential privacy` : ''}`;
  return { site: { communityCode: config.site.communityCode, gatewayId: config.site.gatewayId }, mode: config.privacy.mode, guarantee, k, epsilon: eps, delta, thresholds, ledger: dp ? ledger : null, windowSeconds: pw, dailyBudget, profiles: [...used.values()].sort((a, b) => a.id.localeCompare(b.id)), points };
}

/** dp mode: the ledger's summary read from its file (read-only), or null when it cannot be
 * read here (another user's 0600 file, no file yet means an empty ledger). */
export function readLedgerSummary(config: SiteConfig, stateDir: string): LedgerSummary | null {
  const p = config.privacy;
  if (p.mode !== 'dp') return null;
  try {
    return new PrivacyLedger(p.ledgerFile ?? path.join(stateDir, LEDGER_FILE), p.annualEpsilon!).load().summary(p.k);
  } catch {
    return null;
  }
}

export function renderPrivacyReport(r: PrivacyReport): string {
  const lines = [
    `Privacy report — gateway ${r.site.gatewayId}, community ${r.site.communityCode}`,
    `Guarantee: ${r.guarantee}`,
    r.mode === 'dp' ? `Mode dp: epsilon ${r.epsilon}, delta ${r.delta}; personal aggregates per ${r.windowSeconds} s` : `k = ${r.k} distinct residents; personal aggregates per ${r.windowSeconds} s; ${r.epsilon ? `epsilon ${r.epsilon}` : 'no noise'}`,
    `Budget: ${r.dailyBudget}`,
    ...(r.mode === 'dp' ? ledgerLines(r.ledger, r.k) : []),
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

function ledgerLines(l: LedgerSummary | null, k: number): string[] {
  if (!l) return ['Ledger: not available here (it is read from the state folder of the running gateway)'];
  const n = (x: number | null) => (x === null ? `fewer than ${k}` : String(x));
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  return [
    `Ledger ${l.year || 'empty'}: cap ${l.annualEpsilon} epsilon per resident; residents with a spend: ${n(l.residents)}`,
    ...l.spent.map((b) => `    ${b.from === b.to ? `at the cap (${pct(b.to)})` : `${pct(b.from)}..${pct(b.to)} of the cap`}: ${n(b.residents)}`),
    `    excluded this year: ${n(l.excludedResidents)} residents, ${n(l.excludedSessions)} sessions`,
  ];
}
