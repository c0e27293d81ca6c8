// The log's two forms: JSON for the journal and pipes, human lines on a terminal.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, logFormat } from '../src/log.js';

function sink() {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

describe('logFormat', () => {
  it('auto (the default) is pretty on a terminal and JSON otherwise (systemd: stdout is the journal, not a TTY)', () => {
    expect(logFormat(undefined, {}, true)).toBe('pretty');
    expect(logFormat(undefined, {}, false)).toBe('json');
    expect(logFormat(undefined, { LOG_FORMAT: 'auto' }, false)).toBe('json');
    expect(logFormat(undefined, { LOG_FORMAT: '' }, true)).toBe('pretty');
  });

  it('LOG_FORMAT and --log-format say json or pretty whatever stdout is; the flag wins', () => {
    expect(logFormat(undefined, { LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(logFormat(undefined, { LOG_FORMAT: 'pretty' }, false)).toBe('pretty');
    expect(logFormat('json', { LOG_FORMAT: 'pretty' }, true)).toBe('json');
    expect(logFormat('auto', { LOG_FORMAT: 'json' }, true)).toBe('pretty');
  });

  it('an unknown format is refused, naming where it came from', () => {
    expect(() => logFormat('colour', {}, true)).toThrow('--log-format must be one of auto, json, pretty (got "colour")');
    expect(() => logFormat(undefined, { LOG_FORMAT: 'text' }, true)).toThrow('LOG_FORMAT must be one of auto, json, pretty (got "text")');
  });
});

describe('createLogger', () => {
  it('json: one JSON object a line with level, time, svc and the fields', () => {
    const out = sink();
    const log = createLogger('info', { format: 'json', destination: out.stream });
    log.info({ port: 8080 }, 'web server listening');
    log.debug('not at info');
    const lines = out.text().trim().split('\n');
    expect(lines).toHaveLength(1);
    const o = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(o).toMatchObject({ level: 30, svc: 'community-gateway', port: 8080, msg: 'web server listening' });
    expect(o.time).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('pretty: "[hh:mm:ss] LEVEL: message {fields}" on one line, no pid, host or svc', async () => {
    const out = sink();
    const log = createLogger('info', { format: 'pretty', destination: out.stream, colorize: false });
    log.info({ urls: ['https://192.0.2.2:8080/'] }, 'web page: https://192.0.2.2:8080/');
    log.warn('uplink cannot connect');
    await new Promise((r) => setImmediate(r));
    const lines = out.text().trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^\[\d\d:\d\d:\d\d\] INFO: web page: https:\/\/192\.0\.2\.2:8080\/ \{"urls":\["https:\/\/192\.0\.2\.2:8080\/"\]\}$/),
      expect.stringMatching(/^\[\d\d:\d\d:\d\d\] WARN: uplink cannot connect$/),
    ]);
    expect(out.text()).not.toMatch(/svc|pid|hostname|community-gateway/);
  });
});
