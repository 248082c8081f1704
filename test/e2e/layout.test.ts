import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDevice, type Device } from '../../src/app/device.js';
import { createHandlers } from '../../src/app/handlers.js';
import { serveBrowserMode, type BrowserModeServer } from '../../src/app/rpc-server.js';
import { startServer, type StartedServer } from '../../src/server/index.js';
import { buildRenderer } from './build-renderer.js';

/**
 * The office and field screens as people see them, in Debian Chromium against browser mode: the
 * audit line belongs to its order, form messages are sentences, money is grouped and never wraps,
 * and the layout holds at 1024×700 and 1366×768 in light and dark (screenshots in
 * test-artifacts/screenshots/layout-*.png, to be looked at).
 */

const root = join(import.meta.dirname, '..', '..');
const shots = join(root, 'test-artifacts', 'screenshots');
const TOKEN = 'layout-token-alice-0123456789';
const BOB = 'layout-token-bob-0123456789ab';
const tokens = [
  { token: TOKEN, tenant: 'lay', user: 'alice', roles: ['device' as const, 'admin' as const] },
  { token: BOB, tenant: 'lay', user: 'bob', roles: ['device' as const] },
];
const FAST = { backoff: { minMs: 100, maxMs: 500, retries: 2 }, debounceMs: 20 };
const SIZES = [
  { width: 1024, height: 700 },
  { width: 1366, height: 768 },
];

