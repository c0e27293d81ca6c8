// Structured JSON logs to stdout (journald picks them up). Level from LOG_LEVEL or config.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level?: string): Logger {
  return pino({
    level: process.env.LOG_LEVEL ?? level ?? 'info',
    base: { svc: 'community-gateway' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** A logger that drops everything: for tests and benchmarks. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
