import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { BootstrapBuilder } from '../../src/app/bootstrap-builder.js';
import { Device } from '../../src/app/device.js';
import { DEVICE_LOCAL_TABLES, publishBootstrap } from '../../src/app/device-bootstrap.js';
import { bootstrapFile, CURRENT_MANIFEST, tenantFolder } from '../../src/protocol/bootstrap-layout.js';
import { defaultProjections, ProjectionRunner } from '../../src/projections/index.js';
import { startServer, type BackendOptions, type StartedServer } from '../../src/server/index.js';
import { openLocalStore, replicaTables, type LocalStore } from '../../src/store/index.js';
import { SyncHttpClient } from '../../src/sync/http-client.js';
import { Outbox } from '../../src/sync/outbox.js';
import { createPendingSource } from '../../src/sync/pending-source.js';
import { SyncEngine } from '../../src/sync/sync-engine.js';
import type { OrderCommandInput } from '../../src/domain/commands.js';
import { tempDir } from '../helpers/tmp.js';
import { TENANT, cancel, createOrder, openDevice, pay, reserve, ship, tokenOf } from './helpers.js';

const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
// The tsx loader inside one node process (the tsx CLI would run the script in a grandchild).
const TSX_LOADER = new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url).href;
const CLI = new URL('../../src/cli/bootstrap.ts', import.meta.url).pathname;
const tmp = tempDir('bootstrap-');
afterAll(() => tmp.cleanup());
const sub = (name: string) => {
  mkdirSync(tmp.file(name), { recursive: true });
  return tmp.file(name);
};

async function startBootstrapServer(backend: BackendOptions, dir: string): Promise<StartedServer> {
  return startServer({
    ...backend,
    tokens: [
      ...['alice', 'bob', 'carol', 'dave', 'erin'].map((u) => ({ token: tokenOf(u), tenant: TENANT, user: u, roles: ['device' as const] })),
      { token: tokenOf('mallory'), tenant: 'other', user: 'mallory', roles: ['device' as const] },
    ],
    bootstrapDir: dir,
    port: 0,
  });
}

/** The server's history, written by a device: orders of several events, one cancelled. */
async function seed(serverUrl: string, name: string, from: number, to: number): Promise<void> {
  const seeder = openDevice(tmp.file(`${name}.sqlite`), 'alice', serverUrl);
  try {
    for (let i = from; i < to; i++) {
      const id = `O-${i}`;
      expect(seeder.submit({ ...createOrder(id, 1000 + i), customerId: `cust-${i % 3}` } as OrderCommandInput).ok).toBe(true);
      if (i % 2 === 0) expect(seeder.submit(pay(id, `P-${i}`, 1000 + i)).ok).toBe(true);
      if (i % 3 === 0) expect(seeder.submit(reserve(id, `R-${i}`)).ok).toBe(true);
      if (i % 6 === 0) expect(seeder.submit(ship(id, `S-${i}`)).ok).toBe(true);
      if (i % 10 === 9) expect(seeder.submit(cancel(id)).ok).toBe(true);
    }
    const report = await seeder.engine.syncOnce();
    expect(report.pending).toBe(0);
  } finally {
    seeder.close();
  }
}

/** A device as a user opens it (src/app), syncing by hand. */
async function newAppDevice(name: string, serverUrl: string, user: string): Promise<Device> {
  const device = await Device.open({ dataDir: sub(name), serverUrl, token: tokenOf(user), userId: user, autoSync: false, durability: 'normal' });
  device.engine.setClient(new SyncHttpClient({ baseUrl: serverUrl, token: tokenOf(user), timeoutMs: 10_000 }));
  return device;
}

/** A device wired without a bootstrap: it pulls everything (the reference). */
async function pullingDevice(name: string, serverUrl: string): Promise<{ store: LocalStore; engine: SyncEngine; close: () => void }> {
  const store = openLocalStore(tmp.file(`${name}.sqlite`), { durability: 'normal' });
  const runner = new ProjectionRunner(store.log, defaultProjections());
  const outbox = new Outbox(store, { deviceId: `dev-${name}`, onOrdersChanged: (ids) => runner.refreshOrders(ids) });
  runner.setPendingSource(createPendingSource(outbox));
  await runner.open();
  const engine = new SyncEngine({ store, outbox, client: new SyncHttpClient({ baseUrl: serverUrl, token: tokenOf('dave'), timeoutMs: 10_000 }) });
  return { store, engine, close: () => (runner.close(), store.close()) };
}

