import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import type { EventRepository } from '../../../src/server/index.js';
import type { AppendCommand } from '../../../src/server/repository.js';
import { pgClient } from '../helpers.js';

export const ROOT = join(import.meta.dirname, '..', '..', '..');
export const NODE_ARGS = ['--import', 'tsx'];
export const SERVER_CLI = join(ROOT, 'src', 'server', 'cli.ts');
export const WORKER_CLI = join(ROOT, 'src', 'server', 'worker-cli.ts');
const NATS_SERVER = '/usr/sbin/nats-server';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A private nats-server with JetStream on a free port and its own store dir (the shared one at 4222 stays untouched). */
export interface PrivateNats {
  url: string;
  /** Kill it (SIGKILL: no clean shutdown) and start it again on the same port and store. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startNats(): Promise<PrivateNats> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'orderlog-nats-'));
  let child: ChildProcess | null = null;
  const launch = async (): Promise<void> => {
    const c = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    await new Promise<void>((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${log}`)), 20_000);
      const onData = (d: Buffer): void => {
        log += d.toString();
        if (log.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      c.stderr!.on('data', onData);
      c.stdout!.on('data', onData);
      c.on('exit', (code) => reject(new Error(`nats-server exited with ${code}:\n${log}`)));
    });
  };
  const kill = async (): Promise<void> => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.on('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    async restart() {
      await kill();
      await launch();
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Spawned {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<number | null>;
}

/** Start a CLI (node --import tsx) and resolve once its stdout matches `ready`. */
export function spawnCli(script: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<Spawned & { match: RegExpExecArray }> {
  const child = spawn(process.execPath, [...NODE_ARGS, script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let out = '';
  let err = '';
  const spawned: Spawned = {
    child,
    output: () => `${out}\n${err}`,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start:\n${out}\n${err}`)), 60_000);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ ...spawned, match: m });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}:\n${out}\n${err}`));
    });
  });
}

/** Poll `check` until it returns a value other than undefined (or throw with `what` after the time). */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const created = (orderId: string, total: number) => ({
  eventId: uuidv7(),
  eventType: 'OrderCreated',
  schemaVersion: 2,
  data: { orderId, customerId: 'cust-1', items: [{ sku: 'SKU-1', quantity: 1, unitPrice: total }], total, currency: 'USD' },
  metadata: { correlationId: `corr-${orderId}` },
});
const paid = (amount: number) => ({ eventId: uuidv7(), eventType: 'PaymentReceived', schemaVersion: 1, data: { paymentId: `P-${uuidv7().slice(-8)}`, amount }, metadata: {} });

/**
 * `orders` orders, each created and then paid in `payments` steps (one append per event, so each
 * stream has several versions), interleaved across orders and two tenants. Returns the events stored.
 */
export async function appendOrders(repo: EventRepository, opts: { orders: number; payments: number; prefix: string; tenants?: string[] }): Promise<number> {
  const tenants = opts.tenants ?? ['tenant-a', 'tenant-b'];
  let stored = 0;
  for (let step = 0; step <= opts.payments; step++) {
    const batch: Promise<unknown>[] = [];
    for (let i = 0; i < opts.orders; i++) {
      const tenantId = tenants[i % tenants.length]!;
      const streamId = `${opts.prefix}-${i}`;
      const cmd: AppendCommand =
        step === 0
          ? { tenantId, streamId, streamType: 'Order', expectedVersion: 'no_stream', events: [created(streamId, 100 * (opts.payments + 1))] }
          : { tenantId, streamId, streamType: 'Order', expectedVersion: step, events: [paid(100)] };
      batch.push(repo.append(cmd));
      if (batch.length >= 20) {
        await Promise.all(batch.splice(0));
      }
    }
    await Promise.all(batch);
    stored += opts.orders;
  }
  return stored;
}

/** The order read model of a schema, comparable across schemas (sorted, JSON state parsed). */
export async function readModel(schema: string): Promise<unknown[]> {
  const c = await pgClient(schema);
  try {
    const { rows } = await c.query(
      `SELECT tenant_id, order_id, customer_id, status, total::text, currency, item_count, version, last_event_id::text, last_position::text, state
       FROM order_projections ORDER BY tenant_id, order_id`,
    );
    return rows;
  } finally {
    await c.end();
  }
}

export async function dropSchemas(...schemas: string[]): Promise<void> {
  const c = await pgClient();
  try {
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  } finally {
    await c.end();
  }
}
