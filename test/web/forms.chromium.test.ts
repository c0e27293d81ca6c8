// The entry forms end to end in Debian's Chromium at 390 x 844 in zh-CN, against the whole
// daemon: a simulated site plus a pymodbus line. A device added with the form (profile picked,
// "read now" shows the values before saving, applied by reload, then online on the overview);
// an invalid value and a serial port the box does not have shown in Chinese at their fields;
// an alarm rule added. Screenshots of each form go to test/artifacts/.
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { ARTIFACTS, haveChromium, launchChromium, setUpAdmin } from '../helpers/chromium.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PymodbusServer, freePort } from '../helpers/peers.js';
import { baseConfig, makeApp } from '../helpers/gateway.js';
import type { App } from '../../src/app.js';

const PASSWORD = 'Gongshu-canteen-2026';

let browser: Browser | null = null;
let app: App;
let field: PymodbusServer;
let base: string;

beforeAll(async () => {
  if (!haveChromium) return;
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const simPort = await freePort();
  // The new cold-room sensor (an XY-MD02) answers as unit 7: 4.5 °C, 71.2 %RH.
  field = await PymodbusServer.start({ ignoreMissingUnits: true, units: { '7': { ir: { '1': 45, '2': 712 } } } });
  ({ app } = makeApp(
    baseConfig({
      site: { communityCode: '330106001001', gatewayId: 'gw-forms', name: '拱墅区 测试社区' },
      buses: [
        { id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: simPort, timeoutMs: 300 },
        { id: 'field', type: 'modbus-tcp', host: '127.0.0.1', port: field.port, timeoutMs: 300 },
      ],
      facilities: [{ id: 'north-canteen', type: 'canteen', name: '北区食堂', houseCode: 'H-0001' }],
      devices: [{ id: 'fridge-1', facility: 'north-canteen', profile: 'r4dcb08', bus: 'lan', unitId: 2, pollMs: 1000 }],
      simulator: { enabled: true, host: '127.0.0.1', port: simPort, seed: 5 },
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
    await field.stop();
  }
});

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

/** The page does not scroll sideways at 390 px. */
async function fitsPhone(page: Page): Promise<void> {
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
}

describe.skipIf(!haveChromium)('entry forms in Chromium (390 x 844, zh-CN)', () => {
  it('adds a device with the form (read now first), refuses bad values in Chinese at their field, adds a bus and an alarm rule', async () => {
    const context = await browser!.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN' });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource: .* status of (401|422)\b/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    await page.goto(base);
    await setUpAdmin(page, app.auth.setupCode!, PASSWORD);

    // Devices tab: the list, then the add form.
    await page.goto(`${base}/#/config`);
    await page.click('[data-tab=devices]');
    await page.locator('[data-entries=devices] [data-entry="fridge-1"]').waitFor();
    await page.click('[data-entries=devices] [data-action=add-entry]');
    const form = page.locator('#entry-form-devices');
    await form.waitFor();
    // The profile picker lists shipped profiles by model and maker; picking one shows its points.
    await expect.poll(() => form.locator('select[name=profile] option[value="xy-md02"]').count(), { timeout: 5000 }).toBe(1);
    await form.locator('input[name=id]').fill('cold-room');
    await form.locator('input[name=name]').fill('冷库温湿度');
    // The facility picker: the config's facilities (name, type, house code), then every type,
    // with the names the server gives (drivers/facility-types.yaml), none from the page itself.
    const facilityOptions = await form.locator('select[name=facility] option').evaluateAll((os) => os.map((o) => [(o as HTMLOptionElement).value, o.textContent]));
    expect(facilityOptions[0]).toEqual(['north-canteen', '北区食堂 · 老年食堂 · H-0001']);
    expect(facilityOptions).toContainEqual(['childcare', '托育服务设施']);
    expect(facilityOptions).toContainEqual(['women-children', '妇儿服务驿站']);
    expect(facilityOptions).toHaveLength(8);
    await form.locator('select[name=facility]').selectOption('north-canteen');
    await form.locator('select[name=profile]').selectOption('xy-md02');
    await form.locator('#profile-card').waitFor();
    expect(await form.locator('#profile-card').textContent()).toMatch(/XY-MD02.*2 个测点.*温度、湿度/s);
    await form.locator('select[name=bus]').selectOption('field');
    // 1. An invalid unit id: refused by the server's check, in Chinese, next to the field.
    await form.locator('input[name=unitId]').fill('300');
    await form.locator('[data-action=save-entry]').click();
    const unitError = form.locator('[data-error-for=unitId]');
    await expect.poll(async () => (await unitError.textContent()) ?? '', { timeout: 5000 }).toBe('必须在 1 到 247 之间 [config.range]');
    expect(await form.locator('input[name=unitId]').getAttribute('aria-invalid')).toBe('true');
    expect(app.config.devices).toHaveLength(1);
    await shot(page, '30-form-device-invalid');
    // 2. Read now: the unsaved device, read once through the running bus.
    await form.locator('input[name=unitId]').fill('7');
    await form.locator('[data-action=read-now]').click();
    const readNow = form.locator('#read-now-result');
    await expect.poll(async () => (await readNow.locator('[data-point=temperature] dd').textContent()) ?? '', { timeout: 5000 }).toBe('4.5 °C');
    expect(await readNow.locator('[data-point=humidity] dd').textContent()).toBe('71.2 %RH');
    expect(app.config.devices).toHaveLength(1);
    await fitsPhone(page);
    await shot(page, '31-form-device-read-now');
    // 3. Apply: the diff is confirmed, then the device runs (a reload).
    await form.locator('[data-action=save-entry]').click();
    const dialog = page.locator('#confirm-dialog');
    await dialog.locator('#config-diff').waitFor();
    expect(await dialog.locator('#config-diff').textContent()).toContain('cold-room');
    await dialog.locator('[data-action=confirm]').click();
    await expect.poll(async () => (await page.locator('#config-result').textContent()) ?? '', { timeout: 10_000 }).toContain('已应用（已重新加载）');
    expect(app.config.devices[1]).toMatchObject({ id: 'cold-room', facility: 'north-canteen', profile: 'xy-md02', bus: 'field', unitId: 7, name: '冷库温湿度' });
    await page.locator('[data-entries=devices] [data-entry="cold-room"]').waitFor();
    // 4. Online on the overview, with its values.
    await page.goto(`${base}/#/`);
    const item = page.locator('li.device[data-device="cold-room"]');
    await expect.poll(async () => item.locator('.badge').first().getAttribute('data-state'), { timeout: 10_000 }).toBe('ok');
    await expect.poll(async () => (await item.locator('[data-point=temperature]').textContent()) ?? '', { timeout: 10_000 }).toContain('4.5');
    // It sits in its facility's card, headed by the facility's name and type, with the house code.
    const card = page.locator('section.facility[data-facility="north-canteen"]');
    expect(await card.locator('h2').textContent()).toBe('北区食堂 · 老年食堂');
    expect(await card.locator('.house-code').textContent()).toBe('房屋编码: H-0001');
    expect(await card.locator('li.device[data-device="cold-room"]').count()).toBe(1);
    await shot(page, '32-overview-new-device');

    // Buses tab: an RTU bus on a port the box does not have is refused at the path field.
    await page.goto(`${base}/#/config`);
    await page.click('[data-tab=buses]');
    await page.click('[data-entries=buses] [data-action=add-entry]');
    const bus = page.locator('#entry-form-buses');
    await bus.waitFor();
    await bus.locator('input[name=id]').fill('rs485-1');
    await bus.locator('select[name=type]').selectOption('modbus-rtu');
    await bus.locator('input[name=path]').fill('/dev/ttyUSB9');
    await bus.locator('select[name=baudRate]').selectOption('9600');
    await bus.locator('select[name=parity]').selectOption('even');
    await bus.locator('[data-action=save-entry]').click();
    await expect.poll(async () => (await bus.locator('[data-error-for=path]').textContent()) ?? '', { timeout: 5000 }).toContain('串口设备不存在：/dev/ttyUSB9');
    expect(app.config.buses).toHaveLength(2);
    await fitsPhone(page);
    await shot(page, '33-form-bus-missing-port');
    // TCP instead: host and port fields, applied.
    await bus.locator('select[name=type]').selectOption('modbus-tcp');
    await bus.locator('input[name=host]').fill('127.0.0.1');
    await bus.locator('input[name=port]').fill('1502');
    await bus.locator('[data-action=save-entry]').click();
    await dialog.locator('#config-diff').waitFor();
    await dialog.locator('[data-action=confirm]').click();
    await expect.poll(() => app.config.buses.map((b) => b.id), { timeout: 10_000 }).toEqual(['lan', 'field', 'rs485-1']);
    expect(app.config.buses[2]).toMatchObject({ type: 'modbus-tcp', host: '127.0.0.1', port: 1502 });

    // Alarm rules tab: a rule on the new device's public temperature.
    await page.click('[data-tab=alarms]');
    await page.click('[data-entries=alarms] [data-action=add-entry]');
    const alarm = page.locator('#entry-form-alarms');
    await alarm.waitFor();
    await alarm.locator('input[name=id]').fill('cold-room-warm');
    await alarm.locator('select[name=device]').selectOption('cold-room');
    await alarm.locator('select[name=point]').selectOption('temperature');
    await alarm.locator('select[name=condition]').selectOption('above');
    await alarm.locator('input[name=threshold]').fill('abc');
    await alarm.locator('[data-action=save-entry]').click();
    await expect.poll(async () => (await alarm.locator('[data-error-for=threshold]').textContent()) ?? '', { timeout: 5000 }).not.toBe('');
    await alarm.locator('input[name=threshold]').fill('8');
    await alarm.locator('select[name=severity]').selectOption('critical');
    await shot(page, '34-form-alarm');
    await alarm.locator('[data-action=save-entry]').click();
    await dialog.locator('#config-diff').waitFor();
    await dialog.locator('[data-action=confirm]').click();
    await expect.poll(() => app.config.alarms, { timeout: 10_000 }).toEqual([expect.objectContaining({ id: 'cold-room-warm', device: 'cold-room', point: 'temperature', above: 8, severity: 'critical' })]);
    await page.locator('[data-entries=alarms] [data-entry="cold-room-warm"]').waitFor();
    await fitsPhone(page);
    await shot(page, '35-config-alarms-list');

    // Removing a bus devices still use is refused, saying why in Chinese; removing the device
    // (confirmed with the diff) takes it out of the running config and off the list.
    await page.click('[data-tab=buses]');
    await page.locator('[data-entries=buses] [data-entry="field"] [data-action=remove-entry]').click();
    await expect.poll(async () => (await page.locator('#config-result').textContent()) ?? '', { timeout: 5000 }).toContain('没有总线“field”');
    expect(app.config.buses.map((b) => b.id)).toContain('field');
    await page.click('[data-tab=alarms]');
    await page.locator('[data-entries=alarms] [data-entry="cold-room-warm"] [data-action=remove-entry]').click();
    await dialog.locator('#config-diff').waitFor();
    expect(await dialog.locator('.dialog-message').textContent()).toContain('确认删除 cold-room-warm');
    await dialog.locator('[data-action=confirm]').click();
    await expect.poll(() => app.config.alarms.length, { timeout: 10_000 }).toBe(0);
    await page.click('[data-tab=devices]');
    await page.locator('[data-entries=devices] [data-entry="cold-room"] [data-action=remove-entry]').click();
    await dialog.locator('#config-diff').waitFor();
    await dialog.locator('[data-action=confirm]').click();
    await expect.poll(() => app.config.devices.map((d) => d.id), { timeout: 10_000 }).toEqual(['fridge-1']);
    await expect.poll(() => page.locator('[data-entries=devices] [data-entry="cold-room"]').count(), { timeout: 5000 }).toBe(0);
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);
});
