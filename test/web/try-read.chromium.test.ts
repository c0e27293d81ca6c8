// Try-read on a phone (390 x 844, zh-CN) in Debian's Chromium: the decoded table fits the
// screen with float32 in its likeliest byte order; every type and order is one tap away. The
// live table fits too, its time column included. The decoded table fits 360 px as well.
import { haveChromium, PAGE_PASSWORD, setUpAdmin, shot, usePageSite } from '../helpers/chromium.js';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/peers.js';
import { baseConfig } from '../helpers/gateway.js';

const site = usePageSite(async () => {
  const simPort = await freePort();
  return baseConfig({
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
    devices: [{ id: 'meter-1', facility: 'canteen', profile: 'eastron-sdm120-modbus', bus: 'lan', unitId: 1, pollMs: 1000 }],
    simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 5 },
  });
});

describe.skipIf(!haveChromium)('try-read on a phone', () => {
  it('fits 390 px with float32 in its likeliest order, and shows every type on demand', async () => {
    const context = await site.browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN' });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(site.base);
    await setUpAdmin(page, site.app.auth.setupCode!, PAGE_PASSWORD);

    await page.goto(`${site.base}/#/device/meter-1`);
    // The live table fits the phone, the time column included (the date folded away).
    const live = page.locator('table.live');
    await live.locator('td.ts').first().waitFor();
    await expect.poll(async () => (await live.locator('td.ts').first().innerText()).trim()).toMatch(/^\d\d:\d\d:\d\d$/);
    const liveBox = await live.evaluate((el) => el.getBoundingClientRect());
    expect(liveBox.right).toBeLessThanOrEqual(390);
    // SDM120: voltage is a float32 at input register 0 (ABCD), about 230 V.
    await page.selectOption('#try-read-form select[name=register]', 'input');
    await page.fill('#try-read-form input[name=start]', '0');
    await page.fill('#try-read-form input[name=count]', '6');
    await page.click('[data-action=try-read]');
    const table = page.locator('#try-read-result table.decoded');
    await table.waitFor();
    const heads = await table.locator('thead tr').nth(1).locator('th').allTextContents();
    expect(heads).toEqual(['ABCD', 'ABCD', 'ABCD']); // int16, uint16, float32 in its likeliest order
    expect(await table.locator('thead th.group').allTextContents()).toEqual(['int16', 'uint16', 'float32']);
    const width = await table.evaluate((el) => el.getBoundingClientRect().width);
    expect(width).toBeLessThanOrEqual(390);
    const voltage = Number(await table.locator('tbody tr').first().locator('td').last().textContent());
    expect(voltage).toBeGreaterThan(180);
    expect(voltage).toBeLessThan(260);
    await shot(page, '30-try-read-phone');
    // The narrowest phones the programme's technicians carry: 360 px.
    await page.setViewportSize({ width: 360, height: 780 });
    await expect.poll(async () => table.evaluate((el) => el.getBoundingClientRect().right)).toBeLessThanOrEqual(360);
    await shot(page, '32-try-read-phone-360');
    await page.setViewportSize({ width: 390, height: 844 });

    await page.click('[data-action=try-all-types]');
    await expect.poll(async () => page.locator('#try-read-result thead th.group').count()).toBe(6);
    expect(await page.locator('#try-read-result thead tr').nth(1).locator('th').count()).toBe(2 + 2 + 4 * 4);
    await shot(page, '31-try-read-all-types');
    expect(errors).toEqual([]);
    await context.close();
  }, 60_000);
});