/** Every replicated table's rows, in a stable order. */
function replicated(db: Database.Database): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const t of replicaTables(db, DEVICE_LOCAL_TABLES)) {
    if (t.name === 'projection_checkpoints') continue; // updated_at differs by when each device built its views
    out[t.name] = db
      .prepare(`SELECT * FROM "${t.name}"`)
      .all()
      .map((r) => JSON.stringify(r))
      .sort();
  }
  return out;
}

describe.each([
  ['SQLite', () => ({ backend: 'sqlite' as const, file: tmp.file(`server-${Date.now()}.sqlite`) }), async () => {}],
  [
    'PostgreSQL',
    () => ({ backend: 'pg' as const, connectionString: PG_URL, schema: pgSchema }),
    async () => {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${pgSchema}" CASCADE`);
      await client.end();
    },
  ],
])('a new device takes the bootstrap in, on %s', (_name, backend, cleanup) => {
  it('then pulls the rest, and holds exactly what a device that pulled everything holds', async () => {
    const dir = sub(`boot-${_name}`);
    const server = await startBootstrapServer(backend(), dir);
    try {
      await seed(server.url, `seed-${_name}`, 0, 40);
      const builder = await BootstrapBuilder.open({ serverUrl: server.url, token: tokenOf('carol'), dir, workDir: sub(`builder-${_name}`) });
      const manifest = await builder.round();
      await builder.close();
      expect(manifest).not.toBeNull();
      expect(manifest!.tenant).toBe(TENANT);
      // More events after the bootstrap was built: the new device pulls them after taking it in.
      await seed(server.url, `seed2-${_name}`, 40, 45);
      const total = (await server.repo.pull(TENANT, 0, 10_000)).events.length;
      expect(total).toBeGreaterThan(manifest!.events);

      const device = await newAppDevice(`new-${_name}`, server.url, 'bob');
      const reference = await pullingDevice(`reference-${_name}`, server.url);
      try {
        const deviceId = device.deviceId;
        const report = await device.engine.syncOnce();
        expect(report.bootstrap).toEqual({ used: true, events: manifest!.events, bytes: manifest!.bytes });
        expect(report.pulledEvents).toBe(total);
        const pulled = await reference.engine.syncOnce();
        expect(pulled.bootstrap).toBeUndefined();
        expect(pulled.pulledEvents).toBe(total);

        expect(replicated(device.store.db)).toEqual(replicated(reference.store.db));
        expect(device.store.log.headPosition()).toBe(total);
        // The device kept its own identity and settings; the downloaded file is gone.
        expect(device.deviceId).toBe(deviceId);
        expect(device.currentSettings().userId).toBe('bob');
        expect(readdirSync(sub(`new-${_name}`)).filter((n) => n.includes('bootstrap'))).toEqual([]);
        // Its views answer: the list, the search (its index is filled from the copied list), and a new command syncs.
        const page = device.queries.listOrdersNow({ status: 'ALL', sort: 'updatedAt', direction: 'desc', limit: 100, offset: 0 });
        expect(page.rows).toHaveLength(45);
        const found = device.queries.listOrdersNow({ status: 'ALL', sort: 'updatedAt', direction: 'desc', limit: 100, offset: 0, search: 'O-44' });
        expect(found.rows.map((r) => r.orderId)).toEqual(['O-44']);
        expect(device.outbox.submit(pay('O-1', 'P-late', 1), { userId: 'bob' }).ok).toBe(true);
        const after = await device.engine.syncOnce();
        expect(after.pushedEvents).toBe(1);
        expect(after.pending).toBe(0);
        expect(after.bootstrap).toBeUndefined();
      } finally {
        reference.close();
        await device.close();
      }
    } finally {
      await server.close();
      await cleanup();
    }
  });
});

