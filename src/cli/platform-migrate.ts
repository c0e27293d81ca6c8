// `community-gateway platform migrate --db URL|FILE`: creates or upgrades the consumer's schema
// and says which steps it holds. Consumers migrate on start too (under a lock); this is for a
// deployment that runs the schema change first, as its own step, with its own account.
import { z } from 'zod';
import { openStore } from '../platform/consumer.js';
import { PostgresStore } from '../platform/store-postgres.js';
import { parseCommand, type CommandIo } from './args.js';

const MigrateArgs = z.strictObject({
  db: z.string({ error: 'is required: a PostgreSQL URL (postgres://...) or a SQLite file' }).min(1),
  files: z.array(z.string()).max(0, 'none expected: the database is given with --db'),
});

/** Exit code: 0 done, 1 the database refused or is unreachable, 2 bad arguments. */
export async function platformMigrateCommand(argv: string[], usage: string, io: CommandIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const p = parseCommand('platform migrate', argv, usage, io, { db: { type: 'string' } }, (v, files) => MigrateArgs.safeParse({ ...v, files }));
  if (!p.ok) return p.code;
  const store = openStore(p.args.db);
  try {
    await store.migrate();
    if (store instanceof PostgresStore) {
      for (const m of await store.applied()) io.stdout.write(`${m.version}\t${m.appliedAt}\t${m.name}\n`);
    } else {
      io.stdout.write(`${p.args.db}: schema up to date\n`);
    }
    return 0;
  } catch (err) {
    io.stderr.write(`platform migrate: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await store.close().catch(() => undefined);
  }
}
