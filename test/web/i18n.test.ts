// The page's texts: both languages have every key, and the config-check messages a form shows
// most (taken from the real checks, not typed here) read in Chinese.
import { describe, expect, it } from 'vitest';
import { parseSiteConfig } from '../../src/config/site-config.js';
import { loadProfiles } from '../../src/config/profiles.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import { splitError } from '../../src/web/config-edit.js';
// @ts-expect-error plain browser module without types
import { STRINGS, serverText, setLang } from '../../src/web/public/i18n.js';

// setLang marks <html lang>: a stand-in element outside the browser.
(globalThis as { document?: unknown }).document ??= { documentElement: {} };
const S = STRINGS as Record<string, Record<string, string>>;
const zh = serverText as (m: string) => string;

describe('page texts', () => {
  it('has the same keys in zh-CN and English', () => {
    expect(Object.keys(S['zh-CN']!).sort()).toEqual(Object.keys(S.en!).sort());
  });

  it('shows the entry forms\' common check messages in Chinese, the rest as sent', () => {
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
    const at = (path: string) => errors.find((e) => e.path === path)?.message ?? `(no error at ${path})`;
    setLang('zh-CN', false);
    expect(zh(at('devices[0].unitId'))).toBe('必须在 1 到 247 之间');
    expect(zh(at('devices[0].pollMs'))).toBe('必须在 100 到 86400000 之间');
    expect(zh(at('buses[0].path'))).toBe('串口设备不存在：/dev/ttyUSB9-not-here（请从本机串口中选择）');
    expect(zh(at('devices[1].bus'))).toBe('没有总线“nope”（已有：rs485）');
    expect(zh(at('devices[1].id'))).toMatch(/^只能用 1–63 个小写字母/);
    expect(zh(at('alarms[0].point'))).toBe('“systolic_bp”是个人数据：不能设置报警');
    expect(zh(at('alarms[1]'))).toMatch(/^需要且只能有一个条件/);
    expect(zh('something new from the server')).toBe('something new from the server');
    setLang('en', false);
    expect(zh(at('devices[0].unitId'))).toBe('must be 1..247');
  });
});
