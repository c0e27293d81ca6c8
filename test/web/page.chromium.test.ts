// The technician's page end to end in real Chromium (Debian's /usr/bin/chromium driven by
// playwright-core, headless) against the whole daemon on a simulated site: first password,
// login, a live value changing, a bad config refused next to its field while the running one
// stays, a good one applied, a rollback. Screenshots go to test/artifacts/ (not committed).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/peers.js';
import { baseConfig, makeApp } from '../helpers/gateway.js';
import type { App } from '../../src/app.js';
import * as OTPAuth from 'otpauth';
import { capturingLogger } from '../helpers/gateway.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve('test/artifacts');
const PASSWORD = 'Gongshu-canteen-2026';

let browser: Browser | null = null;
let app: App;
let file: string;
let base: string;

const haveChromium = fs.existsSync(CHROMIUM);

beforeAll(async () => {
  if (!haveChromium) return;
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const simPort = await freePort();
  ({ app, file } = makeApp(
    baseConfig({
      site: { communityCode: '330106001001', gatewayId: 'gw-e2e', name: '拱墅区 测试社区' },
      buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 }],
      devices: [
        { id: 'meter-1', facility: 'canteen', profile: 'eastron-sdm120-modbus', bus: 'lan', unitId: 1, pollMs: 500 },
        { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 2, pollMs: 1000 },
        { id: 'io-1', facility: 'security', profile: 'advantech-adam-6050', bus: 'lan', unitId: 3, pollMs: 1000 },
        { id: 'kiosk-1', facility: 'health', profile: 'fc-health-kiosk-v1', bus: 'lan', unitId: 4, pollMs: 1000 },
      ],
      simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 5 },
      // timesyncd's flag file absent: the box has not synced since boot, and the page says so.
      clock: { sync: 'timesyncd', syncFile: path.join(os.tmpdir(), `cgw-e2e-no-sync-${process.pid}`, 'synchronized') },
    }),
  ));
  await app.start();
  base = `http://127.0.0.1:${app.web.port}`;
  // The flags keep Chromium off the network this machine does not have (background services).
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (haveChromium) await app.stop();
});

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

