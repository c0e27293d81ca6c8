// Logs to stdout: structured JSON for journald, pipes and tests; human lines on a terminal.
// Level from LOG_LEVEL or config; format from --log-format, else LOG_FORMAT, else auto.
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** json: one JSON object a line. pretty: "03:12:09 INFO: web page ..." for a person. */
export type LogFormat = 'json' | 'pretty';

export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

/** The format to use: an explicit `json` or `pretty` (flag first, then LOG_FORMAT) wins;
 * `auto` (the default) is pretty only when stdout is a terminal. Under systemd stdout is the
 * journal's stream socket, never a TTY, so the service logs JSON whatever it is started with. */
export function logFormat(flag?: string, env: NodeJS.ProcessEnv = process.env, stdoutIsTty = process.stdout.isTTY === true): LogFormat {
  const asked = flag ?? (env.LOG_FORMAT || undefined) ?? 'auto';
  if (!(LOG_FORMATS as readonly string[]).includes(asked)) {
    throw new Error(`${flag !== undefined ? '--log-format' : 'LOG_FORMAT'} must be one of ${LOG_FORMATS.join(', ')} (got "${asked}")`);
  }
  if (asked === 'auto') return stdoutIsTty ? 'pretty' : 'json';
  return asked as LogFormat;
}

/** Levels by name and number, as pino numbers them. */
export const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
export type LevelName = keyof typeof LEVELS;

/** Keys whose values never reach the page or the diagnostic bundle (stdout keeps the setup
 * code: that is where the technician reads it). Not `code`: error codes (ECONNREFUSED) are
 * what a technician needs; a login code is never logged. */
const SECRET_KEY = /pass(word)?|secret|token|cookie|csrf|nonce|setupcode|recovery|totp|otpauth|private_?key|api_?key|authorization/i;
/** Secrets at the top level or one object down are also censored on stdout (pino redact). */
const REDACT_PATHS = ['password', 'secret', 'token', 'passwordHash', 'cookie', '*.password', '*.secret', '*.token', '*.passwordHash', '*.cookie'];

/** The last `capacity` log records of this process, kept in memory for the page's
 * diagnostics view and bundle (a pino stream, whatever the level stdout logs at). Records are
 * scrubbed of secrets when taken in, so nothing secret is ever held here. */
export class LogRing {
  private readonly buf: Record<string, unknown>[] = [];
  private next = 0;
  /** Records seen since start, also those that fell off the ring. */
  total = 0;

  constructor(readonly capacity = 500) {}

  /** pino calls this with one JSON line per record. */
  write(line: string): void {
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    rec = scrubRecord(rec);
    this.total++;
    if (this.buf.length < this.capacity) this.buf.push(rec);
    else this.buf[this.next] = rec;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Oldest first; `minLevel` keeps that level and above. */
  records(minLevel: LevelName = 'trace'): Record<string, unknown>[] {
    const min = LEVELS[minLevel];
    const ordered = this.buf.length < this.capacity ? this.buf : [...this.buf.slice(this.next), ...this.buf.slice(0, this.next)];
    return ordered.filter((r) => typeof r.level === 'number' && r.level >= min);
  }
}

/** The records of every logger createLogger() builds in this process (the daemon's). */
export const logRing = new LogRing(500);

/** A copy of `rec` with secret fields replaced, and their values cut out of every other string
 * too (the setup hint names its code in the message as well as in a field). */
export function scrubRecord(rec: Record<string, unknown>): Record<string, unknown> {
  const found: string[] = [];
  const walk = (v: unknown, depth: number): unknown => {
    if (depth > 8 || v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (SECRET_KEY.test(k) && x !== null && x !== undefined && typeof x !== 'boolean' && typeof x !== 'number') {
        collect(x, found);
        out[k] = '[redacted]';
      } else out[k] = walk(x, depth + 1);
    }
    return out;
  };
  const clean = walk(rec, 0) as Record<string, unknown>;
  const secrets = found.filter((s) => s.length >= 4);
  if (!secrets.length) return clean;
  const cut = (v: unknown): unknown => {
    if (typeof v === 'string') return secrets.reduce((s, x) => s.split(x).join('[redacted]'), v);
    if (Array.isArray(v)) return v.map(cut);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, cut(x)]));
    return v;
  };
  return cut(clean) as Record<string, unknown>;
}

function collect(v: unknown, into: string[]): void {
  if (typeof v === 'string') into.push(v);
  else if (Array.isArray(v)) v.forEach((x) => collect(x, into));
  else if (v && typeof v === 'object') Object.values(v).forEach((x) => collect(x, into));
}

export interface LoggerOptions {
  /** Default: logFormat() (LOG_FORMAT, else pretty on a terminal). */
  format?: LogFormat;
  /** Where lines go; default stdout. */
  destination?: DestinationStream;
  /** Colours in pretty lines; default: when the terminal supports them. */
  colorize?: boolean;
  /** The in-memory ring the page reads; default logRing; null: none. */
  ring?: LogRing | null;
}

export function createLogger(level?: string, opts: LoggerOptions = {}): Logger {
  const format = opts.format ?? logFormat();
  const wanted = process.env.LOG_LEVEL ?? level ?? 'info';
  const out = format === 'json' ? (opts.destination ?? pino.destination(1)) : prettyStream(opts);
  const ring = opts.ring === undefined ? logRing : opts.ring;
  const options = {
    base: { svc: 'community-gateway' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (!ring || wanted === 'silent' || !(wanted in LEVELS)) return pino({ ...options, level: wanted }, out);
  // The ring keeps info and above even when stdout is set to warn (what the technician needs
  // to see what happened), and debug/trace when stdout has them too. Below info nothing is
  // serialised unless asked for: debug calls stay free on a box logging at info.
  const ringLevel: LevelName = LEVELS[wanted as LevelName] < LEVELS.info ? (wanted as LevelName) : 'info';
  const streams = pino.multistream([
    { level: wanted as LevelName, stream: out },
    { level: ringLevel, stream: ring },
  ]);
  return pino({ ...options, level: LEVELS[wanted as LevelName] < LEVELS[ringLevel] ? wanted : ringLevel }, streams);
}

/** pino-pretty as a stream in this thread (not pino's worker-thread transport): no second V8
 * heap on a 1 GB box, and `sync` so the last lines before process.exit() are not lost. Loaded
 * only here, so the service (JSON) never loads it. */
function prettyStream(opts: LoggerOptions): DestinationStream {
  const require = createRequire(import.meta.url);
  const pretty = require('pino-pretty') as typeof import('pino-pretty');
  return pretty({
    sync: true,
    destination: opts.destination ?? 1,
    ...(opts.colorize !== undefined ? { colorize: opts.colorize } : {}),
    translateTime: 'SYS:HH:MM:ss',
    ignore: 'pid,hostname,svc',
    // Extra fields on the same line: one event, one line, as in the journal.
    singleLine: true,
  });
}

/** A logger that drops everything: for tests and benchmarks. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
