// The page's texts: both languages have every key, and the config-check messages a form shows
// most (taken from the real checks, not typed here) read in Chinese.
import { describe, expect, it } from 'vitest';
import { parseSiteConfig } from '../../src/config/site-config.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { splitError } from '../../src/web/config-edit.js';
import { MESSAGES } from '../../src/messages/catalog.js';
import type { Coded } from '../../src/messages/identify.js';
// @ts-expect-error plain browser module without types
import { STRINGS, serverText, setLang, setMessages } from '../../src/web/public/i18n.js';

// setLang marks <html lang>: a stand-in element outside the browser.
(globalThis as { document?: unknown }).document ??= { documentElement: {} };
const S = STRINGS as Record<string, Record<string, string>>;
const show = serverText as (m: string, msg?: Coded) => string;
// What the page gets: the catalogue as GET /messages.js serves it (JSON of the same object).
(setMessages as (m: unknown) => void)(JSON.parse(JSON.stringify(MESSAGES)));

describe('page texts', () => {
  it('has the same keys in zh-CN and English', () => {
    expect(Object.keys(S['zh-CN']!).sort()).toEqual(Object.keys(S.en!).sort());
  });

  it('shows the server\'s check messages (taken from the real checks) in Chinese with their code, a text without a code as sent', () => {
    const text = [
      'site: { communityCode: "330106001001", gatewayId: gw-t }',
      'storage: { path: ./t.db }',
      'uplink: { url: mqtt://127.0.0.1:1884 }',
      'buses:',
      '  - { id: rs485, type: modbus-rtu, path: /dev/ttyUSB9-not-here }',
      'devices:',
      '  - { id: kiosk-1, facility: health, profile: fc-health-kiosk-v1, bus: rs485, unitId: 300, pollMs: 10 }',
      '  - { id: Bad Id, facility: canteen, profile: xy-md02, bus: nope, unitId: 2 }',
      'alarms:',
      '  - { id: bp, device: kiosk-1, point: systolic_bp, above: 180 }',
      '  - { id: x, device: kiosk-1, point: pulse_rate }',
    ].join('\n');
    const r = parseSiteConfig(text, loadProfiles(DRIVERS_DIR), { serialPaths: 'error' });
    expect(r.ok).toBe(false);
    const errors = (r.ok ? [] : r.errors).map(splitError);
    const at = (path: string): [string, Coded] => {
      const e = errors.find((x) => x.path === path);
      return e ? [e.message, e.msg] : [`(no error at ${path})`, { code: 'untranslated', params: { text: path } }];
    };
    const zh = (path: string) => show(...at(path));
    setLang('zh-CN', false);
    expect(zh('devices[0].unitId')).toBe('必须在 1 到 247 之间 [config.range]');
    expect(zh('devices[0].pollMs')).toBe('必须在 100 到 86400000 之间 [config.range]');
    expect(zh('buses[0].path')).toBe('串口设备不存在：/dev/ttyUSB9-not-here（请从本机的串口中选择：/dev/serial/by-id/...） [config.serial-missing]');
    expect(zh('devices[1].bus')).toBe('没有总线“nope”（已有：rs485） [config.no-bus]');
    expect(zh('devices[1].id')).toMatch(/^只能用 1–63 个小写字母.* \[config\.id-format\]$/);
    expect(zh('alarms[0].point')).toBe('“systolic_bp”是个人数据：在其上设报警会暴露个人信息 [config.alarm-private]');
    expect(zh('alarms[1]')).toMatch(/^需要且只能有一个条件.*\[config\.alarm-condition\]$/);
    // A text the server sent without a code stays as it came; an unnamed one too, without a code.
    expect(show('something new from the server')).toBe('something new from the server');
    expect(show('weird', { code: 'untranslated', params: { text: 'weird' } })).toBe('weird');
    setLang('en', false);
    expect(zh('devices[0].unitId')).toBe('must be 1..247 [config.range]');
  });
});
