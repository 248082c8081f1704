import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import type { BackendOptions } from '../../src/server/index.js';
import type { TokenEntry } from '../../src/server/tokens.js';

export const PG_URL = process.env.ORDERLOG_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export const TOKENS: TokenEntry[] = [
  { token: 'device-token-tenant-a-0001', tenant: 'tenant-a', user: 'alice', roles: ['device'] },
  { token: 'admin-token-tenant-a-00001', tenant: 'tenant-a', user: 'root-a', roles: ['device', 'admin'] },
  { token: 'device-token-tenant-b-0001', tenant: 'tenant-b', user: 'bob', roles: ['device'] },
];
export const DEVICE_A = TOKENS[0]!.token;
export const ADMIN_A = TOKENS[1]!.token;
export const DEVICE_B = TOKENS[2]!.token;

/** Direct database access for tests that must go around the server (tampering, open transactions). */
export interface RawDb {
  /** Run a statement that changes rows; returns the number of rows changed. */
  exec(sql: string, params?: unknown[]): Promise<number>;
  close(): Promise<void>;
}

export interface TestBackend {
  opts: BackendOptions;
  raw(): Promise<RawDb>;
  cleanup(): Promise<void>;
}

export interface BackendFactory {
  name: 'sqlite' | 'pg';
  make(): Promise<TestBackend>;
}

export const sqliteFactory: BackendFactory = {
  name: 'sqlite',
  async make() {
    const dir = mkdtempSync(join(tmpdir(), 'orderlog-server-'));
    const file = join(dir, 'server.sqlite');
    return {
      opts: { backend: 'sqlite', file },
      async raw() {
        const db = new Database(file);
        db.pragma('busy_timeout = 5000');
        return {
          async exec(sql, params = []) {
            return db.prepare(sql).run(...(params as unknown[])).changes;
          },
          async close() {
            db.close();
          },
        };
      },
      async cleanup() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

export function randomSchema(): string {
  return `ol_test_${randomBytes(6).toString('hex')}`;
}

export async function pgClient(schema?: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: PG_URL, ...(schema ? { options: `-c search_path=${schema}` } : {}) });
  await client.connect();
  return client;
}

export const pgFactory: BackendFactory = {
  name: 'pg',
  async make() {
    const schema = randomSchema();
    return {
      opts: { backend: 'pg', connectionString: PG_URL, schema },
      async raw() {
        const c = await pgClient(schema);
        return {
          async exec(sql, params = []) {
            // pg uses $1.. placeholders; tests write "?" for both backends.
            let i = 0;
            const text = sql.replace(/\?/g, () => `$${++i}`);
            return (await c.query(text, params)).rowCount ?? 0;
          },
          async close() {
            await c.end();
          },
        };
      },
      async cleanup() {
        const c = await pgClient();
        try {
          await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        } finally {
          await c.end();
        }
      },
    };
  },
};

export const BACKENDS: BackendFactory[] = [sqliteFactory, pgFactory];

/** A small HTTP client bound to one server and token. */
export function client(url: string, token: string | null, headers: Record<string, string> = {}) {
  async function call(method: string, path: string, body?: unknown, extra: Record<string, string> = {}) {
    const res = await fetch(url + path, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
        ...extra,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return readResponse(res, await res.text());
  }
  return {
    /** Any request as given: no body unless one is passed, headers exactly as in `extra`. */
    call,
    get: (path: string, extra?: Record<string, string>) => call('GET', path, undefined, extra),
    post: (path: string, body?: unknown, extra?: Record<string, string>) => call('POST', path, body ?? {}, extra),
    put: (path: string, body?: unknown, extra?: Record<string, string>) => call('PUT', path, body ?? {}, extra),
  };
}

export function newEvent(eventType = 'NoteAdded', data: Record<string, unknown> = { text: 'hello' }, schemaVersion = 1) {
  return { eventId: uuidv7(), eventType, schemaVersion, data };
}

export function orderCreated(orderId: string, total = 1000) {
  return newEvent('OrderCreated', { orderId, customerId: 'cust-1', items: [{ sku: 'SKU-1', quantity: 1, unitPrice: total }], total, currency: 'USD' }, 2);
}

/** A response as tests read it: status, the body parsed as JSON (its text when it is not), headers. */
export function readResponse(res: Response, text: string) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary response bodies
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: res.status, body: json, headers: res.headers };
}

/** Run `npm run server -- <args>` as a child process (the real CLI) and collect its exit code and output. */
export function runServerCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', '..', 'src', 'server', 'cli.ts'), ...args], {
      env: { ...process.env, ORDERLOG_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