describe.skipIf(!haveChromium)('technician page in Chromium', () => {
  it('first password, login, live values, a refused config, apply and roll back', async () => {
    const context = await browser!.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN' });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      // The browser logs every non-2xx fetch; the 401 (wrong password) and 422 (refused
      // config) below are the point of the test.
      if (m.type() === 'error' && !/Failed to load resource: .* status of (401|422)\b/.test(m.text())) problems.push(`console: ${m.text()}`);
    });

    // 1. First start: the page asks for the setup code from the daemon log and the admin
    // password (from the LAN: loopback here).
    await page.goto(base);
    await page.locator('#setup-form').waitFor();
    await page.fill('#setup-form input[name=setupCode]', app.auth.setupCode!);
    await page.fill('#setup-form input[name=password]', PASSWORD);
    await page.fill('#setup-form input[name=password2]', PASSWORD);
    await shot(page, '01-setup');
    await page.click('[data-action=setup]');
    await page.locator('[data-action=logout]').waitFor();
    expect(app.auth.setupRequired).toBe(false);

    // 2. Log out and in again with the password.
    await page.click('[data-action=logout]');
    await page.locator('#login-form').waitFor();
    await page.fill('#login-form input[name=password]', 'not-the-password');
    await page.click('[data-action=login]');
    await expect.poll(async () => (await page.locator('#login-error').textContent()) ?? '', { timeout: 5000 }).not.toBe('');
    await page.fill('#login-form input[name=password]', PASSWORD);
    await page.click('[data-action=login]');
    await page.locator('[data-facility]').first().waitFor();
    await page.locator('[data-device="meter-1"] [data-point="active_power"] .value').waitFor();
    await shot(page, '02-overview');
    // The clock strip: not synchronised, with the box's own time.
    await expect.poll(async () => (await page.locator('#clock').getAttribute('data-state')) ?? '', { timeout: 5000 }).toBe('unsynced');
    expect(await page.locator('#clock').textContent()).toMatch(/未同步.*本机时间/);
    // Personal values never reach the page.
    const kioskText = (await page.locator('[data-device="kiosk-1"]').first().textContent()) ?? '';
    expect(kioskText).toMatch(/隐私|private/);

    // 3. The device page: a simulated value changes live (server-sent events).
    await page.goto(`${base}/#/device/meter-1`);
    const cell = page.locator('[data-device="meter-1"] [data-point="active_power"]');
    await cell.locator('.value').waitFor();
    const firstTs = await cell.getAttribute('data-ts');
    const firstText = await cell.locator('.value').textContent();
    await expect.poll(async () => cell.getAttribute('data-ts'), { timeout: 10_000 }).not.toBe(firstTs);
    await expect.poll(async () => cell.locator('.value').textContent(), { timeout: 10_000 }).not.toBe(firstText);
    await shot(page, '03-device');

    // 4. A bad value in the form: the error shows next to its field; nothing is applied.
    const before = fs.readFileSync(file, 'utf8');
    await page.goto(`${base}/#/config`);
    const poll0 = page.locator('[name="devices[0].pollMs"]');
    await poll0.waitFor();
    await poll0.fill('5');
    await page.click('[data-action=apply]');
    const fieldError = page.locator('[data-error-for="devices[0].pollMs"]');
    await expect.poll(async () => (await fieldError.textContent()) ?? '', { timeout: 5000 }).toBe('必须在 100 到 86400000 之间 [config.range]');
    await shot(page, '04-config-refused');
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(app.config.devices[0]!.pollMs).toBe(500);

    // 5. A good value is applied in place, after the diff shown in the confirmation.
    await poll0.fill('2000');
    await page.click('[data-action=apply]');
    await expect.poll(async () => (await page.locator('#confirm-dialog #config-diff').textContent()) ?? '', { timeout: 5000 }).toContain('+    pollMs: 2000');
    await page.locator('#confirm-dialog [data-action=confirm]').click();
    await expect.poll(() => app.config.devices[0]!.pollMs, { timeout: 5000 }).toBe(2000);
    await expect.poll(async () => (await page.locator('#config-result').textContent()) ?? '', { timeout: 5000 }).not.toBe('');
    expect(fs.readFileSync(file, 'utf8')).not.toBe(before);
    await shot(page, '05-config-applied');

    // 6. Roll back to the kept version (the file as found; the running one has no rollback
    // button): the file and the running config are as before.
    const rollback = page.locator('#versions [data-action=rollback]').first();
    await rollback.waitFor();
    await rollback.click();
    await page.locator('#confirm-dialog [data-action=confirm]').click();
    await expect.poll(() => app.config.devices[0]!.pollMs, { timeout: 5000 }).toBe(500);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    await shot(page, '06-rolled-back');

    // 7. English on request; every label switches.
    await page.click('#lang-switch [data-lang="en"]');
    await expect.poll(async () => page.locator('html').getAttribute('lang')).toBe('en');
    await page.goto(`${base}/#/`);
    await page.locator('[data-facility]').first().waitFor();
    await shot(page, '07-overview-en');

    expect(problems, problems.join("\n")).toEqual([]);
    await context.close();
  });

  it('TOTP end to end: enrol at setup by the QR page, recovery codes shown once, log in with password + code', async () => {
    const cap = capturingLogger();
    const { app: totpApp } = makeApp(baseConfig({ site: { communityCode: '330106001001', gatewayId: 'gw-e2e-totp', name: '拱墅区 双因素' } }), cap.log);
    await totpApp.start();
    try {
      const url = `http://127.0.0.1:${totpApp.web.port}`;
      const setupCode = cap.lines().map((l) => l.setupCode).find((c): c is string => typeof c === 'string')!;
      const context = await browser!.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN' });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error' && !/Failed to load resource: .* status of 401\b/.test(m.text())) problems.push(`console: ${m.text()}`);
      });
      await page.goto(url);
      await page.locator('#setup-form').waitFor();
      await page.fill('#setup-form input[name=setupCode]', setupCode);
      await page.fill('#setup-form input[name=password]', PASSWORD);
      await page.fill('#setup-form input[name=password2]', PASSWORD);
      await page.check('#setup-totp');
      const qr = page.locator('#setup-totp-qr');
      await qr.waitFor();
      // The QR is an inline SVG image (data: URI, allowed by the CSP) that really rendered.
      expect(await qr.getAttribute('src')).toMatch(/^data:image\/svg\+xml;base64,/);
      await expect.poll(() => qr.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
      const secret = ((await page.locator('#setup-totp-secret').textContent()) ?? '').replace(/\s+/g, '');
      expect(secret).toMatch(/^[A-Z2-7]{32}$/);
      const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });
      await page.fill('#setup-totp-code', totp.generate());
      await shot(page, '10-setup-totp');
      await page.click('[data-action=setup]');
      await page.locator('#recovery-codes li').first().waitFor();
      expect(await page.locator('#recovery-codes li').count()).toBe(10);
      await shot(page, '11-recovery-codes');
      await page.click('[data-action=recovery-done]');
      await page.locator('[data-action=logout]').waitFor();

      // Log out; the login form now asks for the code. The code used at setup is spent, so
      // the phone's next one (one step ahead is inside the ±1 window) is typed.
      await page.click('[data-action=logout]');
      await page.locator('#login-code').waitFor();
      await page.fill('#login-form input[name=password]', PASSWORD);
      await page.fill('#login-code', '000000');
      await page.click('[data-action=login]');
      await expect.poll(async () => (await page.locator('#login-error').textContent()) ?? '', { timeout: 5000 }).toContain('验证码');
      await page.fill('#login-form input[name=password]', PASSWORD);
      await page.fill('#login-code', totp.generate({ timestamp: Date.now() + 30_000 }));
      await shot(page, '12-login-totp');
      await page.click('[data-action=login]');
      await page.locator('[data-action=logout]').waitFor();
      await page.goto(`${url}/#/account`);
      await page.locator('#totp-state[data-state=on]').waitFor();
      await shot(page, '13-account');
      expect(totpApp.audit.recent(50).map((e) => e.action)).toEqual(expect.arrayContaining(['setup', 'login-failed', 'login']));
      expect(problems, problems.join('\n')).toEqual([]);
      await context.close();
    } finally {
      await totpApp.stop();
    }
  });
});
