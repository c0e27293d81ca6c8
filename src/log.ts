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

export interface LoggerOptions {
  /** Default: logFormat() (LOG_FORMAT, else pretty on a terminal). */
  format?: LogFormat;
  /** Where lines go; default stdout. */
  destination?: DestinationStream;
  /** Colours in pretty lines; default: when the terminal supports them. */
  colorize?: boolean;
}

export function createLogger(level?: string, opts: LoggerOptions = {}): Logger {
  const format = opts.format ?? logFormat();
  const options = {
    level: process.env.LOG_LEVEL ?? level ?? 'info',
    base: { svc: 'community-gateway' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (format === 'json') return opts.destination ? pino(options, opts.destination) : pino(options);
  return pino(options, prettyStream(opts));
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
