// Diagnostics in Debian's Chromium at 390 x 844, zh-CN (issue 16, item 4): the overview with an
// offline device first (count, reason, last answer), the diagnostics view (recent log with
// its level filter, "reconnect uplink now", restart, the bundle downloaded and searched).
// Screenshots go to test/artifacts/.
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { type Browser, type Page } from 'playwright-core';
import { ARTIFACTS, haveChromium, launchChromium, setUpAdmin } from '../helpers/chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/peers.js';
import { baseConfig, makeApp } from '../helpers/gateway.js';
import { createLogger, LogRing } from '../../src/log.js';
import type { App } from '../../src/app.js';

const PASSWORD = 'Binjiang-station-2026';
const UPLINK_PASSWORD = 'Platform-Uplink-Pw-5521';

let browser: Browser | null = null;
let app: App;
let base: string;
let restarts = 0;

beforeAll(async () => {
  if (!haveChromium) return;
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const simPort = await freePort();
  const deadPort = await freePort();
  const ring = new LogRing(500);
  const log = createLogger('info', { format: 'json', destination: new Writable({ write: (_c, _e, cb) => cb() }), ring });
  ({ app } = makeApp(
    baseConfig({
      site: { communityCode: '330106001001', gatewayId: 'gw-diag', name: '滨江区 测试社区' },
      uplink: { url: 'mqtt://127.0.0.1:1', username: 'gw-diag', password: UPLINK_PASSWORD, windowSeconds: 60, reconnectMinMs: 60_000, reconnectMaxMs: 60_000 },
      buses: [
        { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 },
        { id: 'dead', type: 'modbus-tcp', host: '127.0.0.1', port: deadPort, timeoutMs: 300 },
      ],
      devices: [
        { id: 'fridge-1', name: '冷藏柜', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 1, pollMs: 1000 },
        { id: 'freezer-2', name: '冷冻柜', facility: 'canteen', profile: 'r4dcb08', bus: 'dead', unitId: 1, pollMs: 1000 },
        { id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 4, pollMs: 1000 },
      ],
      simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 5 },
    }),
    log,
    { logs: ring },
  ));
  await app.start();
  // What the CLI's run() sets: here it counts, the real exit has its own test (diagnostics.test.ts).
  app.restartHandler = () => void restarts++;
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

/** Nothing wider than the phone: the page never scrolls sideways. */
async function fitsWidth(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth);
}

