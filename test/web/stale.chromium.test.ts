// Stale live state in Debian's Chromium (390 x 844, zh-CN) against the built daemon run as a
// child process, as on the box: when the event stream goes silent (the process frozen with
// SIGSTOP: the connection stays open, nothing comes, as when the network is gone) or drops
// (the process killed), every live badge and value is greyed and the badges say they are not
// current; when the stream is back with a fresh overview, the page is live again.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, haveChromium, launchChromium, setUpAdmin } from '../helpers/chromium.js';
import { CLI, ROOT, assertBuilt } from '../helpers/cli.js';
import { freePort, tmpDir, waitFor } from '../helpers/peers.js';
import { baseConfig } from '../helpers/gateway.js';

const PASSWORD = 'Gongshu-canteen-2026';

let browser: Browser | null = null;
let proc: ChildProcess | null = null;
let exited: Promise<unknown> = Promise.resolve();
let base = '';
let setupCode = '';

beforeAll(async () => {
  if (!haveChromium) return;
  assertBuilt();
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const dir = tmpDir('cgw-stale-');
  const [web, broker, sim, dead] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const file = path.join(dir, 'site.yaml');
  fs.writeFileSync(file, stringify(baseConfig({
    site: { communityCode: '330106001001', gatewayId: 'gw-e2e-stale', name: '拱墅区 断线测试' },
    web: { host: '127.0.0.1', port: web, https: false },
    localBroker: { host: '127.0.0.1', port: broker, anonymous: 'loopback' },
    storage: { path: path.join(dir, 'gateway.db') },
    uplink: { url: 'mqtt://127.0.0.1:1', windowSeconds: 60 },
    buses: [
      { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim, timeoutMs: 300 },
      { id: 'dead', type: 'modbus-tcp', host: '127.0.0.1', port: dead, timeoutMs: 300 }, // nothing listens: offline
    ],
    devices: [
      { id: 'meter-1', facility: 'canteen', profile: 'eastron-sdm120-modbus', bus: 'lan', unitId: 1, pollMs: 500 },
      { id: 'fridge-1', facility: 'canteen', profile: 'r4dcb08', bus: 'lan', unitId: 2, pollMs: 1000 },
      { id: 'fridge-9', facility: 'canteen', profile: 'r4dcb08', bus: 'dead', unitId: 9, pollMs: 1000 },
    ],
    simulator: { enabled: true, host: '127.0.0.1', port: sim, seed: 3 },
  })));
  const p = spawn(process.execPath, [CLI, 'run', '--config', file, '--state-dir', path.join(dir, 'state')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info', LOG_FORMAT: 'json' } });
  proc = p;
  exited = new Promise((resolve) => p.once('exit', resolve));
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const hint = await waitFor(() => out.split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l) as { setupCode?: string }; } catch { return {}; } }).find((l) => l.setupCode), 20_000, `the setup hint:\n${out}`);
  setupCode = hint.setupCode!;
  base = `http://127.0.0.1:${web}`;
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    proc.kill('SIGCONT');
    proc.kill('SIGKILL');
  }
  await exited;
});

/** What the page shows of its live state: the root's class, every live badge's text and look. */
function look(page: Page) {
  return page.evaluate(() => {
    const badge = (sel: string) => {
      const b = document.querySelector<HTMLElement>(sel);
      if (!b) return null;
      const cs = getComputedStyle(b);
      return { text: b.textContent, color: cs.color, border: cs.borderTopStyle };
    };
    const value = document.querySelector('[data-device="meter-1"] .value');
    return {
      stale: document.documentElement.classList.contains('stale'),
      banner: !document.getElementById('conn-banner')!.hidden ? document.getElementById('conn-banner')!.textContent : null,
      online: badge('[data-device="meter-1"] .badge[data-state]'),
      offline: badge('[data-device="fridge-9"] .badge[data-state]'),
      uplink: badge('#uplink-state'),
      valueColor: value ? getComputedStyle(value).color : null,
      // When each device last answered: a device that never did shows none.
      times: ['meter-1', 'fridge-9'].map((d) => document.querySelector(`[data-device="${d}"] .device-ts`)?.textContent ?? null),
      mutedColor: getComputedStyle(document.querySelector('main .muted')!).color,
    };
  });
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

describe.skipIf(!haveChromium)('stale state when the event stream drops (390 x 844, zh-CN)', () => {
  it('greys every live badge and value, says they are not current, and comes back live', async () => {
    const context = await browser!.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN' });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(base);
    await setUpAdmin(page, setupCode, PASSWORD);
    await expect.poll(async () => (await look(page)).offline?.text, { timeout: 15_000 }).toBe('离线');
    await expect.poll(async () => (await look(page)).online?.text, { timeout: 15_000 }).toBe('在线');
    const live = await look(page);
    expect(live.stale).toBe(false);
    expect(live.banner).toBeNull();
    expect(live.online!.border).toBe('solid');
    expect(live.valueColor).not.toBe(live.mutedColor);
    expect(live.times[0]).toMatch(/^更新于 \d\d:\d\d:\d\d$/);
    expect(live.times[1]).toBe('');

    // Frozen: the connection stays open and nothing comes (as when the network is gone).
    proc!.kill('SIGSTOP');
    await expect.poll(async () => (await look(page)).stale, { timeout: 15_000, interval: 250 }).toBe(true);
    let s = await look(page);
    expect(s.online!.text).toBe('在线（非实时）');
    expect(s.offline!.text).toBe('离线（非实时）');
    expect(s.uplink!.text).toMatch(/（非实时）$/);
    for (const b of [s.online!, s.offline!, s.uplink!]) {
      expect(b.border).toBe('dashed');
      expect(b.color).toBe(s.mutedColor);
    }
    expect(s.valueColor).toBe(s.mutedColor);
    expect(s.banner).toContain('实时连接已断开');
    expect(s.banner).toContain('不是当前的');
    await shot(page, '65-stale-silent');

    // Back: the stream reopens, a fresh overview comes, the page is live again.
    proc!.kill('SIGCONT');
    await expect.poll(async () => (await look(page)).stale, { timeout: 15_000, interval: 250 }).toBe(false);
    s = await look(page);
    expect(s.online!.text).toBe('在线');
    expect(s.offline!.text).toBe('离线');
    expect(s.online!.border).toBe('solid');
    expect(s.banner).toBeNull();
    expect(s.valueColor).not.toBe(s.mutedColor);

    // Killed: the stream errors at once.
    proc!.kill('SIGKILL');
    await exited;
    await expect.poll(async () => (await look(page)).stale, { timeout: 5000, interval: 100 }).toBe(true);
    s = await look(page);
    expect(s.online!.text).toBe('在线（非实时）');
    expect(s.offline!.text).toBe('离线（非实时）');
    expect(s.online!.border).toBe('dashed');
    expect(s.valueColor).toBe(s.mutedColor);
    expect(s.banner).toContain('实时连接已断开');
    await shot(page, '66-stale-killed');

    // The language switch keeps the stale look and says it in English.
    await page.click('#lang-switch [data-lang=en]');
    s = await look(page);
    expect(s.stale).toBe(true);
    expect(s.online!.text).toBe('online (not live)');
    expect(s.banner).toContain('not current');
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);
});
