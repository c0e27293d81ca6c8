// Host header parsing and matching for the DNS rebinding check (RFC 9110 7.2: host[:port]).
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { HostCheck, parseHost } from '../../src/web/host-check.js';

describe('parseHost', () => {
  it.each([
    ['127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }],
    ['GW.Local', { host: 'gw.local' }],
    ['gw.local.:80', { host: 'gw.local', port: 80 }],
    ['[::1]:8080', { host: '::1', port: 8080 }],
    ['[fe80::1%25eth0]:80', { host: 'fe80::1', port: 80 }],
    ['', null],
    ['::1', null],
    ['[::1', null],
    ['a b', null],
    ['host:0', null],
    ['host:65536', null],
    ['host:80x', null],
    ['user@host', null],
  ])('%j → %j', (h, want) => {
    expect(parseHost(h)).toEqual(want);
  });
});

describe('HostCheck', () => {
  it('accepts the box names on the right port only; the listen address and extra names count', () => {
    const c = new HostCheck(() => '10.20.30.40', () => ['gw.example.lan']);
    for (const h of ['localhost:8080', '127.0.0.1:8080', '[::1]:8080', `${os.hostname()}:8080`, `${os.hostname().split('.')[0]}.local:8080`, '10.20.30.40:8080', 'gw.example.lan:8080']) {
      expect(c.allows(h, 8080, 80), h).toBe(true);
    }
    expect(c.allows('localhost', 8080, 80)).toBe(false);
    expect(c.allows('localhost', 80, 80)).toBe(true);
    expect(c.allows('localhost:8081', 8080, 80)).toBe(false);
    expect(c.allows('evil.example:8080', 8080, 80)).toBe(false);
    expect(c.allows(undefined, 8080, 80)).toBe(false);
    expect(new HostCheck(() => '0.0.0.0').names().has('0.0.0.0')).toBe(false);
  });
});
