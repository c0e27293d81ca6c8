// The YAML editor, the header and the overview on a phone (390 x 844 and 360 wide, zh-CN) in
// Debian's Chromium: a gutter numbers every logical line at that line's height with soft wrap
// on (checked against where the textarea itself lays each line out, not against the page's own
// mirror), stays aligned while scrolling and typing; an error that names a line is a button
// that selects that line; the header is two short rows; the overview fits the screen with each
// device's newest-value time in view. Screenshots go to test/artifacts/.
import { type Page } from 'playwright-core';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { haveChromium, PAGE_PASSWORD, setUpAdmin, shot, usePageSite } from '../helpers/chromium.js';
import { freePort } from '../helpers/peers.js';
import { baseConfig } from '../helpers/gateway.js';

let cfg: Record<string, unknown>;

const site = usePageSite(async () => {
  const simPort = await freePort();
  cfg = baseConfig({
    site: { communityCode: '330106001001', gatewayId: 'gw-e2e-editor', name: '拱墅区 和睦街道 长名字的社区边缘网关测试站点' },
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
    devices: [
      { id: 'meter-1', facility: 'canteen', profile: 'eastron-sdm120-modbus', bus: 'lan', unitId: 1, pollMs: 500, name: '食堂总电表（后厨配电箱内）' },
      { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 2, pollMs: 1000 },
      { id: 'kitchen-temperature-and-humidity-sensor-by-the-back-door', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 3, pollMs: 1000 },
      { id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 4, pollMs: 1000 },
      { id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 5, pollMs: 1000 },
    ],
    simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 7 },
  });
  return cfg;
});

/** The site config as a technician writes it: block YAML, then 20 devices as long flow-map
 * lines (they wrap on a phone), one of them with a unit id out of range on line `bad`. */
function yamlWithError(): { text: string; bad: number } {
  const { devices: _d, ...rest } = cfg;
  const head = stringify(rest).trimEnd().split('\n');
  const lines = [...head, '# 食堂和后厨的冷藏柜：每台一个 RS-485 地址，名称写清楚位置，方便现场的同事找到（这一行注释很长，在手机上会折行显示）。', 'devices:'];
  let bad = 0;
  for (let i = 1; i <= 20; i++) {
    const unitId = i === 15 ? 300 : i + 10;
    lines.push(`  - { id: fridge-${i}, facility: canteen, profile: r4dcb08, bus: lan, unitId: ${unitId}, pollMs: 1000, name: 食堂冷藏柜 ${i} 号（靠近后门的那一台，夏季请每天查看温度） }`);
    if (i === 15) bad = lines.length;
    if (i % 5 === 0) lines.push('');
  }
  lines.push('# end');
  return { text: lines.join('\n'), bad };
}

/**
 * For every logical line n: where the textarea itself puts line n (a probe textarea with the
 * same style and width holding lines 1..n-1: its scrollHeight less its padding is how tall they
 * are), against the top of gutter number n. Returns the largest gap in px and more facts.
 */
function measure(page: Page) {
  return page.evaluate(() => {
    const ta = document.querySelector<HTMLTextAreaElement>('textarea[name=yaml]')!;
    const nums = [...document.querySelectorAll<HTMLElement>('.code-gutter .ln')];
    const cs = getComputedStyle(ta);
    const probe = document.createElement('textarea');
    for (const k of ['fontFamily', 'fontSize', 'fontWeight', 'lineHeight', 'letterSpacing', 'tabSize', 'paddingLeft', 'paddingRight', 'paddingTop', 'paddingBottom',
      'borderLeftWidth', 'borderRightWidth', 'borderTopWidth', 'borderBottomWidth', 'borderStyle', 'boxSizing', 'whiteSpace', 'overflowWrap', 'wordBreak'] as const) {
      (probe.style as unknown as Record<string, string>)[k] = cs[k];
    }
    probe.setAttribute('wrap', ta.getAttribute('wrap') ?? 'soft');
    probe.style.position = 'absolute';
    probe.style.left = '0';
    probe.style.top = '0';
    probe.style.width = `${ta.offsetWidth}px`;
    probe.style.height = '0';
    probe.style.minHeight = '0';
    probe.style.overflowY = ta.scrollHeight > ta.clientHeight ? 'scroll' : 'hidden';
    document.body.append(probe);
    const lines = ta.value.split('\n');
    const pad = parseFloat(cs.paddingTop) + parseFloat(cs.paddingBottom);
    const box = ta.getBoundingClientRect();
    const textTop = box.top + parseFloat(cs.borderTopWidth) + parseFloat(cs.paddingTop) - ta.scrollTop;
    let gap = 0;
    const tops: number[] = [];
    for (let n = 1; n <= lines.length; n++) {
      probe.value = lines.slice(0, n - 1).join('\n');
      const above = n === 1 ? 0 : probe.scrollHeight - pad;
      tops.push(textTop + above);
      if (nums[n - 1]) gap = Math.max(gap, Math.abs(nums[n - 1]!.getBoundingClientRect().top - (textTop + above)));
    }
    probe.value = 'x';
    const oneLine = probe.scrollHeight - pad;
    const sameWidth = probe.clientWidth === ta.clientWidth;
    probe.remove();
    const heights = nums.map((e) => e.getBoundingClientRect().height);
    return {
      lines: lines.length, numbers: nums.length, texts: nums.map((e) => e.textContent), gap, sameWidth, oneLine, heights, tops,
      wrap: ta.getAttribute('wrap'), scrollTop: ta.scrollTop, taTop: box.top, taBottom: box.bottom,
      sideways: ta.scrollWidth > ta.clientWidth + 1,
      selection: [ta.selectionStart, ta.selectionEnd], focused: document.activeElement === ta,
      current: nums.findIndex((e) => e.classList.contains('current')) + 1,
      marked: nums.map((e, i) => (e.classList.contains('err') ? i + 1 : 0)).filter(Boolean),
    };
  });
}

