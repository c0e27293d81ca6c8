// Config versions on the technician page in real Chromium (Debian's /usr/bin/chromium driven
// by playwright-core, headless) at 390 x 844 in zh-CN, against the whole daemon on a simulated
// site: two changes applied from the YAML tab, each after its diff; the versions list marks
// the running one and shows each change's note, user and time; "rollback shows a diff and
// restores the version named". Screenshots go to test/artifacts/ (not committed).
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { ARTIFACTS, haveChromium, launchChromium, setUpAdmin } from '../helpers/chromium.js';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/peers.js';
import { baseConfig, makeApp } from '../helpers/gateway.js';
import type { App } from '../../src/app.js';

const PASSWORD = 'Gongshu-canteen-2026';
const SECRET = 'platform-Secret-77';

let browser: Browser | null = null;
let app: App;
let file: string;
let base: string;

beforeAll(async () => {
  if (!haveChromium) return;
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const simPort = await freePort();
  ({ app, file } = makeApp(
    baseConfig({
      site: { communityCode: '330106001001', gatewayId: 'gw-e2e-versions', name: '拱墅区 版本测试' },
      uplink: { url: 'mqtt://127.0.0.1:1', windowSeconds: 60, username: 'gw', password: SECRET },
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
      devices: [{ id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 2, pollMs: 1000 }],
      alarms: [{ id: 'fridge-warm', device: 'fridge-1', point: 'fridge_1_temperature', above: 8, forSeconds: 600 }],
      simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 5 },
    }),
  ));
  await app.start();
  base = `http://127.0.0.1:${app.web.port}`;
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (haveChromium) await app.stop();
});

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

const threshold = (text: string) => parse(text).alarms[0].above as number;

describe.skipIf(!haveChromium)('config versions on the page in Chromium (390 x 844, zh-CN)', () => {
  it('rollback shows a diff and restores the version named', async () => {
    const context = await browser!.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN' });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });

    await page.goto(base);
    await setUpAdmin(page, app.auth.setupCode!, PASSWORD);

    // Two changes from the YAML tab, each with its note, each confirmed with its diff in view.
    await page.goto(`${base}/#/config`);
    const yamlTab = page.locator('[data-tab=yaml]');
    await yamlTab.waitFor();
    const dialog = page.locator('#confirm-dialog');
    const change = async (from: number, to: number, note: string, shotName?: string) => {
      await page.click('[data-tab=yaml]');
      const area = page.locator('textarea[name=yaml]');
      const text = await area.inputValue();
      expect(text).not.toContain(SECRET);
      await area.fill(text.replace(`above: ${from}`, `above: ${to}`));
      await page.fill('#cfg-note', note);
      await page.click('[data-action=apply]');
      await dialog.locator('#config-diff pre').waitFor();
      const shown = (await dialog.locator('#config-diff').textContent()) ?? '';
      expect(shown).toContain(`-    above: ${from}`);
      expect(shown).toContain(`+    above: ${to}`);
      expect(shown).toContain('新增 1 行，删除 1 行');
      expect(shown).not.toContain(SECRET);
      if (shotName) await shot(page, shotName);
      await dialog.locator('[data-action=confirm]').click();
      await expect.poll(() => app.config.alarms[0]!.above, { timeout: 5000 }).toBe(to);
      await expect.poll(async () => (await page.locator('#config-result').textContent()) ?? '', { timeout: 5000 }).toContain('已应用');
    };
    await change(8, 6, '冷藏柜报警阈值改为 6°C', '20-config-apply-diff');
    await change(6, 10, '夏季临时放宽到 10°C');

    // The list: version 3 runs (marked, no rollback button); version 2 carries the note typed
    // with the change to 6 and holds 6; version 1 is the file as found.
    const rows = page.locator('#versions tr[data-version-row]');
    await expect.poll(() => rows.count(), { timeout: 5000 }).toBe(3);
    const row = (id: number) => page.locator(`#versions tr[data-version-row="${id}"]`);
    expect(await row(3).getAttribute('data-running')).toBe('true');
    expect(await row(3).locator('[data-running-badge]').textContent()).toBe('运行中');
    expect(await row(3).locator('[data-action=rollback]').count()).toBe(0);
    expect(await page.locator('#versions [data-running-badge]').count()).toBe(1);
    expect(await row(2).textContent()).toContain('冷藏柜报警阈值改为 6°C');
    expect(await row(2).textContent()).toContain('admin');
    expect(await row(2).textContent()).toMatch(/\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/);
    expect(await row(1).textContent()).toContain('发现时的配置 [version.found]');
    expect(await row(1).textContent()).toContain('系统');
    expect(threshold(app.configs.version(2))).toBe(6);
    await shot(page, '21-config-versions');

    // Roll back to version 2: the confirmation names it and shows running (10) -> version 2 (6).
    await row(2).locator('[data-action=rollback]').click();
    await dialog.locator('#config-diff').waitFor();
    expect(await dialog.locator('.dialog-message').textContent()).toContain('版本 2');
    const diff = (await dialog.locator('#config-diff').textContent()) ?? '';
    expect(diff).toContain('运行中（版本 3） → 版本 2');
    expect(diff).toContain('-    above: 10');
    expect(diff).toContain('+    above: 6');
    expect(diff).not.toContain(SECRET);
    expect(await dialog.locator('#config-diff .add').count()).toBe(1);
    expect(await dialog.locator('#config-diff .del').count()).toBe(1);
    // It fits the phone: the dialog inside the viewport, the diff wrapped, not scrolled sideways.
    const box = (await dialog.boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(390);
    expect(await dialog.locator('#config-diff pre').evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true);
    await page.fill('#rollback-note', '夏天过了');
    await shot(page, '22-config-rollback-diff');
    await dialog.locator('[data-action=confirm]').click();

    await expect.poll(() => app.config.alarms[0]!.above, { timeout: 5000 }).toBe(6);
    expect(threshold(fs.readFileSync(file, 'utf8'))).toBe(6);
    expect(app.config.uplink.password).toBe(SECRET); // today's secret kept
    await expect.poll(async () => (await page.locator('#config-result').textContent()) ?? '', { timeout: 5000 }).toContain('已回滚到版本 2');
    await expect.poll(() => rows.count(), { timeout: 5000 }).toBe(4);
    expect(await row(4).getAttribute('data-running')).toBe('true');
    expect(await row(4).textContent()).toContain('回滚到版本 2：夏天过了');
    expect(await row(3).getAttribute('data-running')).toBeNull();
    expect(await row(3).locator('[data-action=rollback]').count()).toBe(1);
    expect(await page.locator('#running-version').textContent()).toContain('4');
    const audit = app.audit.recent(20).find((e) => e.action === 'config-rollback');
    expect(audit?.detail).toMatchObject({ rollbackOf: 2, from: 3 });
    await shot(page, '23-config-rolled-back');
    await page.locator('#versions').screenshot({ path: path.join(ARTIFACTS, '24-config-versions-list.png') });
    // On the phone the note is on screen, not in a column scrolled off to the right.
    const noteBox = (await row(4).locator('.version-note').boundingBox())!;
    expect(noteBox.x + noteBox.width).toBeLessThanOrEqual(390);

    // A rollback cancelled in the dialog changes nothing.
    await row(1).locator('[data-action=rollback]').click();
    await dialog.locator('#config-diff').waitFor();
    await dialog.locator('[data-action=cancel]').click();
    await page.waitForTimeout(300);
    expect(app.config.alarms[0]!.above).toBe(6);
    expect(app.configs.versions()).toHaveLength(4);

    expect(problems, problems.join('\n')).toEqual([]);
    await context.close();
  });
});
