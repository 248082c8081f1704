import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { canonicalJson } from '../../src/protocol/canonical-json.js';
import { chainHash } from '../../src/protocol/event-hash.js';
import { openDevice } from '../../src/app/device.js';
import { createHandlers } from '../../src/app/handlers.js';
import { serveBrowserMode, type BrowserModeServer } from '../../src/app/rpc-server.js';
import { startServer, type StartedServer } from '../../src/server/index.js';
import { buildRenderer } from './build-renderer.js';

/**
 * The app as a user sees it: Debian Chromium against browser mode (the renderer served with the
 * real handlers over HTTP), a real device store, and a real central server on loopback that is
 * started late to show offline work syncing.
 */

const root = join(import.meta.dirname, '..', '..');
let rendererDir: string;
const shots = join(root, 'test-artifacts', 'screenshots');
// The server decides the user from the token, so each person gets their own.
const TOKEN = 'e2e-token-alice-0123456789';
const BOB_TOKEN = 'e2e-token-bob-0123456789ab';
/** Short backoff so a test waits seconds, not minutes, after the server comes back. */
const FAST_SYNC = { backoff: { minMs: 200, maxMs: 1000, retries: 2 }, debounceMs: 50 };
const tokens = [
  { token: TOKEN, tenant: 'e2e', user: 'alice', roles: ['device' as const, 'admin' as const] },
  { token: BOB_TOKEN, tenant: 'e2e', user: 'bob', roles: ['device' as const] },
];

async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  await new Promise((r) => srv.close(r));
  return typeof addr === 'object' && addr ? addr.port : 0;
}

