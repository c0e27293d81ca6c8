// The device chart on a phone (390 x 844, zh-CN) in Debian's Chromium against the daemon on a
// simulated site: the profile's main point first (the gas detector's concentration, not its raw
// ADC), a second point as a second series on its own axis, whole-number ticks for whole-number
// points, no repeated time label at any range, the retention note on 7 days, a third unit
// refused in the picker. Tick labels are read from the chart's text (#chart-axes): uPlot draws
// the axes on a canvas.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { haveChromium, PAGE_PASSWORD, setUpAdmin, shot, usePageSite } from '../helpers/chromium.js';
import { freePort } from '../helpers/peers.js';
import { baseConfig } from '../helpers/gateway.js';

const site = usePageSite(async () => {
  const simPort = await freePort();
  return baseConfig({
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
    devices: [
      { id: 'gas-1', facility: 'canteen', profile: 'evikon-e2648-ch4', bus: 'lan', unitId: 1, pollMs: 500 },
      { id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 2, pollMs: 500 },
      { id: 'meter-1', facility: 'canteen', profile: 'eastron-sdm120-modbus', bus: 'lan', unitId: 3, pollMs: 500 },
    ],
    simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 7 },
  });
});

/** The tick labels of one axis as the chart drew them ('x', 'y' left, 'y2' right). */
const ticks = (page: Page, axis: string) => page.locator(`#chart-axes [data-axis="${axis}"] .tick`).allTextContents();
/** Series drawn, from uPlot's legend (its first row is the time). */
const legend = async (page: Page) => (await page.locator('#chart .u-legend tr.u-series .u-label').allTextContents()).slice(1);

/** A device page with at least `n` readings of each series in the chart (the chart redrawn). */
async function openDevice(page: Page, id: string): Promise<void> {
  await page.goto(`${site.base}/#/device/${id}`);
  await page.locator('#chart .u-legend').waitFor({ timeout: 15_000 });
}

describe.skipIf(!haveChromium)('device chart on a phone', () => {
  it('gas detector: the concentration first, then the raw ADC as a second series on its own whole-number axis; 7 days shows the retention note', async () => {
    const context = await site.browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN' });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(site.base);
    await setUpAdmin(page, site.app.auth.setupCode!, PAGE_PASSWORD);
    // A few seconds of readings, so that the lines have a span.
    await new Promise((r) => setTimeout(r, 3000));

    await openDevice(page, 'gas-1');
    // The profile's mainPoint, not the first chartable point (the raw ADC count).
    expect(await legend(page)).toEqual(['可燃气体浓度 (%LEL)']);
    expect(await page.isChecked('.chart-picker input[value=gas_concentration]')).toBe(true);
    expect(await page.isChecked('.chart-picker input[value=gas_sensor_raw]')).toBe(false);
    // The bit point (sensor absent) is a state: not in the picker.
    expect(await page.locator('.chart-picker input[value=sensor_absent]').count()).toBe(0);
    const chartBox = await page.locator('#chart').evaluate((el) => el.getBoundingClientRect());
    expect(chartBox.right).toBeLessThanOrEqual(390);
    await shot(page, 'chart-01-gas-default');

    await page.check('.chart-picker input[value=gas_sensor_raw]');
    await expect.poll(() => legend(page)).toEqual(['可燃气体浓度 (%LEL)', '气体传感器原始值 (ADC)']);
    // Two units, two axes: %LEL on the left, ADC (uint16, scale 1: whole numbers) on the right.
    await expect.poll(async () => (await ticks(page, 'y2')).length).toBeGreaterThan(1);
    const right = await ticks(page, 'y2');
    expect(right.every((l) => /^-?\d+$/.test(l)), `ADC ticks: ${right.join(' ')}`).toBe(true);
    expect(await page.locator('#chart-axes [data-axis="y2"]').textContent()).toContain('右纵轴 (ADC)');
    // The concentration's span is a fraction of a %LEL: its axis keeps decimals (the rule is per
    // axis, from the profile, and the whole-number one is not everywhere).
    const left = await ticks(page, 'y');
    expect(left.length).toBeGreaterThan(1);
    expect(left.some((l) => l.includes('.')), `%LEL ticks: ${left.join(' ')}`).toBe(true);
    await shot(page, 'chart-02-gas-two-series');

    // Time labels at every range: none repeated; hours HH:mm (a midnight as MM-DD), days MM-DD.
    for (const [value, re] of [['1', /^(\d\d:\d\d|\d\d-\d\d)$/], ['6', /^(\d\d:\d\d|\d\d-\d\d)$/], ['24', /^(\d\d:\d\d|\d\d-\d\d)( \d\d:\d\d)?$/], ['168', /^\d\d-\d\d$/]] as const) {
      await page.selectOption('#chart-card select[name=hours]', value);
      await page.locator('#chart .u-legend').waitFor();
      await expect.poll(async () => (await ticks(page, 'x')).length, `x ticks at ${value} h`).toBeGreaterThan(1);
      const x = await ticks(page, 'x');
      expect(new Set(x).size, `${value} h: ${x.join(' ')}`).toBe(x.length);
      for (const l of x) expect(l, `${value} h`).toMatch(re);
      const note = page.locator('[data-note=retention]');
      if (value === '168') {
        await expect.poll(() => note.isVisible()).toBe(true);
        expect(await note.textContent()).toBe('本机只保留 24 小时原始数据（配置项 storage.rawRetentionHours）');
      } else expect(await note.isVisible(), `no note at ${value} h`).toBe(false);
    }
    // Both series kept through the range changes.
    expect(await legend(page)).toHaveLength(2);
    await shot(page, 'chart-03-gas-7-days');
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);

  it('a counter gets whole-number ticks; a third unit is refused with a note', async () => {
    const context = await site.browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN' });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(site.base);
    await page.fill('#login-form input[name=password]', PAGE_PASSWORD);
    await page.click('[data-action=login]');
    await page.locator('[data-action=logout]').waitFor();

    // ADAM-6050: the meal counter (uint32, a counter) is its only chartable point; it hardly
    // moves in a test, which is where a default axis shows 0.5 steps.
    await openDevice(page, 'io-1');
    expect(await legend(page)).toEqual(['就餐人次计数']);
    await expect.poll(async () => (await ticks(page, 'y')).length).toBeGreaterThan(1);
    const counter = await ticks(page, 'y');
    expect(counter.every((l) => /^-?\d+$/.test(l)), `counter ticks: ${counter.join(' ')}`).toBe(true);
    await shot(page, 'chart-04-counter');

    // SDM120: the power first (mainPoint), the voltage added, the current (a third unit) refused.
    await openDevice(page, 'meter-1');
    expect(await legend(page)).toEqual(['有功功率 (W)']);
    await page.check('.chart-picker input[value=voltage]');
    await expect.poll(() => legend(page)).toEqual(['有功功率 (W)', '电压 (V)']);
    await page.click('.chart-picker input[value=current]');
    const note = page.locator('.chart-pick-note');
    await expect.poll(() => note.isVisible()).toBe(true);
    expect(await note.textContent()).toBe('不能加入“电流 (A)”：一张图最多两种单位（左、右纵轴），已有 W、V');
    expect(await page.isChecked('.chart-picker input[value=current]')).toBe(false);
    expect(await legend(page)).toEqual(['有功功率 (W)', '电压 (V)']);
    await shot(page, 'chart-05-third-unit-refused');
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);
});
