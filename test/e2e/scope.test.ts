import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { openDevice } from '../../src/app/device.js';
import { createHandlers } from '../../src/app/handlers.js';
import { serveBrowserMode, type BrowserModeServer } from '../../src/app/rpc-server.js';
import { startServer, type StartedServer } from '../../src/server/index.js';
import { evictClosedOrders } from '../../src/sync/retention.js';
import { buildRenderer } from './build-renderer.js';

/**
 * Scoped sync and bounded history as a person uses them: Chromium against browser mode, a real
 * device store, and a real central server that holds orders of several customers.
 */

const root = join(import.meta.dirname, '..', '..');
const TOKEN = 'e2e-scope-alice-0123456789';
const WRITER = 'e2e-scope-writer-012345678';
const FAST_SYNC = { backoff: { minMs: 200, maxMs: 1000, retries: 2 }, debounceMs: 50 };
const tokens = [
  { token: TOKEN, tenant: 'e2e', user: 'alice', roles: ['device' as const] },
  { token: WRITER, tenant: 'e2e', user: 'writer', roles: ['device' as const] },
];

async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  await new Promise((r) => srv.close(r));
  return typeof addr === 'object' && addr ? addr.port : 0;
}

const event = (eventType: string, data: Record<string, unknown>, schemaVersion = 1) => ({ eventId: uuidv7(), eventType, schemaVersion, data });
const created = (orderId: string, customerId: string) =>
  event('OrderCreated', { orderId, customerId, items: [{ sku: 'SKU-1', quantity: 1, unitPrice: 2500 }], total: 2500, currency: 'USD' }, 2);

