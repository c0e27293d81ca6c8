import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MESSAGES, type MessageCode } from '../../src/messages/catalog.js';
import { identify, placeholders, render } from '../../src/messages/identify.js';
import { ModbusExceptionError, ModbusTimeoutError } from '../../src/io/modbus/errors.js';
import { messageLiterals } from './source-literals.js';
import { parseSiteConfig } from '../../src/config/site-config.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';

const codes = Object.keys(MESSAGES) as MessageCode[];
const CJK = /[\u4e00-\u9fff]/;

/** The folders whose messages reach the technician's page (CLI-only and platform code aside). */
const PAGE_SOURCES = ['src/config', 'src/web', 'src/io/modbus', 'src/io/gpio', 'src/scan', 'src/security', 'src/uplink', 'src/main.ts', 'src/app.ts'];
/** `community-gateway audit verify` only: its messages go to the terminal, not the page. */
const NOT_PAGE = new Set(['src/web/audit-verify.ts']);
const sourceFiles = PAGE_SOURCES.flatMap((p) => (p.endsWith('.ts') ? [p] : fs.readdirSync(p).filter((f) => f.endsWith('.ts')).map((f) => path.join(p, f)))).filter((f) => !NOT_PAGE.has(f));
/** Literals made only of other messages ("${path}: ${message}", "${reason} (${endpoint})", a
 * conditional inside): what they hold is checked where it is made, and identify() splits them. */
const COMPOSITE = new Set(['v: v', 'v (v)', 'X-Request-Nonce: v']);

describe('message catalogue', () => {
  it('every code has English and Chinese text with the same parameters', () => {
    const bad: string[] = [];
    for (const c of codes) {
      const { en, zh } = MESSAGES[c];
      if (!en.trim()) bad.push(`${c}: no English`);
      if (!zh.trim()) bad.push(`${c}: no Chinese`);
      else if (c !== 'untranslated' && !CJK.test(zh)) bad.push(`${c}: the Chinese text has no Chinese in it: ${zh}`);
      if ([...placeholders(en)].sort().join() !== [...placeholders(zh)].sort().join()) bad.push(`${c}: parameters differ: ${en} / ${zh}`);
    }
    expect(bad).toEqual([]);
  });

  it('every code is found again from its own English text (no template hides another)', () => {
    const wrong: string[] = [];
    for (const c of codes) {
      if (c === 'untranslated') continue;
      // Nested parameters get a known message so that almost-all-parameter templates count.
      const text = MESSAGES[c].en.replace(/\{(\w+)\}/g, (_m, n: string) => (n === 'detail' || n === 'reason' ? 'link closed' : `${n}-1`));
      const got = identify(text);
      if (got.code !== c) wrong.push(`${c} -> ${got.code}: ${text}`);
      else expect(render(got)).toBe(text);
    }
    expect(wrong).toEqual([]);
  });

  it('a message with a path, a nested message, and a list of messages', () => {
    const c = identify('devices[2].unitId: must be a whole number 1..247');
    expect(c).toEqual({ code: 'config.int-range', params: { lo: '1', hi: '247' }, path: 'devices[2].unitId' });
    expect(render(c, 'zh')).toBe('devices[2].unitId：必须是 1 到 247 之间的整数');
    const n = identify('connect to 127.0.0.1:502 failed: connect ECONNREFUSED 127.0.0.1:502');
    expect(n.code).toBe('modbus.connect-failed');
    expect(render(n, 'zh')).toBe('连接 127.0.0.1:502 失败：连接被拒绝（ECONNREFUSED 127.0.0.1:502）：对方端口没有服务');
    const p = identify('the password needs at least 12 characters; is a common or default password');
    expect(render(p, 'zh')).toBe('密码至少需要 12 个字符；是常见或默认密码');
    const x = identify('modbus exception 2 ILLEGAL DATA ADDRESS');
    expect(render(x, 'zh')).toBe('Modbus 异常 2（非法数据地址）');
    expect(render(x)).toBe('modbus exception 2 ILLEGAL DATA ADDRESS');
    const f = identify('/etc/community-gateway/drivers/acme.yaml: points[0].id: must be lower_snake_case (it becomes an MQTT topic level)');
    expect(f).toMatchObject({ code: 'profile.point-id', path: '/etc/community-gateway/drivers/acme.yaml: points[0].id' });
    expect(identify('something no template says')).toEqual({ code: 'untranslated', params: { text: 'something no template says' } });
    // An almost-all-parameter template does not swallow an unknown text.
    expect(identify('weird (thing)').code).toBe('untranslated');
  });

  it("a config check replaces zod's own English with the catalogue's, and keeps a rule's own message", () => {
    const text = ['site: { communityCode: "330106001001", gatewayId: gw-t }', 'storage: { path: ./t.db }', 'uplink: { url: mqtt://127.0.0.1:1884 }', 'clock: { syncFile: "" }', 'buses: []', 'devices: []'].join('\n');
    const r = parseSiteConfig(text, loadProfiles(DRIVERS_DIR));
    expect(r.ok).toBe(false);
    const errors = r.ok ? [] : r.errors;
    expect(errors).toContainEqual(expect.stringMatching(/^clock\.syncFile: must not be empty \(line 4\)$/));
    expect(errors.every((e) => identify(e.replace(/ \(line \d+\)$/, '')).code !== 'untranslated')).toBe(true);
  });

  it('every Modbus exception the gateway names reads in Chinese', () => {
    for (const code of [1, 2, 3, 4, 5, 6, 8, 10, 11, 99]) {
      const zh = render(identify(new ModbusExceptionError(code).message), 'zh');
      expect(zh, zh).toMatch(new RegExp(`^Modbus 异常 ${code}（[\u4e00-\u9fff，]+）$`));
    }
    expect(render(identify(new ModbusTimeoutError(500).message), 'zh')).toBe('500 毫秒内无应答');
  });

  it('every message literal in the sources the page shows has a code', () => {
    const found = sourceFiles.flatMap((f) => messageLiterals(f));
    // The scanner must see the messages at all: a broken scanner would pass with nothing found.
    expect(found.length).toBeGreaterThan(150);
    expect(found.some((l) => l.text === 'must be a whole number v..v')).toBe(true);
    const missing = found.filter((l) => !COMPOSITE.has(l.text) && identify(l.text).code === 'untranslated').map((l) => `${l.file}:${l.line}: ${l.text}`);
    expect(missing).toEqual([]);
  });
});
