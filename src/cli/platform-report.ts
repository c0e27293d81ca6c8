// `community-gateway platform report --db ... --from --to [--community CODE] [--period day|week]
// [--format csv|json|html] [--utc-offset +08:00] [--rules FILE] [--out FILE]`: the operation
// evaluation (src/platform/report/) from a consumer's database, opened read-only (no schema
// change). Report files hold community and facility figures only (no personal data) but are
// written 0600 like every file our commands write: the operator decides who reads them.
import { z } from 'zod';
import { openStore } from '../platform/consumer.js';
import { evaluate } from '../platform/report/evaluate.js';
import { parseTime, parseUtcOffset } from '../platform/report/periods.js';
import { renderCsv } from '../platform/report/render-csv.js';
import { renderHtml } from '../platform/report/render-html.js';
import { DEFAULT_RULES, loadRules } from '../platform/report/rules.js';
import { loadFacilityTypes } from '../config/facility-types.js';
import { DRIVERS_DIR } from '../config/paths.js';
import { parseCommand, emitJson, type CommandIo } from './args.js';

const ReportArgs = z
  .strictObject({
    db: z.string({ error: 'is required: a PostgreSQL URL (postgres://...) or a SQLite file' }).min(1),
    from: z.string({ error: 'is required: a date (2026-11-01) or an ISO time' }),
    to: z.string({ error: 'is required: a date (2026-12-01, exclusive) or an ISO time' }),
    community: z.string().regex(/^\d{12}$/, 'must be a 12-digit community code').optional(),
    period: z.enum(['day', 'week'], { error: 'must be day or week' }).default('day'),
    format: z.enum(['csv', 'json', 'html'], { error: 'must be csv, json or html' }).default('json'),
    'utc-offset': z.string().default('+08:00'),
    rules: z.string().min(1).optional(),
    out: z.string().min(1).optional(),
    files: z.array(z.string()).max(0, 'none expected'),
  })
  .transform((a, ctx) => {
    const offset = parseUtcOffset(a['utc-offset']);
    if (offset === undefined) {
      ctx.addIssue({ code: 'custom', path: ['utc-offset'], message: 'must be +HH:MM or -HH:MM, e.g. +08:00' });
      return z.NEVER;
    }
    const from = parseTime(a.from, offset);
    const to = parseTime(a.to, offset);
    if (from === undefined) ctx.addIssue({ code: 'custom', path: ['from'], message: `"${a.from}" is not a date (YYYY-MM-DD) or an ISO time with its zone` });
    if (to === undefined) ctx.addIssue({ code: 'custom', path: ['to'], message: `"${a.to}" is not a date (YYYY-MM-DD) or an ISO time with its zone` });
    if (from === undefined || to === undefined) return z.NEVER;
    if (to <= from) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be after --from' });
    else if (to - from > 366 * 86_400_000) ctx.addIssue({ code: 'custom', path: ['to'], message: 'the range may span at most 366 days' });
    return { ...a, fromMs: from, toMs: to, offset };
  });

/** Exit code: 0 written, 1 the database or rules file failed, 2 bad arguments. */
export async function platformReportCommand(argv: string[], usage: string, io: CommandIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const options = { db: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, community: { type: 'string' }, period: { type: 'string' }, format: { type: 'string' }, 'utc-offset': { type: 'string' }, rules: { type: 'string' }, out: { type: 'string' } } as const;
  const p = parseCommand('platform report', argv, usage, io, options, (v, files) => ReportArgs.safeParse({ ...v, files }));
  if (!p.ok) return p.code;
  const a = p.args;
  let rules = DEFAULT_RULES;
  try {
    if (a.rules) rules = loadRules(a.rules);
  } catch (err) {
    io.stderr.write(`platform report: ${(err as Error).message}\n`);
    return 1;
  }
  const store = openStore(a.db);
  try {
    await store.openForReading();
    // The shipped facility types decide each type's figures; a site's own type gets them all.
    const report = await evaluate(store, { from: a.fromMs, to: a.toMs, ...(a.community ? { community: a.community } : {}), period: a.period, utcOffsetMin: a.offset, rules, types: loadFacilityTypes(DRIVERS_DIR, null) });
    const text = a.format === 'csv' ? renderCsv(report) : a.format === 'html' ? renderHtml(report) : `${JSON.stringify(report, null, 2)}\n`;
    const err = emitJson(text, a.out, io);
    if (err) {
      io.stderr.write(`platform report: ${err}\n`);
      return 1;
    }
    const n = report.communities.length;
    io.stderr.write(`platform report: ${n} ${n === 1 ? 'community' : 'communities'}, ${report.communities.reduce((s, c) => s + c.facilities.length, 0)} facilities${a.out ? `, written to ${a.out}` : ''}\n`);
    return 0;
  } catch (err) {
    io.stderr.write(`platform report: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await store.close().catch(() => undefined);
  }
}