const pgSchema = `bootstrap_test_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;

describe('what a bootstrap may not do', () => {
  const dir = sub('refusals');
  let server: StartedServer;
  let manifestText: string;
  let total: number;
  const manifestPath = () => join(tenantFolder(dir, TENANT), CURRENT_MANIFEST);
  const current = () => JSON.parse(readFileSync(manifestPath(), 'utf8')) as { id: string; bytes: number; schema: string; events: number };
  const get = (path: string, user = 'bob') => fetch(server.url + path, { headers: { authorization: `Bearer ${tokenOf(user)}` } });

  it('is built for the token’s own tenant and holds nothing of the builder’s own', async () => {
    server = await startBootstrapServer({ backend: 'sqlite', file: tmp.file('refusals-server.sqlite') }, dir);
    await seed(server.url, 'refusals-seed', 0, 20);
    total = (await server.repo.pull(TENANT, 0, 10_000)).events.length;
    const builder = await BootstrapBuilder.open({ serverUrl: server.url, token: tokenOf('carol'), dir, workDir: sub('refusals-builder'), every: 1 });
    const manifest = (await builder.round())!;
    // Nothing new: no second bootstrap.
    expect(await builder.round()).toBeNull();
    await builder.close();
    manifestText = readFileSync(manifestPath(), 'utf8');
    expect(manifest.events).toBe(total);
    expect(await (await get('/sync/session')).json()).toEqual({ tenant: TENANT, user: 'bob', roles: ['device'] });

    const file = new Database(bootstrapFile(tenantFolder(dir, TENANT), manifest.id), { readonly: true });
    try {
      for (const t of DEVICE_LOCAL_TABLES) expect(file.prepare(`SELECT COUNT(*) FROM "${t}"`).pluck().get(), t).toBe(0);
      expect(file.prepare('SELECT COUNT(*) FROM events').pluck().get()).toBe(total);
      expect(file.pragma('journal_mode', { simple: true })).toBe('delete');
    } finally {
      file.close();
    }
  });

  it('classifies every table of a device’s file: replicated, or the device’s own', async () => {
    const device = await Device.open({ dataDir: sub('classify'), autoSync: false });
    try {
      const all = (device.store.db.prepare('PRAGMA main.table_list').all() as { name: string; type: string }[])
        .filter((t) => (t.type === 'table' || t.type === 'virtual') && !t.name.startsWith('sqlite_'))
        .map((t) => t.name)
        .sort();
      const replicatedNames = replicaTables(device.store.db, DEVICE_LOCAL_TABLES).map((t) => t.name);
      for (const t of DEVICE_LOCAL_TABLES) expect(all, `${t} is a table of the device's file`).toContain(t);
      expect([...replicatedNames, ...DEVICE_LOCAL_TABLES].sort()).toEqual(all);
      // The log, its server coordinates and the views travel; the outbox and the checkpoint do not.
      expect(replicatedNames).toEqual(expect.arrayContaining(['events', 'sync_event_positions', 'quarantined_events', 'order_list', 'order_list__search', 'projection_checkpoints']));
    } finally {
      await device.close();
    }
  });

  it('is only served to its tenant, and only by its id', async () => {
    const { id } = current();
    expect(await (await get('/sync/bootstrap', 'mallory')).json()).toEqual({ bootstrap: null });
    expect((await get(`/sync/bootstrap/${id}`, 'mallory')).status).toBe(404);
    expect((await get('/sync/bootstrap/../../server.sqlite')).status).toBe(404);
    expect((await get('/sync/bootstrap/not-an-id')).status).toBe(400);
    const ok = await get(`/sync/bootstrap/${id}`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('application/vnd.sqlite3');
    expect((await ok.arrayBuffer()).byteLength).toBe(current().bytes);
  });

  it('is taken by a device that holds only commands it has not sent: their orders stay on its list as pending, then sync', async () => {
    const device = await newAppDevice('offline-first', server.url, 'bob');
    try {
      expect(device.outbox.submit(createOrder('OFFLINE-1', 500), { userId: 'bob' }).ok).toBe(true);
      expect(device.outbox.submit(pay('OFFLINE-1', 'P-offline', 200), { userId: 'bob' }).ok).toBe(true);
      const list = () => device.queries.listOrdersNow({ status: 'ALL', sort: 'updatedAt', direction: 'desc', limit: 100, offset: 0 });
      // A pull alone: the bootstrap comes in, the commands stay unsent and their order keeps its overlay.
      const pulled = await device.engine.pull();
      expect(pulled.bootstrap).toEqual({ used: true, events: current().events, bytes: current().bytes });
      expect(pulled.pending).toBe(2);
      expect(device.store.log.headPosition()).toBe(total);
      const before = list();
      // The bootstrap's 20 orders and its own.
      expect(before.total).toBe(21);
      expect(before.rows.find((r) => r.orderId === 'OFFLINE-1')).toMatchObject({ sync: 'pending', paidAmount: 200, customerId: 'cust-1' });

      const report = await device.engine.syncOnce();
      expect(report.bootstrap).toBeUndefined();
      expect(report.pushedEvents).toBe(2);
      expect(report.pending).toBe(0);
      // Its own events come back after the bootstrap's cursor.
      expect(report.pulledEvents).toBe(2);
      expect(device.store.log.headPosition()).toBe(total + 2);
      expect(list().rows.find((r) => r.orderId === 'OFFLINE-1')).toMatchObject({ sync: 'synced', paidAmount: 200 });
      total += 2;
    } finally {
      await device.close();
    }
  });

  it('is taken before a first sync pushes, so a device that worked offline gets it in one sync', async () => {
    const device = await newAppDevice('offline-one-sync', server.url, 'bob');
    try {
      expect(device.outbox.submit(createOrder('OFFLINE-2', 700), { userId: 'bob' }).ok).toBe(true);
      const report = await device.engine.syncOnce();
      expect(report.bootstrap).toEqual({ used: true, events: current().events, bytes: current().bytes });
      expect(report.pushedEvents).toBe(1);
      expect(report.pending).toBe(0);
      // The bootstrap's events, the ones appended since (OFFLINE-1's) and its own.
      expect(report.pulledEvents).toBe(total + 1);
      expect(device.store.log.headPosition()).toBe(total + 1);
      total += 1;
    } finally {
      await device.close();
    }
  });

  it('is not taken by a device that holds something (a command it has sent): it pulls, and its order comes back', async () => {
    const device = await newAppDevice('holds-a-command', server.url, 'bob');
    try {
      expect(device.outbox.submit(createOrder('OFFLINE-3', 500), { userId: 'bob' }).ok).toBe(true);
      expect((await device.engine.push()).pending).toBe(0);
      const report = await device.engine.syncOnce();
      expect(report.bootstrap).toBeUndefined();
      // Its own order comes back with the server's events.
      expect(report.pulledEvents).toBe(total + 1);
      expect(report.pending).toBe(0);
      expect(device.store.log.headPosition()).toBe(total + 1);
      total += 1;
    } finally {
      await device.close();
    }
  });

  it('of another schema is not downloaded: the device pulls', async () => {
    writeFileSync(manifestPath(), JSON.stringify({ ...JSON.parse(manifestText), schema: 'f'.repeat(64) }));
    const device = await newAppDevice('other-schema', server.url, 'bob');
    try {
      const report = await device.engine.syncOnce();
      expect(report.bootstrap).toBeUndefined();
      expect(report.pulledEvents).toBe(total);
    } finally {
      await device.close();
      writeFileSync(manifestPath(), manifestText);
    }
  });

  it('that arrives altered changes nothing: the device says why and pulls', async () => {
    const { id, bytes } = current();
    const path = bootstrapFile(tenantFolder(dir, TENANT), id);
    const original = readFileSync(path);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('altered'), 0, 7, Math.floor(bytes / 2));
    closeSync(fd);
    const device = await newAppDevice('altered', server.url, 'bob');
    const client = new SyncHttpClient({ baseUrl: server.url, token: tokenOf('bob'), timeoutMs: 10_000 });
    let downloads = 0;
    const download = client.downloadBootstrap.bind(client);
    client.downloadBootstrap = (...args) => (downloads++, download(...args));
    device.engine.setClient(client);
    try {
      const report = await device.engine.syncOnce();
      expect(report.bootstrap).toMatchObject({ used: false, reason: expect.stringMatching(/SHA-256/) });
      // Tried once per sync, not again by the sync's pull.
      expect(downloads).toBe(1);
      expect(report.pulledEvents).toBe(total);
      expect(device.store.log.headPosition()).toBe(total);
      expect(readdirSync(sub('altered')).filter((n) => n.includes('bootstrap'))).toEqual([]);
    } finally {
      await device.close();
      writeFileSync(path, original);
    }
  });

  it('that is not a database, though its manifest matches it, changes nothing: the device pulls', async () => {
    const junk = Buffer.alloc(64 * 1024, 7);
    const id = (await import('node:crypto')).createHash('sha256').update(junk).digest('hex');
    writeFileSync(bootstrapFile(tenantFolder(dir, TENANT), id), junk);
    writeFileSync(manifestPath(), JSON.stringify({ ...JSON.parse(manifestText), id, bytes: junk.length }));
    const device = await newAppDevice('junk', server.url, 'bob');
    try {
      const report = await device.engine.syncOnce();
      expect(report.bootstrap).toMatchObject({ used: false, reason: expect.stringMatching(/not a readable database|cannot be opened|damaged/) });
      expect(report.pulledEvents).toBe(total);
      // The views were re-read after the refused import: the list is whole.
      const orders = new Set((await server.repo.pull(TENANT, 0, 10_000)).events.map((e) => e.streamId)).size;
      expect(device.queries.listOrdersNow({ status: 'ALL', sort: 'updatedAt', direction: 'desc', limit: 100, offset: 0 }).rows).toHaveLength(orders);
    } finally {
      await device.close();
      writeFileSync(manifestPath(), manifestText);
      await server.close();
    }
  });
});

