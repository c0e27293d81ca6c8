// The log's two forms: JSON for the journal and pipes, human lines on a terminal.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, logFormat, LogRing, scrubRecord } from '../src/log.js';

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

describe('LogRing (the page\'s recent log)', () => {
  it('keeps the last 500 records, oldest first, whatever stdout logs at, and filters by level', () => {
    const out = sink();
    const ring = new LogRing(500);
    // stdout at warn: the ring still has info and above.
    const log = createLogger('warn', { format: 'json', destination: out.stream, ring });
    for (let i = 0; i < 600; i++) log.info({ i }, `record ${i}`);
    log.debug('not kept: below info and below stdout');
    log.warn({ i: 600 }, 'a warning');
    log.error({ i: 601 }, 'an error');
    const all = ring.records();
    expect(all).toHaveLength(500);
    expect(ring.total).toBe(602);
    expect(all[0]!.msg).toBe('record 102');
    expect(all.at(-1)!.msg).toBe('an error');
    expect(all.map((r) => r.i)).toEqual(Array.from({ length: 500 }, (_, k) => k + 102));
    expect(ring.records('warn').map((r) => r.msg)).toEqual(['a warning', 'an error']);
    expect(ring.records('error').map((r) => r.msg)).toEqual(['an error']);
    // stdout kept its own level.
    const lines = out.text().trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    expect(lines.map((l) => l.msg)).toEqual(['a warning', 'an error']);
  });

  it('keeps debug records when the daemon logs at debug', () => {
    const ring = new LogRing(10);
    const log = createLogger('debug', { format: 'json', destination: sink().stream, ring });
    log.debug('a debug line');
    log.trace('not kept');
    expect(ring.records().map((r) => r.msg)).toEqual(['a debug line']);
    expect(ring.records('info')).toEqual([]);
  });

  it('holds no secret: secret fields are replaced and their values cut out of the message too', () => {
    const out = sink();
    const ring = new LogRing(10);
    const log = createLogger('info', { format: 'json', destination: out.stream, ring });
    log.info({ setupCode: '48213977', url: 'https://10.0.0.2:8443/' }, 'no admin account yet: enter the setup code 48213977');
    log.warn({ uplink: { password: 'Uplink-Pw-77' }, token: 'tok-abcdef' }, 'connecting');
    const text = JSON.stringify(ring.records());
    expect(text).not.toContain('48213977');
    expect(text).not.toContain('Uplink-Pw-77');
    expect(text).not.toContain('tok-abcdef');
    expect(ring.records()[0]!.msg).toBe('no admin account yet: enter the setup code [redacted]');
    expect(ring.records()[0]!.url).toBe('https://10.0.0.2:8443/');
    // stdout: the setup code stays (that is where the technician reads it), passwords do not.
    expect(out.text()).toContain('48213977');
    expect(out.text()).not.toContain('Uplink-Pw-77');
    expect(out.text()).not.toContain('tok-abcdef');
  });

  it('scrubRecord leaves numbers and booleans of secret-looking keys (counts, flags) alone', () => {
    expect(scrubRecord({ msg: 'x', recoveryCodesLeft: 3, totpRequired: true, detail: { password: 'Abc-12345' } })).toEqual({ msg: 'x', recoveryCodesLeft: 3, totpRequired: true, detail: { password: '[redacted]' } });
  });
});

describe('LogRing keeps what a technician needs', () => {
  it('an error code or a file path is not mistaken for a secret', () => {
    const ring = new LogRing(5);
    const log = createLogger('info', { format: 'json', destination: sink().stream, ring });
    log.warn({ code: 'ECONNREFUSED', keyFile: '/etc/cgw/client.key', passwordFile: '/etc/cgw/pw' }, 'uplink cannot connect: ECONNREFUSED');
    const r = ring.records()[0]!;
    expect(r.msg).toBe('uplink cannot connect: ECONNREFUSED');
    expect(r.code).toBe('ECONNREFUSED');
    expect(r.keyFile).toBe('/etc/cgw/client.key');
  });
});
