// `community-gateway outbox`: what waits for the platform, read from the SQLite file without
// disturbing a running daemon (read-only; WAL lets a reader in beside the writer).
import Database from 'better-sqlite3';

export interface OutboxReport {
  file: string;
  rows: number;
  bytes: number;
  oldestTs: number | null;
  lastSeq: number;
  byKind: Record<string, { rows: number; bytes: number }>;
  shed: { rows: number; bytes: number };
  dropped: number;
}

export function outboxReport(file: string): OutboxReport {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new Error(`cannot open ${file}: ${(err as Error).message}`);
  }
  try {
    const kinds = db.prepare('SELECT kind, COUNT(*) AS rows, COALESCE(SUM(bytes), 0) AS bytes FROM outbox GROUP BY kind').all() as { kind: string; rows: number; bytes: number }[];
    const oldest = db.prepare('SELECT MIN(ts) AS ts FROM outbox').get() as { ts: number | null };
    const seq = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").get() as { seq: number } | undefined;
    const counters = new Map((db.prepare('SELECT name, value FROM counters').all() as { name: string; value: number }[]).map((r) => [r.name, r.value]));
    return {
      file,
      rows: kinds.reduce((n, k) => n + k.rows, 0),
      bytes: kinds.reduce((n, k) => n + k.bytes, 0),
      oldestTs: oldest.ts,
      lastSeq: seq?.seq ?? 0,
      byKind: Object.fromEntries(kinds.map((k) => [k.kind, { rows: k.rows, bytes: k.bytes }])),
      shed: { rows: counters.get('shed_rows') ?? 0, bytes: counters.get('shed_bytes') ?? 0 },
      dropped: counters.get('dropped_rows') ?? 0,
    };
  } finally {
    db.close();
  }
}

export function renderOutbox(r: OutboxReport, now = Date.now()): string {
  const age = r.oldestTs === null ? 'empty' : `oldest ${new Date(r.oldestTs).toISOString()} (${Math.round((now - r.oldestTs) / 1000)} s ago)`;
  const kinds = Object.entries(r.byKind)
    .map(([k, v]) => `${k} ${v.rows}`)
    .join(', ');
  return [
    `outbox ${r.file}`,
    `  waiting: ${r.rows} items, ${r.bytes} bytes${kinds ? ` (${kinds})` : ''}; ${age}`,
    `  last seq: ${r.lastSeq}`,
    `  shed by the cap: ${r.shed.rows} items, ${r.shed.bytes} bytes; dropped (disk full): ${r.dropped}`,
    '',
  ].join('\n');
}