describe('the builder', () => {
  it('keeps the current bootstrap and the one before (for downloads under way), and clears what a crashed build left', async () => {
    const dir = sub('builder-keeps');
    const server = await startBootstrapServer({ backend: 'sqlite', file: tmp.file('keeps-server.sqlite') }, dir);
    const builder = await BootstrapBuilder.open({ serverUrl: server.url, token: tokenOf('carol'), dir, workDir: sub('keeps-builder'), every: 5 });
    try {
      const folder = tenantFolder(dir, TENANT);
      const ids: string[] = [];
      for (let round = 0; round < 3; round++) {
        await seed(server.url, `keeps-seed-${round}`, round * 5, round * 5 + 5);
        ids.push((await builder.round())!.id);
      }
      // Fewer new events than `every`: none is due.
      await seed(server.url, 'keeps-seed-small', 100, 101);
      expect(await builder.round()).toBeNull();
      const stale = join(folder, '.building-1-1.sqlite');
      writeFileSync(stale, 'left by a crash');
      utimesSync(stale, new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000));
      await seed(server.url, 'keeps-seed-more', 101, 106);
      ids.push((await builder.round())!.id);
      const files = readdirSync(folder).filter((n) => n.endsWith('.sqlite'));
      expect(files.sort()).toEqual([`${ids[2]}.sqlite`, `${ids[3]}.sqlite`].sort());
      expect(JSON.parse(readFileSync(join(folder, CURRENT_MANIFEST), 'utf8')).id).toBe(ids[3]);
    } finally {
      await builder.close();
      await server.close();
    }
  });

  it('refuses to write a bootstrap from a device that dropped events under retention or follows a scope', async () => {
    const dir = sub('refuse-builder');
    const device = await Device.open({ dataDir: sub('refuse-builder-device'), autoSync: false });
    try {
      device.engine.setScope({ mode: 'scoped', customers: ['cust-1'], recentDays: null, streams: [] });
      await expect(publishBootstrap({ store: device.store, engine: device.engine, tenant: TENANT, dir })).rejects.toThrow(/whole tenant/);
      device.engine.setScope({ mode: 'all' });
      device.store.db
        .prepare("INSERT INTO evicted_streams (stream_id, stream_type, version, reducer_version, state, events_dropped, evicted_at) VALUES ('O-1', 'Order', 3, 1, '{}', 3, '2026-01-01T00:00:00.000Z')")
        .run();
      await expect(publishBootstrap({ store: device.store, engine: device.engine, tenant: TENANT, dir })).rejects.toThrow(/keeps every event/);
      expect(existsSync(tenantFolder(dir, TENANT))).toBe(false);
    } finally {
      await device.close();
    }
  });

  it('runs as `npm run bootstrap -- --once` against a real server, and explains a missing setting', async () => {
    const dir = sub('cli');
    const server = await startBootstrapServer({ backend: 'sqlite', file: tmp.file('cli-server.sqlite') }, dir);
    try {
      await seed(server.url, 'cli-seed', 0, 3);
      const run = (env: Record<string, string>) =>
        new Promise<{ code: number | null; out: string }>((resolve) => {
          const child = spawn(process.execPath, ['--import', TSX_LOADER, CLI, '--once'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          child.stdout.on('data', (d: Buffer) => (out += d.toString()));
          child.stderr.on('data', (d: Buffer) => (out += d.toString()));
          child.on('exit', (code) => resolve({ code, out }));
        });
      const missing = await run({ ORDERLOG_SERVER_URL: server.url, ORDERLOG_TOKEN: '', ORDERLOG_BOOTSTRAP_DIR: '' });
      expect(missing.code).toBe(1);
      expect(missing.out).toMatch(/set ORDERLOG_TOKEN, ORDERLOG_BOOTSTRAP_DIR/);
      const once = await run({ ORDERLOG_SERVER_URL: server.url, ORDERLOG_TOKEN: tokenOf('carol'), ORDERLOG_BOOTSTRAP_DIR: dir });
      expect(once.code, once.out).toBe(0);
      expect(once.out).toMatch(/bootstrap [0-9a-f]{12}: \d+ events/);
      const offered = await fetch(`${server.url}/sync/bootstrap`, { headers: { authorization: `Bearer ${tokenOf('bob')}` } });
      expect(((await offered.json()) as { bootstrap: { events: number } }).bootstrap.events).toBe((await server.repo.pull(TENANT, 0, 10_000)).events.length);
    } finally {
      await server.close();
    }
  }, 60_000);
});