const settle = (page: Page) => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

describe.skipIf(!haveChromium)('the page on a phone (390 x 844, zh-CN)', () => {
  it('the YAML editor numbers every line at its height with wrap on, and an error jumps to its line', async () => {
    const context = await site.browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN' });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(site.base);
    await setUpAdmin(page, site.app.auth.setupCode!, PAGE_PASSWORD);
    await page.goto(`${site.base}/#/config`);
    await page.click('[data-tab=yaml]');
    const area = page.locator('textarea[name=yaml]');
    await area.waitFor();
    const { text, bad } = yamlWithError();
    await area.fill(text);
    await settle(page);
    // fill() leaves the caret, and the textarea's scroll, at the end: aligned there too.
    let m = await measure(page);
    expect(m.scrollTop).toBeGreaterThan(0);
    expect(m.gap).toBeLessThanOrEqual(2);
    await area.evaluate((el) => { el.scrollTop = 0; });
    await settle(page);

    m = await measure(page);
    expect(m.wrap).toBe('soft');
    expect(m.sameWidth).toBe(true); // the probe lays text out at the textarea's own width
    expect(m.sideways).toBe(false); // wrapped: nothing to scroll sideways on the phone
    expect(m.lines).toBe(text.split('\n').length);
    expect(m.numbers).toBe(m.lines);
    expect(m.texts).toEqual(Array.from({ length: m.lines }, (_, i) => String(i + 1)));
    // The long device lines take several rows each, and their numbers are that tall.
    expect(m.heights[bad - 1]!).toBeGreaterThan(2.5 * m.oneLine);
    expect(m.gap).toBeLessThanOrEqual(2);
    // Line `bad` is below the textarea's visible box before the jump.
    expect(m.tops[bad - 1]!).toBeGreaterThan(m.taBottom);
    await shot(page, '60-yaml-editor-phone');

    await page.click('[data-action=check]');
    const jump = page.locator('#yaml-errors button.err-line');
    await jump.first().waitFor();
    expect(await jump.count()).toBe(1);
    expect(await jump.getAttribute('data-line')).toBe(String(bad));
    expect(await jump.textContent()).toContain(`第 ${bad} 行`);
    expect(await jump.textContent()).toContain('devices[14].unitId');
    await settle(page);
    m = await measure(page);
    expect(m.marked).toEqual([bad]);
    expect(m.gap).toBeLessThanOrEqual(2);

    await jump.click();
    await settle(page);
    m = await measure(page);
    const lines = text.split('\n');
    const start = lines.slice(0, bad - 1).join('\n').length + 1;
    expect(m.focused).toBe(true);
    expect(m.selection).toEqual([start, start + lines[bad - 1]!.length]);
    expect(m.current).toBe(bad);
    expect(m.scrollTop).toBeGreaterThan(0);
    // Line `bad` now shows inside the textarea, its number beside it.
    expect(m.tops[bad - 1]!).toBeGreaterThanOrEqual(m.taTop);
    expect(m.tops[bad - 1]!).toBeLessThan(m.taBottom - m.oneLine);
    expect(m.gap).toBeLessThanOrEqual(2);
    await shot(page, '61-yaml-error-jump');

    // Scrolling: the gutter follows.
    await area.evaluate((el) => { el.scrollTop = 400; });
    await settle(page);
    m = await measure(page);
    expect(m.scrollTop).toBeGreaterThan(300);
    expect(m.gap).toBeLessThanOrEqual(2);

    // Typing: a new line at the top, and a long line that wraps, renumbered at once.
    await area.evaluate((el) => { el.setSelectionRange(0, 0); el.scrollTop = 0; });
    await page.keyboard.type('# 新加的一行\n# 再加一行很长很长的注释，在手机上会折成两行以上，编号仍然对准它的第一行。\n');
    await settle(page);
    m = await measure(page);
    expect(m.lines).toBe(lines.length + 2);
    expect(m.numbers).toBe(m.lines);
    expect(m.heights[1]!).toBeGreaterThan(1.5 * m.oneLine);
    expect(m.gap).toBeLessThanOrEqual(2);
    expect(m.marked).toEqual([]); // the edit moved the lines: the marks wait for the next check
    expect(await area.inputValue()).toMatch(/^# 新加的一行\n/);
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);

  it('on a wide screen the editor does not wrap and stays aligned', async () => {
    const context = await site.browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'zh-CN' });
    const page = await context.newPage();
    await page.goto(`${site.base}/`);
    await page.fill('#login-form input[name=password]', PAGE_PASSWORD);
    await page.click('#login-form [type=submit]');
    await page.locator('[data-action=logout]').waitFor();
    await page.goto(`${site.base}/#/config`);
    await page.click('[data-tab=yaml]');
    const area = page.locator('textarea[name=yaml]');
    const { text } = yamlWithError();
    await area.fill(text);
    await settle(page);
    const m = await measure(page);
    expect(m.wrap).toBe('off');
    expect(m.sideways).toBe(true);
    expect(m.numbers).toBe(m.lines);
    expect(Math.max(...m.heights)).toBeLessThan(1.5 * m.oneLine);
    expect(m.gap).toBeLessThanOrEqual(2);
    await shot(page, '62-yaml-editor-wide');
    await context.close();
  }, 60_000);

  for (const width of [390, 360]) {
    it(`the header is two short rows and the overview fits ${width} px, each device's time in view`, async () => {
      const context = await site.browser.newContext({ viewport: { width, height: 844 }, locale: 'zh-CN' });
      const page = await context.newPage();
      await page.goto(`${site.base}/`);
      await page.fill('#login-form input[name=password]', PAGE_PASSWORD);
      await page.click('#login-form [type=submit]');
      await page.locator('[data-action=logout]').waitFor();
      await page.locator('.device .device-ts[data-ts]').first().waitFor();
      await expect.poll(() => page.locator('.device .device-ts[data-ts]').count(), { timeout: 10_000 }).toBe(5);
      await settle(page);
      const r = await page.evaluate(() => {
        const vw = document.documentElement.clientWidth;
        const header = document.querySelector('header.topbar')!.getBoundingClientRect();
        const nav = document.getElementById('nav')!;
        const links = [...nav.querySelectorAll('a')];
        const outside = [...document.querySelectorAll('main *, header *')]
          .filter((e) => !e.closest('#nav')) // the nav scrolls sideways on purpose
          .map((e) => ({ e, box: e.getBoundingClientRect() }))
          .filter(({ box }) => box.width > 0 && box.right > vw + 0.5)
          .map(({ e, box }) => `${e.tagName}.${e.className} right=${box.right}`);
        const times = [...document.querySelectorAll<HTMLElement>('.device-ts')].map((e) => ({ text: e.textContent, right: e.getBoundingClientRect().right }));
        const tops = links.map((a) => a.getBoundingClientRect().top);
        return {
          vw, headerHeight: header.height, pageWidth: document.documentElement.scrollWidth, outside, times,
          navOneRow: Math.max(...tops) - Math.min(...tops) < 1, navInside: nav.getBoundingClientRect().right <= vw + 0.5,
          linkHeight: Math.min(...links.map((a) => a.getBoundingClientRect().height)),
          facilitiesRight: document.querySelector('.facilities')!.getBoundingClientRect().right,
        };
      });
      expect(r.vw).toBe(width);
      expect(r.headerHeight).toBeLessThanOrEqual(110);
      expect(r.navOneRow).toBe(true);
      expect(r.navInside).toBe(true);
      expect(r.linkHeight).toBeGreaterThanOrEqual(40); // still a finger's target
      expect(r.pageWidth).toBeLessThanOrEqual(width);
      expect(r.outside).toEqual([]);
      expect(r.facilitiesRight).toBeLessThanOrEqual(width);
      expect(r.times).toHaveLength(5);
      for (const t of r.times) {
        expect(t.text).toMatch(/^更新于 \d\d:\d\d:\d\d$/);
        expect(t.right).toBeLessThanOrEqual(width);
      }
      // The last nav entry is reachable by scrolling the nav row.
      await page.locator('#nav a[data-route=account]').click();
      await page.locator('#nav a[data-route=account][aria-current=page]').waitFor();
      const account = await page.locator('#nav a[data-route=account]').evaluate((a) => a.getBoundingClientRect().right);
      expect(account).toBeLessThanOrEqual(width);
      await page.goto(`${site.base}/#/`);
      await page.locator('.device .device-ts[data-ts]').first().waitFor();
      await shot(page, `6${width === 390 ? 3 : 4}-overview-phone-${width}`);
      await context.close();
    }, 60_000);
  }
});