describe.skipIf(!haveChromium)('diagnostics in Chromium (390 x 844, zh-CN)', () => {
  it('overview: the offline device first with its reason; diagnostics: logs, reconnect, restart, bundle', async () => {
    const context = await browser!.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN', acceptDownloads: true });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });

    await page.goto(base);
    await setUpAdmin(page, app.auth.setupCode!, PASSWORD);

    // Overview: the offline card above the facilities, with count, reason and "never answered".
    const offline = page.locator('section#offline');
    await offline.waitFor({ timeout: 15_000 });
    await expect.poll(async () => offline.getAttribute('data-count'), { timeout: 15_000 }).toBe('1');
    await page.locator('[data-device="fridge-1"] [data-point] .value').first().waitFor();
    const offText = (await offline.textContent()) ?? '';
    expect(offText).toContain('离线设备：1 台（共 3 台）');
    expect(offText).toContain('冷冻柜 (freezer-2)');
    expect(offText).toMatch(/ECONNREFUSED|refused/i);
    expect(offText).toContain('自网关启动以来从未应答');
    // Offline first: the card comes before the alarms and facilities, and in the canteen the
    // offline freezer is listed before the online fridge.
    const order = await page.evaluate(() => [...document.querySelectorAll('.overview > *')].map((e) => e.id || e.className));
    expect(order.indexOf('offline')).toBeLessThan(order.indexOf('alarms'));
    const canteen = await page.locator('[data-facility="canteen"] li.device').evaluateAll((els) => els.map((e) => e.getAttribute('data-device')));
    expect(canteen).toEqual(['freezer-2', 'fridge-1']);
    expect(await page.locator('[data-device="freezer-2"]').getAttribute('class')).toContain('is-offline');
    expect(await fitsWidth(page)).toBeLessThanOrEqual(390);
    await shot(page, 'diag-01-overview-offline');

    // The diagnostics view from the nav.
    await page.click('nav a[data-route="diagnostics"]');
    await page.locator('#diag-actions').waitFor();
    expect(await page.locator('nav a[data-route="diagnostics"]').textContent()).toBe('诊断');
    await page.locator('#log-lines .log-line').first().waitFor();
    expect(await page.locator('#log-count').textContent()).toMatch(/显示 \d+ 条（网关内存中保留最近 500 条）/);
    expect(await page.locator('#log-lines').textContent()).toContain('web server listening');
    // Level filter: warnings and above only, the offline device's warning among them.
    await page.selectOption('#log-level', 'warn');
    await expect.poll(async () => page.locator('#log-lines .log-line').evaluateAll((els) => [...new Set(els.map((e) => e.getAttribute('data-level')))].sort().join(',')), { timeout: 5000 }).toMatch(/^(error,)?warn$/);
    expect(await page.locator('#log-lines').textContent()).toContain('device offline');
    expect(await fitsWidth(page)).toBeLessThanOrEqual(390);
    await shot(page, 'diag-02-logs-warn');

    // Reconnect now: confirmed in the page's dialog, then done (a command with its nonce).
    await expect.poll(async () => page.locator('#diag-uplink-state').getAttribute('data-state'), { timeout: 10_000 }).not.toBe('connected');
    await page.click('[data-action="reconnect-uplink"]');
    await page.locator('#confirm-dialog .dialog-message').waitFor();
    expect(await page.locator('#confirm-dialog .dialog-message').textContent()).toContain('立即重连上行链路');
    await shot(page, 'diag-03-reconnect-confirm');
    await page.locator('#confirm-dialog [data-action=confirm]').click();
    await expect.poll(async () => (await page.locator('#diag-result').textContent()) ?? '', { timeout: 5000 }).toContain('正在连接平台');
    expect(app.audit.recent(50).map((e) => e.action)).toContain('uplink-reconnect');

    // Restart: cancel does nothing; confirm sends it, and the page says what happens under systemd and npm start.
    await page.click('[data-action="restart"]');
    await page.locator('#confirm-dialog [data-action=cancel]').click();
    expect(restarts).toBe(0);
    await page.click('[data-action="restart"]');
    expect(await page.locator('#confirm-dialog .dialog-message').textContent()).toContain('确认重启网关');
    await page.locator('#confirm-dialog [data-action=confirm]').click();
    await expect.poll(async () => (await page.locator('#diag-result').textContent()) ?? '', { timeout: 5000 }).toContain('npm start');
    await expect.poll(() => restarts, { timeout: 5000 }).toBe(1);
    expect(app.audit.recent(50).map((e) => e.action)).toContain('restart');
    await shot(page, 'diag-04-restart-sent');

    // The bundle, downloaded as the technician would, holds no secret.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#diag-bundle')]);
    expect(download.suggestedFilename()).toMatch(/^diagnostics-gw-diag-\d{8}T\d{6}\.json$/);
    const text = fs.readFileSync((await download.path())!, 'utf8');
    const bundle = JSON.parse(text);
    expect(bundle.status.devices.map((d: { id: string }) => d.id)).toContain('freezer-2');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'cgw_session')!.value;
    for (const secret of [PASSWORD, UPLINK_PASSWORD, session]) expect(text.includes(secret)).toBe(false);

    // The English page says the same.
    await page.click('#lang-switch [data-lang="en"]');
    expect(await page.locator('[data-action="reconnect-uplink"]').textContent()).toBe('Reconnect uplink now');
    await shot(page, 'diag-05-en');
    expect(problems).toEqual([]);
    await context.close();
  }, 90_000);
});
