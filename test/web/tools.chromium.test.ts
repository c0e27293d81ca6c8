// The site tools view (#/tools) end to end in Debian's Chromium at 390 x 844 in zh-CN, against
// the whole daemon and a pymodbus TCP server with a few units: scan the line, add a found unit
// with its best matching profile in one step (dry run, diff confirmed, apply) and see it
// online; import a CSV of 20 devices with one bad row, refused with its row and column shown;
// upload a site profile (stored, restart needed). Screenshots in test/artifacts/.
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { ARTIFACTS, haveChromium, launchChromium, setUpAdmin } from '../helpers/chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PymodbusServer } from '../helpers/peers.js';
import { baseConfig, makeApp } from '../helpers/gateway.js';
import { DRIVERS_DIR } from '../../src/config/paths.js';
import type { App } from '../../src/app.js';

const PASSWORD = 'Gongshu-canteen-2026';

let browser: Browser | null = null;
let app: App;
let file: string;
let base: string;
let modbus: PymodbusServer;

beforeAll(async () => {
  if (!haveChromium) return;
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  // Unit 1: an R4DCB08 already configured; unit 2: an XY-MD02 (21.5 °C, 48 %RH) not yet.
  modbus = await PymodbusServer.start({
    units: {
      '1': { hr: { '0': 45, '1': 52, '2': 0x10000 - 180, '3': 30 } },
      '2': { ir: { '1': 215, '2': 480 } },
    },
  });
  ({ app, file } = makeApp(
    baseConfig({
      site: { communityCode: '330106001001', gatewayId: 'gw-e2e-tools', name: '拱墅区 测试社区' },
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: modbus.port, timeoutMs: 300 }],
      devices: [{ id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 1000, name: '冷藏柜' }],
    }),
  ));
  await app.start();
  base = `http://127.0.0.1:${app.web.port}`;
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (haveChromium) {
    await app.stop();
    await modbus.stop();
  }
});

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Nothing on the page is wider than the phone (the tables scroll inside their wrapper). */
async function fitsPhone(page: Page): Promise<void> {
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
}

