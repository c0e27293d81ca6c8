// Debian's Chromium for the page's end-to-end tests (driven by playwright-core, headless), and
// the first-start step every such test begins with.
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import type { App } from '../../src/app.js';
import { makeApp } from './gateway.js';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = path.resolve('test/artifacts');
export const haveChromium = fs.existsSync(CHROMIUM);

/** The flags keep Chromium off the network this machine does not have (background services). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** First start: the setup code from the daemon and the admin password, then logged in. */
export async function setUpAdmin(page: Page, setupCode: string, password: string): Promise<void> {
  await page.locator('#setup-form').waitFor();
  await page.fill('#setup-form input[name=setupCode]', setupCode);
  await page.fill('#setup-form input[name=password]', password);
  await page.fill('#setup-form input[name=password2]', password);
  await page.click('[data-action=setup]');
  await page.locator('[data-action=logout]').waitFor();
}

/** The admin password the page tests set at first start. */
export const PAGE_PASSWORD = 'Gongshu-canteen-2026';

export const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

export interface PageSite {
  app: App;
  /** The site config file the daemon runs on (and applies into). */
  file: string;
  /** http://127.0.0.1:<web port> */
  base: string;
  browser: Browser;
}

/** One page test file's site: registers beforeAll/afterAll that build the config (`config`
 * may start peers and hand their stop to `onStop`), start the daemon on it in-process and
 * launch Chromium, then stop all of it. The object is filled in by beforeAll; nothing runs
 * where Chromium is missing (the file's describe is skipped then). */
export function usePageSite(config: (onStop: (fn: () => Promise<void>) => void) => Record<string, unknown> | Promise<Record<string, unknown>>): PageSite {
  const site = {} as PageSite;
  const stops: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    if (!haveChromium) return;
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const cfg = await config((fn) => stops.push(fn));
    Object.assign(site, makeApp(cfg));
    await site.app.start();
    site.base = `http://127.0.0.1:${site.app.web.port}`;
    site.browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await site.browser?.close();
    await site.app?.stop();
    for (const s of stops) await s();
  });
  return site;
}