describe('scoped sync and bounded history in Chromium (browser mode)', () => {
  let dir: string;
  let serverUrl: string;
  let serverPort: number;
  let central: StartedServer | null = null;
  let device: Awaited<ReturnType<typeof openDevice>>;
  let app: BrowserModeServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  const row = (orderId: string) => page.locator(`[data-order-id="${orderId}"]`);

  async function append(streamId: string, expectedVersion: number | 'no_stream', events: unknown[]) {
    const res = await fetch(`${serverUrl}/sync/streams/${streamId}/append`, {
      method: 'POST',
      headers: { authorization: `Bearer ${WRITER}`, 'content-type': 'application/json' },
      body: JSON.stringify({ streamType: 'Order', expectedVersion, events }),
    });
    expect(res.status).toBe(201);
  }

  beforeAll(async () => {
    const rendererDir = await buildRenderer();
    dir = mkdtempSync(join(tmpdir(), 'orderlog-e2e-scope-'));
    serverPort = await freePort();
    serverUrl = `http://127.0.0.1:${serverPort}`;
    // The device knows the server but nothing listens yet: the person sets the scope before the first sync.
    device = await openDevice({ dataDir: join(dir, 'device'), serverUrl, token: TOKEN, userId: 'alice', sync: FAST_SYNC });
    app = await serveBrowserMode({ handlers: createHandlers(device), onStatus: (l) => device.onStatus(l), port: 0, rendererDir });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await device?.close();
    await central?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the person limits the device to a customer in Settings; only those orders sync', async () => {
    await page.goto(app.launchUrl);
    await expect.poll(() => page.getByRole('heading', { name: 'Orders' }).count()).toBeGreaterThan(0);
    await page.goto(`${app.url}/#/settings`);
    const form = page.getByRole('form', { name: 'Sync scope' });
    await expect.poll(() => form.getByLabel('Every order of the company').isChecked()).toBe(true);
    await form.getByLabel('Only my customers and recent orders').check();
    // Bad input is explained and changes nothing.
    await form.getByLabel('Customer IDs').fill('CUST-A');
    await form.getByLabel(/Drop the events of closed orders/).fill('0');
    await form.getByRole('button', { name: 'Save scope' }).click();
    await expect.poll(() => form.getByText('At least 1 day.').count()).toBe(1);
    expect(device.engine.scope.scope().mode).toBe('all');
    await form.getByLabel(/Drop the events of closed orders/).fill('');
    await form.getByRole('button', { name: 'Save scope' }).click();
    await expect.poll(() => form.getByText(/^Saved\./).count()).toBe(1);
    expect(device.engine.scope.scope()).toEqual({ mode: 'scoped', customers: ['CUST-A'], recentDays: null, streams: [] });
    await page.reload();
    await expect.poll(() => page.getByLabel('Customer IDs').inputValue()).toBe('CUST-A');

    central = await startServer({ backend: 'sqlite', file: join(dir, 'server.sqlite'), tokens, port: serverPort });
    await append('ORD-A-1', 'no_stream', [created('ORD-A-1', 'CUST-A')]);
    await append('ORD-B-1', 'no_stream', [created('ORD-B-1', 'CUST-B')]);
    await append('ORD-A-DONE', 'no_stream', [created('ORD-A-DONE', 'CUST-A'), event('OrderCancelled', { reason: 'duplicate', cancelledAt: '2026-01-02T00:00:00.000Z' })]);
    await append('ORD-B-2', 'no_stream', [created('ORD-B-2', 'CUST-B')]);

    await page.goto(`${app.url}/#/sync`);
    await page.getByRole('button', { name: 'Sync now' }).click();
    await page.goto(`${app.url}/#/orders`);
    await expect.poll(() => row('ORD-A-DONE').count(), { timeout: 20_000 }).toBe(1);
    expect(await row('ORD-A-1').count()).toBe(1);
    expect(await row('ORD-B-1').count()).toBe(0);
    expect(await row('ORD-B-2').count()).toBe(0);
    await page.screenshot({ path: join(root, 'test-artifacts', 'screenshots', 'scope-list.png') });
  });

  it('opens an order outside the scope by its id from the server, and keeps it', async () => {
    await page.goto(`${app.url}/#/orders`);
    await page.getByLabel('Order ID').fill('ORD-NOPE');
    await page.getByRole('button', { name: 'Open by ID' }).click();
    await expect.poll(() => page.getByText('The server has no order ORD-NOPE.').count()).toBe(1);
    await page.getByLabel('Order ID').fill('ORD-B-1');
    await page.getByRole('button', { name: 'Open by ID' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'ORD-B-1' }).count()).toBe(1);
    await expect.poll(() => row('ORD-B-1').count()).toBe(1);
    // From a link to an order not on the device: the detail offers to fetch it.
    await page.goto(`${app.url}/#/orders/ORD-B-2`);
    await page.getByRole('button', { name: 'Open from server' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'ORD-B-2' }).count()).toBe(1);
    // Kept: a later change on the server arrives with the next sync.
    await append('ORD-B-1', 1, [event('PaymentReceived', { paymentId: 'pay-1', amount: 2500 })]);
    await page.goto(`${app.url}/#/sync`);
    await page.getByRole('button', { name: 'Sync now' }).click();
    await page.goto(`${app.url}/#/orders/ORD-B-1`);
    await expect.poll(() => row('ORD-B-1').locator('[data-sync]').count()).toBe(1);
    await expect.poll(() => device.outbox.effectiveState('ORD-B-1').paidAmount, { timeout: 20_000 }).toBe(2500);
  });

  it("a closed order past retention shows its final state and fetches its dropped history on request", async () => {
    // A month later, with a 30-day window: the cancelled order drops its local events.
    const report = evictClosedOrders(device.store, device.outbox.repo, device.outbox.quarantine, { retentionDays: 30, now: new Date(Date.now() + 31 * 86_400_000) });
    expect(report.evictedOrders).toBe(1);
    await page.goto(`${app.url}/#/orders/ORD-A-DONE`);
    await expect.poll(() => page.getByTestId('dropped-history').count()).toBe(1);
    expect(await page.locator('.timeline li').count()).toBe(0);
    await page.getByRole('button', { name: 'Load full history from server' }).click();
    await expect.poll(() => page.locator('.timeline li').count()).toBe(2);
    await expect.poll(() => page.getByText('Showing the full history from the server.').count()).toBe(1);
    await page.screenshot({ path: join(root, 'test-artifacts', 'screenshots', 'dropped-history.png') });
    await page.goto(`${app.url}/#/settings`);
    await expect.poll(() => page.getByTestId('scope-facts').textContent()).toMatch(/^1 closed order kept without history/);
    expect(pageErrors).toEqual([]);
  });
});
