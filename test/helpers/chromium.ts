// Debian's Chromium for the page's end-to-end tests (driven by playwright-core, headless), and
// the first-start step every such test begins with.
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

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