describe('desktop UI in Chromium (browser mode)', () => {
  let dir: string;
  let serverPort: number;
  let serverUrl: string;
  let central: StartedServer | null = null;
  let device: Awaited<ReturnType<typeof openDevice>>;
  let app: BrowserModeServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  const startCentral = async () => {
    central = await startServer({ backend: 'sqlite', file: join(dir, 'server.sqlite'), tokens, port: serverPort });
  };
  const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
  const row = (orderId: string) => page.locator(`[data-order-id="${orderId}"]`);
  const syncNow = async () => {
    await page.goto(`${app.url}/#/sync`);
    await page.getByRole('button', { name: 'Sync now' }).click();
  };

  /** Sign in as the user does: open the address `npm start` prints. */
  const openLaunchUrl = async () => {
    await page.goto(app.launchUrl);
    await expect.poll(() => page.getByRole('heading', { name: 'Orders' }).count()).toBeGreaterThan(0);
  };

  beforeAll(async () => {
    rendererDir = await buildRenderer();
    mkdirSync(shots, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'orderlog-e2e-'));
    serverPort = await freePort();
    serverUrl = `http://127.0.0.1:${serverPort}`;
    // The device knows the server's address, but nothing listens there yet.
    device = await openDevice({ dataDir: join(dir, 'device-1'), serverUrl, token: TOKEN, userId: 'alice', sync: FAST_SYNC });
    app = await serveBrowserMode({ handlers: createHandlers(device), onStatus: (l) => device.onStatus(l), port: 0, rendererDir });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    // One profile for the user's tabs (the attacker test opens its page beside the app, sharing the cookie jar).
    context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: 'light' });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await device?.close();
    await central?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('opens from the printed URL in one step, drops the key from the address bar, and survives a reload', async () => {
    await openLaunchUrl();
    expect(page.url()).toBe(`${app.url}/`);
    expect(page.url()).not.toContain('#k=');
    await page.reload();
    await expect.poll(() => page.getByText('No orders yet').count()).toBe(1);
    await page.goto(`${app.url}/#/settings`);
    await expect.poll(() => page.getByLabel('Server URL').inputValue()).toBe(serverUrl);
    // The cookie is HttpOnly: the page's own script cannot read it.
    expect(await page.evaluate(() => document.cookie)).toBe('');
    // Another browser profile with only the bare address (no key) gets a clear message, not the data.
    const stranger = await browser.newPage();
    try {
      await stranger.goto(`${app.url}/#/orders`);
      await expect.poll(() => stranger.getByRole('alert').textContent()).toMatch(/not connected to the running app.*npm start/);
      await stranger.screenshot({ path: join(shots, 'not-connected.png') });
      await stranger.goto('about:blank');
      await stranger.goto(`${app.url}/#k=${'0'.repeat(64)}`);
      await expect.poll(() => stranger.getByRole('alert').textContent()).toMatch(/not connected to the running app/);
      expect(stranger.url()).not.toContain('#k=');
    } finally {
      await stranger.close();
    }
  });

  it('creates an order while the server is down (pending), then syncs it when the server comes up', async () => {
    await page.goto(`${app.url}/#/orders`);
    await expect.poll(() => page.getByText('No orders yet').count()).toBe(1);
    await shot('orders-empty');

    await page.getByRole('button', { name: 'New order' }).click();
    const dialog = page.getByRole('dialog', { name: 'New order' });
    await dialog.getByLabel('Order ID').fill('ORD-E2E-1');
    await dialog.getByLabel('Customer name').fill('Blue Cafe');
    await dialog.getByLabel('Customer ID').fill('CUST-42');
    await dialog.getByLabel('SKU').fill('WIDGET-1');
    await dialog.getByLabel('Quantity').fill('3');
    await dialog.getByLabel(/Unit price/).fill('19.99');
    // Client-side validation with the domain schema: a bad price is caught before anything is sent.
    await dialog.getByLabel(/Unit price/).fill('19.999');
    await dialog.getByRole('button', { name: 'Create order' }).click();
    await expect.poll(() => dialog.getByText(/USD amounts have at most 2 decimal places/).count()).toBe(1);
    await dialog.getByLabel(/Unit price/).fill('19.99');
    await expect.poll(() => dialog.getByTestId('order-total').textContent()).toMatch(/USD\s59\.97/);
    await shot('create-order');
    await dialog.getByRole('button', { name: 'Create order' }).click();

    await expect.poll(() => row('ORD-E2E-1').count()).toBe(1);
    await expect.poll(() => row('ORD-E2E-1').locator('[data-sync]').getAttribute('data-sync')).toBe('pending');
    await expect.poll(() => page.getByRole('heading', { name: 'ORD-E2E-1' }).count()).toBe(1);
    await shot('order-detail-pending');

    await page.goto(`${app.url}/#/sync`);
    await expect.poll(() => page.getByTestId('pending-count').textContent()).not.toBe('0');
    await expect.poll(() => page.getByTestId('sync-state').getAttribute('data-state'), { timeout: 15_000 }).toMatch(/offline|error/);
    await shot('sync-offline');

    await startCentral();
    await page.getByRole('button', { name: 'Sync now' }).click();
    await expect.poll(() => page.getByTestId('pending-count').textContent(), { timeout: 20_000 }).toBe('0');
    await page.goto(`${app.url}/#/orders/ORD-E2E-1`);
    await expect.poll(() => row('ORD-E2E-1').locator('[data-sync]').getAttribute('data-sync'), { timeout: 10_000 }).toBe('synced');
    await shot('orders-synced');
  });

  it('shows a change rejected because of another device in the conflict inbox, with its reason', async () => {
    // A second device gets the order from the server.
    const other = await openDevice({ dataDir: join(dir, 'device-2'), serverUrl, token: BOB_TOKEN, userId: 'bob', sync: FAST_SYNC });
    try {
      const h2 = createHandlers(other);
      await h2.syncNow({});
      await expect.poll(async () => (await h2.getOrder({ orderId: 'ORD-E2E-1' }))?.state.status, { timeout: 10_000 }).toBe('CREATED');

      // This device goes offline (settings point at a port with nothing on it) and records a payment.
      await page.goto(`${app.url}/#/settings`);
      await expect.poll(() => page.getByLabel('Server URL').inputValue()).toBe(serverUrl);
      await expect.poll(() => page.getByTestId('token-status').textContent()).toBe(`Access token saved for ${serverUrl}.`);
      // The saved token is never in the page: the field is empty, for a replacement only.
      expect(await page.getByLabel('Replace access token').inputValue()).toBe('');
      expect(await page.content()).not.toContain(TOKEN);
      await shot('settings');
      // A new server needs its token: the saved one is never sent anywhere else.
      const deadUrl = `http://127.0.0.1:${await freePort()}`;
      await page.getByLabel('Server URL').fill(deadUrl);
      await expect.poll(() => page.getByTestId('token-status').textContent()).toMatch(/never sent to another server/);
      await page.getByRole('button', { name: 'Save settings' }).click();
      await expect.poll(() => page.getByText(`Enter the access token for ${deadUrl}.`).count()).toBe(1);
      await shot('settings-new-server');
      await page.getByLabel('Access token').fill(TOKEN);
      await page.getByRole('button', { name: 'Save settings' }).click();
      await expect.poll(() => page.getByText(/^Saved\./).count()).toBe(1);
      await expect.poll(() => page.getByTestId('token-status').textContent()).toBe(`Access token saved for ${deadUrl}.`);

      await page.goto(`${app.url}/#/orders/ORD-E2E-1`);
      await page.getByLabel(/^Amount/).fill('59.97');
      await page.getByRole('button', { name: 'Record payment' }).click();
      await expect.poll(() => page.getByText(/Saved on this device/).count()).toBe(1);

      // Meanwhile bob cancels the order on his device, and it reaches the server first.
      const cancelled = await h2.execute({
        command: { type: 'CancelOrder', orderId: 'ORD-E2E-1', reason: 'customer called to cancel', cancelledAt: new Date().toISOString() },
      });
      expect(cancelled.ok).toBe(true);
      const afterPush = await h2.syncNow({});
      expect(afterPush.pendingCount).toBe(0);

      // Back online: the payment is re-decided against the cancelled order and rejected.
      await page.goto(`${app.url}/#/settings`);
      await page.getByLabel('Server URL').fill(serverUrl);
      await page.getByLabel('Access token').fill(TOKEN);
      await page.getByRole('button', { name: 'Save settings' }).click();
      await expect.poll(() => page.getByText(/^Saved\./).count()).toBe(1);
      await syncNow();
      const inbox = page.getByTestId('conflict-list');
      await expect.poll(() => inbox.getByTestId('conflict-reason').first().textContent(), { timeout: 20_000 }).toMatch(/cancelled/);
      const text = (await inbox.textContent()) ?? '';
      expect(text).toContain('Record payment');
      expect(text).toContain('ORD-E2E-1');
      expect(text).toMatch(/What changed on the server first/);
      expect(text).toContain('bob');
      await shot('conflict-inbox');
    } finally {
      await other.close();
    }
  });

  it('time travel shows the order as it was at an older version', async () => {
    await page.goto(`${app.url}/#/orders/ORD-E2E-1`);
    const detail = page.locator('.detail');
    await expect.poll(() => detail.locator('.detail-badges .badge.fulfilment-cancelled').count(), { timeout: 10_000 }).toBe(1);
    const slider = page.getByLabel(/As of version/);
    await expect.poll(() => page.getByTestId('tt-version').textContent()).toBe('2');
    await slider.focus();
    await page.keyboard.press('Home');
    await expect.poll(() => page.getByTestId('tt-version').textContent()).toBe('1');
    await expect.poll(async () => page.getByTestId('tt-state').locator('.badge').allTextContents()).toEqual(['Unpaid', 'Open']);
    await page.getByRole('heading', { name: 'Time travel' }).evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await shot('order-detail-time-travel');
    // The audit trail: who, where and how each change was made.
    const timeline = page.getByRole('list', { name: 'Event timeline' });
    await expect.poll(() => timeline.locator('li').count()).toBeGreaterThanOrEqual(2);
    const history = (await timeline.textContent()) ?? '';
    expect(history).toContain('Order created');
    expect(history).toContain('customer called to cancel');
    expect(history).toContain('bob');
    await timeline.evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await shot('order-history');
  });

  it('does not offer retry-as-new for a payment on a cancelled order (it says why); dismiss empties the inbox', async () => {
    await page.goto(`${app.url}/#/sync`);
    const card = page.getByTestId('conflict-list').locator('article').first();
    await expect.poll(() => card.getByTestId('retry-impossible').textContent()).toMatch(/Retrying would be refused too: .*was cancelled/);
    expect(await card.getByRole('button', { name: 'Retry as new' }).count()).toBe(0);
    const rejectedAt = await card.locator('p.small').first().textContent();
    await card.getByRole('button', { name: 'Dismiss' }).click();
    await expect.poll(() => page.getByText('No conflicts').count(), { timeout: 10_000 }).toBe(1);
    await page.getByLabel('Show dismissed').check();
    await expect.poll(() => page.getByTestId('conflict-list').locator('article').count()).toBeGreaterThanOrEqual(1);
    // Dismissing did not rewrite when it was rejected.
    expect(await page.getByTestId('conflict-list').locator('article p.small').first().textContent()).toBe(`${rejectedAt ?? ''} · dismissed`);
  });

  it('rebuilds projections with progress and reports no drift', async () => {
    await page.goto(`${app.url}/#/settings`);
    await page.getByRole('button', { name: 'Rebuild projections' }).click();
    await expect.poll(() => page.getByText(/^Replayed \d+ events in/).count(), { timeout: 30_000 }).toBe(1);
    await page.getByRole('button', { name: 'Run drift check' }).click();
    const results = page.locator('.admin-block table');
    await expect.poll(() => results.locator('tbody tr').count(), { timeout: 30_000 }).toBeGreaterThan(0);
    const cells = await results.locator('tbody td:last-child').allTextContents();
    expect(cells.every((c) => c === 'No drift')).toBe(true);
    // Read models by their names for people, and what "rows" means when it exceeds the orders.
    expect(await results.locator('tbody td:first-child').allTextContents()).toEqual(expect.arrayContaining(['Order list and daily totals', 'Customer history']));
    expect(await results.locator('thead').textContent()).toContain('Rows compared');
    expect(await page.locator('.admin-block').last().textContent()).toMatch(/can exceed the number of orders/);
    await shot('settings-admin');
  });

  it('a page on another origin cannot call the app, even from another port on 127.0.0.1 (same site, cookie sent)', async () => {
    const before = { settings: await createHandlers(device).getSettings({}), orders: (await device.queries.listOrders({})).total };
    const statuses: number[] = [];
    const onResponse = (r: { url(): string; status(): number }) => {
      if (r.url().startsWith(`${app.url}/rpc/`)) statuses.push(r.status());
    };
    const attack = `
      const target = ${JSON.stringify(app.url)};
      const results = [];
      const order = JSON.stringify({ command: { type: 'CreateOrder', orderId: 'ORD-EVIL', customerId: 'C-EVIL', items: [{ sku: 'X', quantity: 1, unitPrice: 1 }] } });
      const settings = JSON.stringify({ serverUrl: 'http://attacker.example', token: 'stolen', userId: 'mallory' });
      for (const [method, body] of [['execute', order], ['saveSettings', settings], ['rebuildProjections', ''], ['getSettings', '{}']]) {
        // A "simple" request needs no preflight: text/plain (or no body), credentials included.
        try { await fetch(target + '/rpc/' + method, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body }); results.push('sent'); } catch (e) { results.push('blocked'); }
        // With the JSON type the browser must ask first; the app sends no CORS headers, so it never goes.
        try { const r = await fetch(target + '/rpc/' + method, { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: body || '{}' }); results.push('read:' + (await r.text())); } catch (e) { results.push('blocked'); }
      }
      document.title = 'done:' + JSON.stringify(results);
    `;
    const evil = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><title>evil</title><script type="module">${attack}</script>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    const evilPort = (evil.address() as { port: number }).port;
    const attacker = await context.newPage();
    attacker.on('response', onResponse);
    try {
      for (const origin of [`http://127.0.0.1:${evilPort}`, `http://localhost:${evilPort}`]) {
        await attacker.goto(`${origin}/`);
        await expect.poll(() => attacker.title(), { timeout: 15_000 }).toMatch(/^done:/);
        const results = JSON.parse((await attacker.title()).slice(5)) as string[];
        expect(results.filter((r) => r.startsWith('read:')), origin).toEqual([]);
      }
    } finally {
      await attacker.close();
      await new Promise((r) => (evil as Server).close(r));
    }
    // Every request that reached the app was refused; nothing changed.
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 401 || s === 403 || s === 415), JSON.stringify(statuses)).toBe(true);
    expect({ settings: await createHandlers(device).getSettings({}), orders: (await device.queries.listOrders({})).total }).toEqual(before);
    expect(pageErrors).toEqual([]);
  });

  it('lists an event this app cannot read on the sync screen and marks its order as needing attention', async () => {
    // A newer app version wrote OrderShipped v9 on a new order (here: straight into the server's database).
    const bob = await openDevice({ dataDir: join(dir, 'device-3'), serverUrl, token: BOB_TOKEN, userId: 'bob', sync: FAST_SYNC });
    try {
      const created = await createHandlers(bob).execute({ command: { type: 'CreateOrder', orderId: 'ORD-E2E-Q', customerId: 'CUST-7', items: [{ sku: 'W', quantity: 1, unitPrice: 500 }], currency: 'USD' } });
      expect(created.ok).toBe(true);
      expect((await createHandlers(bob).syncNow({})).pendingCount).toBe(0);
    } finally {
      await bob.close();
    }
    const db = new Database(join(dir, 'server.sqlite'));
    try {
      const head = db.prepare('SELECT version, last_hash FROM streams WHERE aggregate_id = ?').get('ORD-E2E-Q') as { version: number; last_hash: string };
      const e = { eventId: uuidv7(), streamId: 'ORD-E2E-Q', streamVersion: head.version + 1, eventType: 'OrderShipped', schemaVersion: 9, recordedAt: new Date().toISOString() };
      const data = { shipmentId: 'SH-9', shippedAt: e.recordedAt };
      const metadata = { tenantId: 'e2e' };
      const hash = chainHash(head.last_hash, e, canonicalJson(data), canonicalJson(metadata));
      db.prepare(
        'INSERT INTO events (event_id, tenant_id, aggregate_id, aggregate_type, event_type, schema_version, event_data, metadata, version, created_at, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ).run(e.eventId, 'e2e', e.streamId, 'Order', e.eventType, e.schemaVersion, canonicalJson(data), canonicalJson(metadata), e.streamVersion, e.recordedAt, hash);
      db.prepare('UPDATE streams SET version = ?, last_hash = ? WHERE aggregate_id = ?').run(e.streamVersion, hash, e.streamId);
    } finally {
      db.close();
    }
    await syncNow();
    const list = page.getByTestId('quarantine-list');
    await expect.poll(() => list.textContent(), { timeout: 20_000 }).toMatch(/written by a newer version of the app .* update the app/);
    expect(await list.textContent()).toContain('ORD-E2E-Q');
    await expect.poll(() => page.getByTestId('quarantined-count').textContent()).toBe('1');
    // Not "Synced" in green while a change waits for an update of the app.
    await expect.poll(() => page.getByTestId('sync-indicator').textContent()).toMatch(/1 change kept aside/);
    await expect.poll(() => page.getByTestId('sync-state').getAttribute('data-state')).toBe('idle');
    await shot('sync-quarantine');
    await page.goto(`${app.url}/#/orders/ORD-E2E-Q`);
    await expect.poll(() => row('ORD-E2E-Q').locator('[data-sync]').getAttribute('data-sync'), { timeout: 10_000 }).toBe('attention');
    await expect.poll(() => page.locator('.detail-badges [data-sync]').getAttribute('data-sync')).toBe('attention');
  });

  it('renders cleanly in dark mode with no script or CSP errors', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${app.url}/#/orders/ORD-E2E-1`);
    await expect.poll(() => row('ORD-E2E-1').count()).toBe(1);
    await shot('orders-dark');
    const bg = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    expect(bg).not.toBe('rgb(246, 247, 249)');
    expect(pageErrors).toEqual([]);
  });
});
