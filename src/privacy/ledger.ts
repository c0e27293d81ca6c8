// The per-resident privacy ledger (privacy.mode: dp): by pseudonym, the epsilon each resident
// has spent in noisy releases this calendar year, against an annual cap. A resident whose
// next window would pass the cap is left out of that window's releases and counted as
// excluded: the individual filter of Ebadi, Sands and Schneider ("Differential privacy: now
// it's getting personal", POPL 2015) and Feldman and Zrnic ("Individual privacy accounting
// via a Rényi filter", NeurIPS 2021): whether a resident is left out depends only on that
// resident's own past releases, so the cap bounds what the year's releases say about them.
//
// Amounts are kept in thousandths of epsilon (config epsilons have at most three decimals),
// so sums are exact. The file holds pseudonyms (personal data under PIPL, keyed by the site
// secret): it gets the site secret's protections, 0600, refused when group or others can
// read it, written whole (staged, fsynced, renamed). It is saved before the window's items
// reach the outbox: a crash in between over-counts a spend, never under-counts it.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/** The ledger's file name in the state folder (privacy.ledgerFile overrides it). */
export const LEDGER_FILE = 'privacy-ledger.json';

/** The calendar year in China time (UTC+8), where the sites are. */
export function ledgerYear(ts: number): number {
  return new Date(ts + 8 * 3600_000).getUTCFullYear();
}

export function milli(epsilon: number): number {
  return Math.floor(epsilon * 1000 + 1e-9);
}

const LedgerFile = z.strictObject({
  v: z.literal(1),
  year: z.number().int(),
  /** pseudonym -> [spent (thousandths of epsilon), sessions excluded] */
  residents: z.record(z.string().regex(/^[0-9a-z]{16}$/), z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()])),
});

export interface LedgerSummary {
  year: number;
  annualEpsilon: number;
  /** Residents with a spend this year; null when fewer than k. */
  residents: number | null;
  /** Residents by share of the cap spent; a bin of fewer than k residents is null. */
  spent: { from: number; to: number; residents: number | null }[];
  /** Residents left out of at least one window this year (past the cap); null when 1..k-1. */
  excludedResidents: number | null;
  /** Sessions left out this year; null when they come from 1..k-1 residents. */
  excludedSessions: number | null;
}

const BINS: [number, number][] = [
  [0, 0.25],
  [0.25, 0.5],
  [0.5, 0.75],
  [0.75, 1],
  [1, 1],
];

export class PrivacyLedger {
  private year = 0;
  private readonly residents = new Map<string, [number, number]>();
  private dirty = false;

  constructor(
    readonly file: string,
    readonly annualEpsilon: number,
  ) {}

  /** Reads the file if there is one (refusing one that others can read or that is damaged). */
  load(): this {
    let text: string;
    try {
      const st = fs.statSync(this.file);
      if ((st.mode & 0o077) !== 0) throw new Error(`privacy ledger ${this.file}: readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it`);
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this;
      throw err;
    }
    let parsed: z.infer<typeof LedgerFile>;
    try {
      parsed = LedgerFile.parse(JSON.parse(text));
    } catch (err) {
      // Never start from zero silently: that would hand every resident a fresh budget.
      throw new Error(`privacy ledger ${this.file}: damaged (${(err as Error).message.split('\n')[0]}); restore it from a backup, or remove it knowing every resident's budget starts again`);
    }
    this.year = parsed.year;
    for (const [p, v] of Object.entries(parsed.residents)) this.residents.set(p, [v[0], v[1]]);
    return this;
  }

  /** Starts a new year's ledger when `ts` is in a later year. A clock stepped back never
   * brings an old year back: spending goes on into the newer one. */
  private roll(ts: number): void {
    const y = ledgerYear(ts);
    if (y > this.year) {
      this.year = y;
      this.residents.clear();
      this.dirty = true;
    }
  }

  spent(pseudonym: string): number {
    return (this.residents.get(pseudonym)?.[0] ?? 0) / 1000;
  }

  /** Charges `cost` thousandths of epsilon to the resident for the window at `ts`, or, when
   * that would pass the annual cap, records `sessions` excluded and returns false. */
  charge(pseudonym: string, cost: number, sessions: number, ts: number): boolean {
    this.roll(ts);
    const e = this.residents.get(pseudonym) ?? [0, 0];
    this.dirty = true;
    if (e[0] + cost > milli(this.annualEpsilon)) {
      e[1] += sessions;
      this.residents.set(pseudonym, e);
      return false;
    }
    e[0] += cost;
    this.residents.set(pseudonym, e);
    return true;
  }

  /** Writes the ledger if it changed: staged, fsynced, renamed, the folder fsynced. */
  save(): void {
    if (!this.dirty) return;
    const dir = path.dirname(path.resolve(this.file));
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify({ v: 1, year: this.year, residents: Object.fromEntries(this.residents) }));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
    this.dirty = false;
  }

  /** What the privacy report may show: counts only, each one under the k rule. */
  summary(k: number): LedgerSummary {
    const cap = milli(this.annualEpsilon);
    const shown = (n: number) => (n >= k || n === 0 ? n : null);
    const all = [...this.residents.values()];
    const spent = BINS.map(([from, to]) => ({
      from,
      to,
      residents: shown(all.filter(([s]) => (from === to ? s >= cap * from : s >= cap * from && s < cap * to && s > 0)).length),
    }));
    const excluded = all.filter(([, x]) => x > 0);
    return {
      year: this.year,
      annualEpsilon: this.annualEpsilon,
      residents: shown(all.filter(([s]) => s > 0).length),
      spent,
      excludedResidents: shown(excluded.length),
      excludedSessions: excluded.length === 0 ? 0 : excluded.length >= k ? excluded.reduce((a, [, x]) => a + x, 0) : null,
    };
  }
}