describe.skipIf(!haveChromium)('site tools in Chromium (390 x 844, zh-CN)', () => {
  it('scan a pymodbus line, add a found unit in one step and see it online; a CSV with one bad row refused; a site profile uploaded', async () => {
    const context = await browser!.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN' });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      // 422: the refused import is the point of the test; 404: no scan of the bus yet.
      if (m.type() === 'error' && !/Failed to load resource: .* status of (404|422)\b/.test(m.text())) problems.push(`console: ${m.text()}`);
    });

    await page.goto(base);
    await setUpAdmin(page, app.auth.setupCode!, PASSWORD);

    // The nav link, in Chinese.
    await page.locator('nav a[data-route=tools]').click();
    expect(await page.locator('nav a[data-route=tools]').textContent()).toBe('现场工具');
    await page.locator('#scan').waitFor();
    expect(await page.locator('.tools-page h1').textContent()).toBe('现场工具');

    // 1. A scan of every unit id, stopped while it runs.
    await page.click('[data-action=scan-start]');
    await page.locator('[data-action=scan-cancel]').waitFor({ timeout: 5000 });
    await page.click('[data-action=scan-cancel]');
    await page.locator('#scan-state[data-state=cancelled]').waitFor({ timeout: 10_000 });
    expect(await page.locator('#scan-state .scan-progress-text').textContent()).toMatch(/^扫描已停止：探测 \d+\/247，发现 \d 个$/);
    expect(app.audit.recent(10).map((e) => e.action)).toContain('bus-scan-cancel');

    // 2. Scan units 1-5 of the line: progress, then the two that answer.
    await page.fill('#scan-units', '1-5');
    // A longer wait per unit than the 100 ms default: pymodbus on a loaded test machine can be slower.
    await page.fill('#scan-timeout', '600');
    await page.click('[data-action=scan-start]');
    await page.locator('#scan-state').waitFor();
    await shot(page, '20-tools-scan-running');
    await page.locator('#scan-state[data-state=done]').waitFor({ timeout: 20_000 });
    expect(await page.locator('#scan-state .scan-progress-text').textContent()).toBe('扫描完成：探测 5/5，发现 2 个');
    expect(app.audit.recent(10).find((e) => e.action === 'bus-scan')).toMatchObject({ detail: { units: '1-5', timeoutMs: 600 } });
    const unit1 = page.locator('#scan-result tr[data-unit="1"]');
    const unit2 = page.locator('#scan-result tr[data-unit="2"]');
    expect(await unit1.textContent()).toContain('已配置为设备 fridge-1');
    expect(await unit1.locator('[data-action=add-unit]').count()).toBe(0);
    expect(await unit2.locator('ol.fits li').first().getAttribute('data-profile')).toBe('xy-md02');
    expect(await unit2.locator('details.misfits summary').textContent()).toMatch(/其他 \d+ 个型号为何不匹配/);
    await fitsPhone(page);
    await shot(page, '21-tools-scan-done');

    // 3. Add unit 2 in one step: the form prefilled from its best profile; the diff confirmed.
    await unit2.locator('[data-action=add-unit]').click();
    await page.locator('#add-form').waitFor();
    expect(await page.inputValue('#add-id')).toBe('xy-md02-2');
    expect(await page.inputValue('#add-profile')).toBe('xy-md02');
    expect(await page.inputValue('#add-facility')).toBe('canteen');
    expect(await page.inputValue('#add-pollMs')).toBe('1000');
    // A bad value first: the error is next to its field, nothing applied.
    await page.fill('#add-id', 'Kitchen TH');
    await page.click('[data-action=add-apply]');
    await expect.poll(async () => (await page.locator('[data-error-for=id]').textContent()) ?? '', { timeout: 5000 }).toMatch(/^只能用 1–63 个小写字母.*\[config\.id-format\]$/);
    expect(app.config.devices).toHaveLength(1);
    await page.fill('#add-id', 'kitchen-th');
    await page.fill('#add-name', '厨房温湿度');
    await page.click('[data-action=add-apply]');
    await expect.poll(async () => (await page.locator('#confirm-dialog #config-diff').textContent()) ?? '', { timeout: 5000 }).toContain('+  - id: kitchen-th');
    await shot(page, '22-tools-add-confirm');
    await page.locator('#confirm-dialog [data-action=confirm]').click();
    await expect.poll(() => app.config.devices.map((d) => d.id), { timeout: 5000 }).toEqual(['fridge-1', 'kitchen-th']);
    expect(app.config.devices[1]).toMatchObject({ facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 2, pollMs: 1000, name: '厨房温湿度' });
    await expect.poll(async () => (await page.locator('#add-result').textContent()) ?? '', { timeout: 5000 }).toMatch(/^已添加设备 kitchen-th/);
    expect(fs.readFileSync(file, 'utf8')).toContain('id: kitchen-th');
    expect(await unit2.textContent()).toContain('已配置为设备 kitchen-th');
    expect(await unit2.locator('[data-action=add-unit]').count()).toBe(0);
    await shot(page, '23-tools-added');
    // Online on the overview, with its reading.
    await page.goto(`${base}/#/`);
    const item = page.locator('li.device[data-device="kitchen-th"]');
    await item.locator('.badge[data-state=ok]').waitFor({ timeout: 10_000 });
    await expect.poll(async () => (await item.locator('[data-point=temperature]').textContent()) ?? '', { timeout: 10_000 }).toContain('21.5');
    await shot(page, '24-tools-added-online');

    // 4. A CSV of 20 devices, row 9 of the file with a unit id of 300: refused, row and column
    // shown; nothing imported. Excel's "CSV UTF-8" (BOM, CRLF, quoted Chinese names).
    await page.goto(`${base}/#/tools`);
    await page.locator('#import-file').waitFor();
    const lines = ['id,name,facility,profile,bus,unitId,pollMs'];
    for (let k = 0; k < 20; k++) lines.push(`th-${k + 1},"温湿度 ${k + 1} 号, 厨房",canteen,xy-md02,lan,${k === 7 ? 300 : k + 11},5000`);
    const csv = '\ufeff' + lines.join('\r\n') + '\r\n';
    const before = fs.readFileSync(file, 'utf8');
    await page.setInputFiles('#import-file', { name: '设备清单.csv', mimeType: 'text/csv', buffer: Buffer.from(csv, 'utf8') });
    await page.locator('[data-action=import-apply]:not([disabled])').waitFor();
    await page.click('[data-action=import-apply]');
    const errRow = page.locator('#import-errors tbody tr');
    await errRow.first().waitFor({ timeout: 5000 });
    expect(await errRow.count()).toBe(1);
    expect(await errRow.first().getAttribute('data-row')).toBe('9');
    expect(await errRow.first().getAttribute('data-column')).toBe('unitId');
    expect((await errRow.first().locator('td').allTextContents()).slice(0, 2)).toEqual(['9', 'unitId']);
    expect(await errRow.first().locator('td').nth(2).textContent()).toBe('必须在 1 到 247 之间 [config.range]');
    expect(await page.locator('#import-result').textContent()).toBe('发现 1 个问题：没有导入任何设备');
    expect(await page.locator('#import-errors thead').textContent()).toBe('行列问题');
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(app.config.devices).toHaveLength(2);
    await fitsPhone(page);
    await shot(page, '25-tools-import-refused');

    // 5. A site profile: stored beside the config, a restart needed for it.
    const profile = fs.readFileSync(path.join(DRIVERS_DIR, 'xy-md02.yaml'), 'utf8').replace(/^id: xy-md02$/m, 'id: xy-md02-site');
    await page.setInputFiles('#profile-file', { name: 'xy-md02-site.yaml', mimeType: 'application/yaml', buffer: Buffer.from(profile, 'utf8') });
    await page.locator('[data-action=upload]:not([disabled])').waitFor();
    await page.click('[data-action=upload]');
    await page.locator('#upload-result.ok').waitFor({ timeout: 5000 });
    expect(await page.locator('#restart-needed').textContent()).toBe('需要重启网关后才会生效。');
    expect(await page.locator('#profiles-waiting').textContent()).toContain('xy-md02-site');
    expect(fs.readFileSync(path.join(path.dirname(file), 'drivers', 'xy-md02-site.yaml'), 'utf8')).toBe(profile);
    await shot(page, '26-tools-profile-uploaded');

    // English on request: the view's labels switch.
    await page.click('#lang-switch [data-lang="en"]');
    await expect.poll(async () => page.locator('.tools-page h1').textContent()).toBe('Site tools');
    expect(await page.locator('#import h2').textContent()).toBe('Import devices from CSV');
    await shot(page, '27-tools-en');

    expect(app.audit.recent(50).map((e) => e.action)).toEqual(expect.arrayContaining(['bus-scan', 'device-import', 'config-apply', 'profile-upload']));
    expect(problems, problems.join('\n')).toEqual([]);
    await context.close();
  }, 90_000);
});
