import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRenderer } from './build-renderer.js';

/**
 * `npm start -- --devices 2` as a person runs it (the real CLI in a child process, browser mode),
 * two browser profiles, one per device: another device's change shows without a manual sync, and
 * after the app restarts the open tabs carry on by themselves (no reload, no new address).
 */

const root = join(import.meta.dirname, '..', '..');

async function portsFree(...ports: number[]): Promise<boolean> {
  for (const port of ports) {
    const ok = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (!ok) return false;
  }
  return true;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

interface Running {
  child: ChildProcess;
  urls: string[];
  output: string[];
}

describe('npm start -- --devices 2 (real CLI, Chromium)', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let running: Running | null = null;
  let rendererDir: string;
  let browser: Browser;
  const pages: Page[] = [];
  const row = (page: Page, orderId: string) => page.locator(`[data-order-id="${orderId}"]`);

  const start = async (): Promise<Running> => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'start.ts'), '--devices', '2'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    const urls: string[] = [];
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) {
          if (!line) continue;
          output.push(line);
          const m = /^Device (\d) .*open (http:\/\/\S+)$/.exec(line);
          if (m) urls[Number(m[1]) - 1] = m[2]!;
          if (urls[0] && urls[1]) resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`npm start exited with ${code}:\n${output.join('\n')}`)));
    });
    await ready;
    return { child, urls, output };
  };
  const stop = async (r: Running) => {
    if (r.child.exitCode !== null) return;
    const exited = new Promise((resolve) => r.child.once('exit', resolve));
    r.child.kill('SIGTERM');
    await exited;
  };

  const createOrder = async (page: Page, customer: string) => {
    await page.getByRole('button', { name: 'New order' }).click();
    const dialog = page.getByRole('dialog', { name: 'New order' });
    const orderId = await dialog.getByLabel('Order ID').inputValue();
    await dialog.getByLabel('Customer name').fill(`Name of ${customer}`);
    await dialog.getByLabel('Customer ID').fill(customer);
    await dialog.getByLabel('SKU').fill('TEA-1');
    await dialog.getByLabel(/Unit price/).fill('4.20');
    await dialog.getByRole('button', { name: 'Create order' }).click();
    // The list re-queries after the change notification (coalesced); under load that exceeds poll's 1 s default.
    await expect.poll(() => row(page, orderId).count(), { timeout: 10_000 }).toBe(1);
    return orderId;
  };

  beforeAll(async () => {
    rendererDir = await buildRenderer();
    dir = mkdtempSync(join(tmpdir(), 'orderlog-start-'));
    let appPort = await freePort();
    for (let i = 0; i < 20 && !(await portsFree(appPort, appPort + 1)); i++) appPort = await freePort();
    env = {
      ...process.env,
      ORDERLOG_DATA: dir,
      ORDERLOG_PORT: String(await freePort()),
      ORDERLOG_APP_PORT: String(appPort),
      ORDERLOG_RENDERER_DIR: rendererDir,
      ORDERLOG_TOKENS: '',
      ORDERLOG_TOKENS_FILE: '',
    };
    running = await start();
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    // Two browser profiles: each device has its one browser.
    for (const url of running.urls) {
      const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
      const page = await context.newPage();
      await page.goto(url);
      await page.getByRole('heading', { name: 'Orders' }).waitFor();
      pages.push(page);
    }
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    if (running) await stop(running);
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (rendererDir) rmSync(rendererDir, { recursive: true, force: true });
  });

  it('prints one address per device, each a different person, and keeps the browser session private (0600, hashed)', () => {
    expect(running!.urls).toHaveLength(2);
    expect(running!.output.join('\n')).toMatch(/Device 1 \(dev\).*\n.*Device 2 \(dev-2\)/s);
    const mode = statSync(join(dir, 'device-1', 'browser-session.json')).mode & 0o777;
    expect(mode).toBe(0o600);
  });

  it("shows another device's new order without a manual sync", async () => {
    const [a, b] = pages as [Page, Page];
    const orderId = await createOrder(a, 'CUST-LIVE');
    // No click on b: its scheduler holds the server's long-poll and its page listens for changes.
    // (The periodic sync is 30 s; this waits at most 10.)
    await expect.poll(() => row(b, orderId).count(), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => row(b, orderId).locator('[data-sync]').getAttribute('data-sync')).toBe('synced');
  });

  it('"Work offline" holds changes on the device until turned off, survives a restart, and the open tabs reconnect by themselves', async () => {
    const [a, b] = pages as [Page, Page];
    await a.getByTestId('work-offline').first().getByRole('switch').check();
    await expect.poll(() => a.getByTestId('sync-indicator').getAttribute('data-state')).toBe('paused');
    const heldId = await createOrder(a, 'CUST-HELD');
    await expect.poll(() => row(a, heldId).locator('[data-sync]').getAttribute('data-sync')).toBe('pending');

    // Restart the whole app; nobody reloads or opens the new addresses.
    await stop(running!);
    running = await start();

    // b's tab is still signed in (its cookie outlived the restart) and its calls work again.
    await expect.poll(async () => (await b.getByRole('alert').allTextContents()).join(' '), { timeout: 20_000 }).not.toMatch(/not connected/);
    const afterId = await createOrder(b, 'CUST-AFTER');
    await expect.poll(() => row(b, afterId).locator('[data-sync]').getAttribute('data-sync'), { timeout: 10_000 }).toBe('synced');
    // "Work offline" was kept across the restart: a sent nothing, so b has not seen a's order.
    await expect.poll(() => a.getByTestId('sync-indicator').getAttribute('data-state'), { timeout: 20_000 }).toBe('paused');
    expect(await row(b, heldId).count()).toBe(0);

    // Back online: a syncs at once, both ways; a's list updates through its reconnected status stream.
    await a.getByTestId('work-offline').first().getByRole('switch').uncheck();
    await expect.poll(() => row(a, afterId).count(), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => row(b, heldId).count(), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => a.getByTestId('sync-indicator').getAttribute('data-state'), { timeout: 10_000 }).toBe('idle');
    await a.screenshot({ path: join(root, 'test-artifacts', 'screenshots', 'start-two-devices-after-restart.png') });
  });
});
