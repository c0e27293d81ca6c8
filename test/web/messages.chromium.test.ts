// Server messages on the page (390 x 844) in Debian's Chromium: an offline device's reason, a
// Modbus exception from try-read and the counter names read in Chinese with their code beside
// them, and in English after the language switch. The texts come from the running gateway
// (a closed port, the simulator's refusal), not typed here.
import { haveChromium, PAGE_PASSWORD, setUpAdmin, shot, usePageSite } from '../helpers/chromium.js';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/peers.js';
import { baseConfig } from '../helpers/gateway.js';

let deadPort: number;
const site = usePageSite(async () => {
  const simPort = await freePort();
  deadPort = await freePort(); // nothing listens: the connect is refused
  return baseConfig({
    buses: [
      { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 },
      { id: 'dead', type: 'modbus-tcp', host: '127.0.0.1', port: deadPort, timeoutMs: 300 },
    ],
    devices: [
      { id: 'meter-1', facility: 'canteen', profile: 'eastron-sdm120-modbus', bus: 'lan', unitId: 1, pollMs: 1000 },
      { id: 'th-dead', facility: 'canteen', profile: 'xy-md02', bus: 'dead', unitId: 1, pollMs: 500 },
    ],
    simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 5 },
  });
});

describe.skipIf(!haveChromium)('server messages in the page language', () => {
  it('offline reason, try-read exception and counter names in Chinese with their code, then in English', async () => {
    const context = await site.browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN' });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(site.base);
    await setUpAdmin(page, site.app.auth.setupCode!, PAGE_PASSWORD);

    // The overview's offline list: the refused connect, in Chinese, with the code.
    const reason = page.locator('.offline-reason').first();
    await expect.poll(async () => (await reason.textContent()) ?? '', { timeout: 15_000 }).toMatch(/\[[a-z]+\.[a-z-]+\]$/);
    const zhReason = (await reason.textContent())!;
    expect(zhReason).toContain('连接被拒绝');
    expect(zhReason).toContain(`127.0.0.1:${deadPort}`);
    expect(zhReason).not.toMatch(/connect to|failed|is down/);
    await shot(page, '34-messages-offline-zh');

    // Try-read at an address the simulated meter does not have: exception 2, named in Chinese.
    await page.goto(`${site.base}/#/device/meter-1`);
    await page.selectOption('#try-read-form select[name=register]', 'holding');
    await page.fill('#try-read-form input[name=start]', '60000');
    await page.fill('#try-read-form input[name=count]', '1');
    await page.click('[data-action=try-read]');
    const result = page.locator('#try-read-result');
    await expect.poll(async () => (await result.textContent()) ?? '', { timeout: 5000 }).toContain('Modbus 异常 2（非法数据地址） [modbus.exception]');
    // Counter names from the catalogue, the key beside them.
    const counters = await page.locator('table.kv.stats').textContent();
    expect(counters).toContain('轮询次数 (polls)');
    expect(counters).toContain('超时次数 (timeouts)');
    await shot(page, '35-messages-try-read-zh');

    // The same offline reason in English after the switch.
    await page.goto(`${site.base}/#/`);
    await page.locator('#lang-switch [data-lang=en]').click();
    await expect.poll(async () => (await page.locator('.offline-reason').first().textContent()) ?? '', { timeout: 10_000 }).toMatch(new RegExp(`connect ECONNREFUSED 127\\.0\\.0\\.1:${deadPort}.*\\[[a-z]+\\.[a-z-]+\\]$`));
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);
});