describe('layout, messages and audit in Chromium (browser mode)', () => {
  let dir: string;
  let central: StartedServer;
  let device: Device;
  let other: Device;
  let app: BrowserModeServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const failedRequests: string[] = [];

  const row = (orderId: string) => page.locator(`[data-order-id="${orderId}"]`);
  const h = () => createHandlers(device);

  beforeAll(async () => {
    const rendererDir = await buildRenderer();
    mkdirSync(shots, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'orderlog-layout-'));
    central = await startServer({ backend: 'sqlite', file: join(dir, 'server.sqlite'), tokens, port: 0 });
    device = await openDevice({ dataDir: join(dir, 'd1'), serverUrl: central.url, token: TOKEN, userId: 'alice', sync: FAST });
    other = await openDevice({ dataDir: join(dir, 'd2'), serverUrl: central.url, token: BOB, userId: 'bob', sync: FAST });
    app = await serveBrowserMode({
      handlers: createHandlers(device),
      onStatus: (l) => device.onStatus(l),
      snapshot: () => device.statusSnapshot(),
      port: 0,
      rendererDir,
    });
    // Orders with large amounts, several lines, customer names in several scripts, CJK and emoji
    // in free text, and one conflict.
    const handlers = h();
    const NAMES = ['客户一', 'Blue Cafe', 'Ørsted & Söhne', 'Café-Müller'];
    const create = (orderId: string, customerId: string, customerName: string, items: { sku: string; description?: string; quantity: number; unitPrice: number }[]) =>
      handlers.execute({ command: { type: 'CreateOrder', orderId, customerId, customerName, currency: 'USD', items } });
    await create('ORD-BIG-1', 'CUST-HQ', 'Blue Cafe Headquarters', [{ sku: 'PALLET-XL', description: 'Pallet of espresso machines', quantity: 120, unitPrice: 1_234_567 }]);
    await create('ORD-MULTI-2', 'CUST-CAFE', 'Café-Müller', [
      { sku: 'BEANS-1KG', description: 'Kaffeebohnen, 1 kg', quantity: 3, unitPrice: 1850 },
      { sku: 'FILTER-100', description: '咖啡滤纸 100 张', quantity: 2, unitPrice: 499 },
    ]);
    for (let i = 3; i <= 14; i++) {
      await create(`ORD-${String(i).padStart(4, '0')}`, `CUST-${i}`, NAMES[i % NAMES.length]!, [{ sku: 'WIDGET', quantity: i, unitPrice: 999 * i }]);
    }
    await handlers.execute({ command: { type: 'ReserveInventory', orderId: 'ORD-MULTI-2', reservationId: 'RES-1' } });
    await handlers.execute({ command: { type: 'CancelOrder', orderId: 'ORD-MULTI-2', reason: '客户取消 — 店铺关门 🙏☕', cancelledAt: new Date().toISOString() } });
    await handlers.syncNow({});
    // Bob pays most of ORD-BIG-1 first; alice's full payment then overpays and is rejected.
    const oh = createHandlers(other);
    await oh.syncNow({});
    await handlers.setWorkOffline({ workOffline: true });
    await handlers.execute({ command: { type: 'RecordPayment', orderId: 'ORD-BIG-1', paymentId: 'PAY-ALICE', amount: 148_148_040 } });
    await oh.execute({ command: { type: 'RecordPayment', orderId: 'ORD-BIG-1', paymentId: 'PAY-BOB', amount: 100_000_000 } });
    await oh.syncNow({});
    await handlers.setWorkOffline({ workOffline: false });
    for (let i = 0; i < 150 && (await handlers.syncStatus({})).conflictCount !== 1; i++) await new Promise((r) => setTimeout(r, 100));

    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    const context = await browser.newContext({ viewport: SIZES[1]!, colorScheme: 'light', locale: 'en-US' });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('response', (r) => {
      if (r.status() >= 400 && !r.url().includes('/rpc/')) failedRequests.push(`${r.status()} ${r.url()}`);
    });
    await page.goto(app.launchUrl);
    await page.getByRole('heading', { name: 'Orders' }).waitFor();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await device?.close();
    await other?.close();
    await central?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps an audit result with the order it was computed for', async () => {
    await page.goto(`${app.url}/#/orders/ORD-0003`);
    const status = page.getByTestId('audit-status');
    await expect.poll(() => status.textContent()).toMatch(/Not verified/);
    await page.getByRole('button', { name: 'Verify audit chain' }).click();
    await expect.poll(() => status.textContent(), { timeout: 15_000 }).toMatch(/Hash chain intact — 1 server event/);
    // Another order, never checked: it must not show the first order's result.
    await row('ORD-0004').click();
    await expect.poll(() => page.getByRole('heading', { name: 'ORD-0004' }).count()).toBe(1);
    expect(await status.textContent()).toMatch(/Not verified against the server yet/);
    // Back to the checked one: its own (stored) result.
    await row('ORD-0003').click();
    await expect.poll(() => status.textContent()).toMatch(/Hash chain intact/);
  });

  it('says what is wrong with a form in sentences, keeps the total honest, and reads amounts as typed', async () => {
    await page.goto(`${app.url}/#/orders`);
    await page.getByRole('button', { name: 'New order' }).click();
    const dialog = page.getByRole('dialog', { name: 'New order' });
    // The limits are stated before they bite.
    expect(await dialog.textContent()).toMatch(/As people know them, any language · 0 \/ 120/);
    expect(await dialog.textContent()).toMatch(/Up to 200 characters/);
    await dialog.getByLabel('Customer ID').fill('CUST-TYPED');
    await dialog.getByLabel('SKU').fill('WIDGET');
    await dialog.getByLabel('Quantity').fill('2.5');
    await dialog.getByLabel(/Unit price/).fill('-3');
    await expect.poll(() => dialog.getByTestId('order-total').textContent()).toMatch(/USD\s0\.00/);
    await dialog.getByLabel('Currency').fill('XYZ');
    await dialog.getByLabel('Contact (optional)').fill('call me maybe');
    await dialog.getByRole('button', { name: 'Create order' }).click();
    const text = async () => (await dialog.textContent()) ?? '';
    await expect.poll(text).toMatch(/Enter a whole number of items, for example 3\./);
    expect(await text()).toMatch(/Amounts cannot be negative\./);
    expect(await text()).toMatch(/The customer name is required\./);
    expect(await text()).toMatch(/XYZ is not a currency in the ISO 4217 list; use a code such as USD, EUR, GBP or JPY\./);
    expect(await text()).toMatch(/The contact must be an e-mail address \(name@example\.com\) or a phone number/);
    await dialog.getByLabel('Customer name').fill('客户一 Café-Müller');
    await dialog.getByLabel('Currency').fill('USD');
    await dialog.getByLabel('Contact (optional)').fill('+86 10 1234 5678');
    await dialog.getByLabel('Description (optional)').fill('小部件 — widget, blue');
    // Corrected fields drop their old messages at once.
    expect(await text()).not.toMatch(/customer name is required|not a currency|contact must be/);
    expect(await text()).not.toMatch(/expected|received|Invalid input|Too small|NaN/);
    // A field error does not push the other inputs of its row down.
    const tops = async () => Promise.all(['Quantity', 'SKU'].map(async (l) => (await dialog.getByLabel(l).boundingBox())!.y));
    const [qTop, skuTop] = await tops();
    expect(qTop).toBe(skuTop);
    // Amounts as people type them; the running total grouped.
    await dialog.getByLabel('Quantity').fill('1,200');
    await dialog.getByLabel(/Unit price/).fill('$1,000.50');
    await expect.poll(() => dialog.getByTestId('order-total').textContent()).toMatch(/USD\s1,200,600\.00/);
    await dialog.getByLabel(/Unit price/).fill('90071992547400000');
    await expect.poll(() => dialog.getByTestId('order-total').textContent()).not.toMatch(/90071992547400000/);
    await dialog.getByLabel(/Unit price/).fill('1,000.50');
    await page.screenshot({ path: join(shots, 'layout-create-order-1366.png') });
    await dialog.getByRole('button', { name: 'Create order' }).click();
    await expect.poll(() => page.getByRole('heading', { name: /^ORD-/ }).count(), { timeout: 10_000 }).toBe(1);
    // The total in the list: grouped, on one line.
    const created = page.locator('.order-row.selected .num');
    await expect.poll(() => created.textContent()).toMatch(/USD\s1,200,600\.00/);
    expect(await page.locator('.order-row.selected small').textContent()).toContain('客户一 Café-Müller');
    expect(await page.locator('.detail-head').textContent()).toContain('+86 10 1234 5678');
    const box = (await created.boundingBox())!;
    expect(box.height).toBeLessThan(30);
  });

  it('counts a long reason before it is too long, and refuses it whole instead of cutting it', async () => {
    await page.goto(`${app.url}/#/orders/ORD-0005`);
    await page.getByText('Cancel order', { exact: true }).click();
    const reason = page.getByLabel('Reason');
    await reason.fill('x'.repeat(699));
    expect((await reason.inputValue()).length).toBe(699);
    await expect.poll(() => page.getByText('699 / 500 characters').count()).toBe(1);
    await page.getByRole('button', { name: 'Cancel order' }).click();
    await expect.poll(() => page.getByText(/Too long: 699 characters, at most 500/).count()).toBe(1);
    expect(await reason.inputValue()).toHaveLength(699);
  });

  it('offers "Retry as new" only where it can succeed, and says why not', async () => {
    await page.goto(`${app.url}/#/sync`);
    const card = page.getByTestId('conflict-list').locator('article').first();
    await expect.poll(() => card.textContent(), { timeout: 10_000 }).toMatch(/Record payment/);
    expect(await card.textContent()).toMatch(/USD\s1,481,480\.40 as PAY-ALICE/);
    expect(await card.getByRole('button', { name: 'Retry as new' }).count()).toBe(0);
    expect(await card.getByTestId('retry-impossible').textContent()).toMatch(/Retrying would be refused too/);
    // The sidebar does not call this "Synced".
    await expect.poll(() => page.getByTestId('sync-indicator').textContent()).toMatch(/1 conflict to review/);
  });

  it('shows a cancelled order\'s reservation as released (its own event), and one item count', async () => {
    await page.goto(`${app.url}/#/orders/ORD-MULTI-2`);
    await expect.poll(() => page.getByTestId('inventory-fact').textContent()).toBe('Stock released (reservation RES-1)');
    expect(await page.getByRole('list', { name: 'Event timeline' }).textContent()).toContain('Stock released');
    expect(await page.locator('.detail').textContent()).toContain('Kaffeebohnen, 1 kg');
    const listed = (await row('ORD-MULTI-2').locator('small').textContent()) ?? '';
    expect(listed).toContain('5 items');
    const history = (await page.getByRole('list', { name: 'Event timeline' }).textContent()) ?? '';
    expect(history).toContain('5 items on 2 lines');
  });

  it('is keyboard reachable: the dialog opens, Escape closes it, focus is visible', async () => {
    await page.goto(`${app.url}/#/orders`);
    await page.getByRole('button', { name: 'New order' }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'New order' });
    await expect.poll(() => dialog.count()).toBe(1);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('co-name');
    await page.keyboard.press('Escape');
    await expect.poll(() => dialog.count()).toBe(0);
    await page.keyboard.press('Tab');
    const outline = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      return el ? getComputedStyle(el).outlineStyle : 'none';
    });
    expect(outline).not.toBe('none');
  });

  it('filters and counts by payment and by fulfilment, each chip saying how many it shows', async () => {
    await page.setViewportSize(SIZES[1]!);
    await page.goto(`${app.url}/#/orders`);
    const payment = page.getByRole('group', { name: 'Filter by payment' });
    const fulfilment = page.getByRole('group', { name: 'Filter by fulfilment' });
    // ORD-BIG-1 is partly paid (bob's payment), ORD-MULTI-2 cancelled.
    await expect.poll(() => payment.getByRole('button', { name: /Partly paid/ }).textContent()).toMatch(/Partly paid\s*1$/);
    await payment.getByRole('button', { name: /Partly paid/ }).click();
    await expect.poll(() => page.locator('[data-order-id]').count()).toBe(1);
    expect(await row('ORD-BIG-1').count()).toBe(1);
    await payment.getByRole('button', { name: /^All/ }).click();
    await fulfilment.getByRole('button', { name: /Cancelled/ }).click();
    await expect.poll(() => page.locator('[data-order-id]').count()).toBe(1);
    expect(await row('ORD-MULTI-2').count()).toBe(1);
    await fulfilment.getByRole('button', { name: /^All/ }).click();
    await expect.poll(() => page.locator('[data-order-id]').count()).toBeGreaterThan(2);
  });

  it('moves keyboard focus into the order panel when it opens over the list (narrow)', async () => {
    await page.setViewportSize(SIZES[0]!);
    await page.goto(`${app.url}/#/orders`);
    await row('ORD-0006').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('detail-title');
    await page.keyboard.press('Escape');
    await page.setViewportSize(SIZES[1]!);
  });

  for (const scheme of ['light', 'dark'] as const) {
    for (const size of SIZES) {
      it(`lays out at ${size.width}×${size.height} (${scheme}): list rows, badges and headers fit`, async () => {
        await page.setViewportSize(size);
        await page.emulateMedia({ colorScheme: scheme });
        await page.goto(`${app.url}/#/orders/ORD-MULTI-2`);
        await expect.poll(() => row('ORD-BIG-1').count()).toBe(1);
        await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
        await page.screenshot({ path: join(shots, `layout-list-${size.width}-${scheme}.png`) });
        // The list shows a useful number of rows (not a 3-row strip).
        const listBox = (await page.locator('.order-list').boundingBox())!;
        expect(listBox.height).toBeGreaterThan(5 * 60);
        // Sync badges are not clipped by their row; headers do not touch.
        const clipped = await page.evaluate(() =>
          [...document.querySelectorAll('.order-row')]
            .map((r) => {
              const badge = r.querySelector('[data-sync]');
              const list = document.querySelector('.order-list')!.getBoundingClientRect();
              if (!badge) return null;
              const b = badge.getBoundingClientRect();
              return b.right > list.right + 0.5 || badge.scrollWidth > badge.clientWidth + 1 ? `${r.getAttribute('data-order-id')} ${b.right} > ${list.right}` : null;
            })
            .filter(Boolean),
        );
        expect(clipped).toEqual([]);
        const gap = await page.evaluate(() => {
          const cells = [...document.querySelectorAll('.list-head > span')].map((s) => s.getBoundingClientRect());
          const total = cells[2]!;
          const updated = cells[3]!;
          return updated.left - total.right;
        });
        expect(gap).toBeGreaterThanOrEqual(8);
        // Money never wraps.
        const wrapped = await page.evaluate(() => [...document.querySelectorAll('.order-row .num')].some((n) => n.getBoundingClientRect().height > 24));
        expect(wrapped).toBe(false);
        // CJK and emoji are drawn with a font that has them (not as boxes): a fallback font is used.
        await page.getByRole('list', { name: 'Event timeline' }).evaluate((el) => el.scrollIntoView({ block: 'center' }));
        await page.screenshot({ path: join(shots, `layout-orders-${size.width}-${scheme}.png`) });
        await page.goto(`${app.url}/#/sync`);
        await expect.poll(() => page.getByTestId('conflict-list').count(), { timeout: 10_000 }).toBe(1);
        await page.screenshot({ path: join(shots, `layout-sync-${size.width}-${scheme}.png`) });
      });
    }
  }

  it('loads without a failed request (a favicon, no 404) or a script error', async () => {
    const icon = await page.evaluate(() => document.querySelector<HTMLLinkElement>('link[rel="icon"]')?.href ?? null);
    expect(icon).not.toBeNull();
    const res = await page.request.get(icon!);
    expect(res.status()).toBe(200);
    expect(res.headers()['content-type']).toMatch(/image\/svg\+xml/);
    expect(failedRequests).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
