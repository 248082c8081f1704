import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { bootstrapFile, CURRENT_MANIFEST, readCurrentManifest, StoredBootstrap, tenantFolder } from '../protocol/bootstrap-layout.js';
import { EventSchemas } from '../domain/events.js';
import { defaultProjections, type ProjectionRunner } from '../projections/index.js';
import { z } from 'zod';
import { exportReplica, importReplica, schemaFingerprint, type LocalStore } from '../store/index.js';
import type { BootstrapTarget } from '../sync/bootstrap.js';
import type { SyncEngine } from '../sync/index.js';

/**
 * Bootstraps (issue 17) on the device's side: what a device's file holds that is its own, taking
 * a bootstrap in, and writing one (the builder is a device that follows the server).
 */

/**
 * Tables that hold one device's own state: never in a bootstrap, never replaced by one. Every
 * other table of the device's file (the log, server coordinates, quarantine, snapshots, the
 * views and their checkpoints) is replicated. A test holds this list to the schema, so a new
 * table must be put on one side.
 */
export const DEVICE_LOCAL_TABLES: ReadonlySet<string> = new Set([
  // The outbox.
  'commands',
  'pending_events',
  // The pull checkpoint: a bootstrap's is its manifest's cursor.
  'sync_state',
  // Scope and retention.
  'kept_streams',
  'evicted_streams',
  // This app's settings and audit results.
  'device_settings',
  'audit_checks',
  // A rebuild under way on this device.
  'projection_rebuilds',
]);

/**
 * What a bootstrap must have been built with for this device to take it in as it is: the same
 * file schema, event contract (every event type's schema and version) and views (names and
 * versions). Its events are not checked again one by one (that is the pull's cost the bootstrap
 * saves): the builder, running this same contract, checked and quarantined them.
 */
export function deviceFingerprint(db: Database.Database): string {
  const contract = Object.entries(EventSchemas).map(([type, s]) => [type, s.version, z.toJSONSchema(s.schema as z.ZodType, { unrepresentable: 'any', io: 'input' })]);
  const views = defaultProjections().map((p) => [p.name, p.version]);
  return createHash('sha256').update(JSON.stringify({ schema: schemaFingerprint(db), contract, views })).digest('hex');
}

/** The device's side of a bootstrap: its file takes one in with the views detached, then re-reads them. */
export function deviceBootstrap(store: LocalStore, runner: ProjectionRunner, built?: () => void): BootstrapTarget {
  let fingerprint: string | null = null;
  return {
    fingerprint: () => (fingerprint ??= deviceFingerprint(store.db)),
    downloadPath: (id) => join(dirname(store.file), `bootstrap-${id}.download`),
    take: async (file, hooks) => {
      runner.close();
      try {
        return { events: importReplica(store.db, file, { exclude: DEVICE_LOCAL_TABLES, ...hooks }).rows.events ?? 0 };
      } finally {
        await runner.reload();
        // The copied views hold no overlay of this device's outbox: its unsent commands get theirs back.
        runner.refreshOrders(runner.pending?.overlaid?.() ?? []);
        built?.();
      }
    },
  };
}

/**
 * Write what this device holds as its tenant's bootstrap in the server's bootstrap directory:
 * the replica under its SHA-256, then the manifest, renamed into place (the server reads the old
 * one or the new one, never half of one). The device must follow the whole tenant, and be done
 * syncing: the cursor and the copy are read in one step, with nothing written in between.
 */
export async function publishBootstrap(opts: { store: LocalStore; engine: SyncEngine; tenant: string; dir: string; now?: Date }): Promise<StoredBootstrap> {
  const { store, engine } = opts;
  const cursor = engine.checkpoint();
  if (typeof cursor !== 'string' || engine.scope.filter() !== null) throw new Error('a bootstrap is built by a device that follows the whole tenant and pulls by cursor');
  // Retention drops closed orders' events and keeps their state in a table of the device's own: a copy would have gaps.
  if (store.orders.evicted.count() > 0) throw new Error('a bootstrap is built by a device that keeps every event (this one has dropped closed orders under retention)');
  const folder = tenantFolder(opts.dir, opts.tenant);
  mkdirSync(folder, { recursive: true });
  const building = join(folder, `.building-${process.pid}-${Date.now()}.sqlite`);
  try {
    const events = store.log.headPosition();
    const schema = deviceFingerprint(store.db);
    exportReplica(store.db, building, { exclude: DEVICE_LOCAL_TABLES, open: (file) => new Database(file) });
    const id = await sha256File(building);
    const bytes = statSync(building).size;
    renameSync(building, bootstrapFile(folder, id));
    const previous = readCurrentManifest(folder)?.id ?? null;
    const manifest: StoredBootstrap = StoredBootstrap.parse({ id, bytes, events, cursor, schema, builtAt: (opts.now ?? new Date()).toISOString(), tenant: opts.tenant });
    const next = join(folder, `.${CURRENT_MANIFEST}.${process.pid}`);
    writeFileSync(next, JSON.stringify(manifest, null, 2));
    renameSync(next, join(folder, CURRENT_MANIFEST));
    // The one before stays for downloads still under way.
    prune(folder, new Set([id, ...(previous ? [previous] : [])]));
    return manifest;
  } finally {
    rmSync(building, { force: true });
  }
}

/** A builder that crashed while writing left its file behind: gone after this long. */
const STALE_BUILD_MS = 60 * 60 * 1000;

function prune(folder: string, keep: ReadonlySet<string>): void {
  for (const name of readdirSync(folder)) {
    const m = /^([0-9a-f]{64})\.sqlite$/.exec(name);
    if (m && !keep.has(m[1]!)) rmSync(join(folder, name), { force: true });
    else if (name.startsWith('.building-') && Date.now() - statSync(join(folder, name)).mtimeMs > STALE_BUILD_MS) rmSync(join(folder, name), { force: true });
  }
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
