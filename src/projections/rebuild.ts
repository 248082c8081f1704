import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { upcastEvent } from '../store/event-log.js';
import { createContext, createTables, dropTables, relaxedDurability } from './context.js';
import { FoldWorkers, workerPlan, type Folding } from './worker-fill.js';
import type Database from 'better-sqlite3';
import type { StoredEvent } from '../protocol/envelope.js';
import type { EventPageReader } from './event-pages.js';
import type { ProjectionRegistry } from './registry.js';
import { RebuildAbortedError, type ApplyContext, type PendingSource, type RebuildProgress, type Registered, type TableDef } from './types.js';

/** What a rebuild reads of the runner whose projections it rebuilds; it changes none of it. */
export interface RebuildHost {
  readonly db: Database.Database;
  readonly log: { headPosition(): number };
  readonly registry: ProjectionRegistry;
  readonly pageReader: EventPageReader;
  readonly pending: PendingSource | null;
  entry(name: string): Registered;
  /** Orders whose overlay changed while a rebuild ran: the shadow recomputes them before the swap. */
  readonly refreshedDuringRebuild: ReadonlySet<string>;
}

export const REBUILD_PREFIX = '__rebuild_';

export interface RebuildOptions {
  /** Events per transaction (default 10000). */
  batchSize?: number;
  /** Order states (etc.) kept in memory per projection: bounds memory whatever the log length (default 10000). */
  cacheSize?: number;
  onProgress?: (p: RebuildProgress) => void;
  /** Minimum time between progress callbacks (default 250 ms; the final one always fires). */
  progressEveryMs?: number;
  /** Abort between batches: the shadow and its checkpoint stay, the next rebuild resumes. */
  signal?: AbortSignal;
  /**
   * Fold in worker threads while this one commits. 'auto' (the default): when the log is long
   * enough to pay for them, the database is a file and every projection is portable; this
   * thread folds until they are loaded, then hands them the rest. 'always': wait for them.
   */
  worker?: 'auto' | 'always' | 'never';
  /** Workers when the projections' streams fold apart (default: one per core). */
  workers?: number;
  /** 'auto' uses workers from this many events to replay (default `WORKER_MIN_EVENTS`). */
  workerMinEvents?: number;
}

export interface RebuildResult {
  projections: string[];
  /** Events applied by this run (a resumed rebuild counts only what it replayed). */
  eventsReplayed: number;
  durationMs: number;
  /** Log position the swapped-in view reflects. */
  position: number;
  /** Whether the events were folded in a worker thread (and if not, or not all, why). */
  folding: Folding;
  /** Whether a worker summarised the committed shadows for the derived tables (`summarizeBulk`) while the swap built the indexes. */
  summarized: boolean;
}

/** A projection being built into tables with a prefix. */
export interface Shadow {
  entry: Registered;
  ctx: ApplyContext;
  tables: TableDef[];
  position: number;
  /** Persist the shadow's checkpoint (blue/green rebuilds are resumable; drift checks are not). */
  persist: boolean;
}

/** Create (or, for a matching interrupted rebuild, reuse) the shadow tables of each projection. */
export function prepareShadows(
  runner: RebuildHost,
  names: readonly string[],
  prefix: string,
  persist: boolean,
  cacheSize: number,
): Shadow[] {
  const head = runner.log.headPosition();
  return runner.db.transaction(() =>
    names.map((name) => {
      const entry = runner.entry(name);
      const p = entry.projection;
      const tables = p.tables(prefix);
      const ctx = createContext(runner.db, { prefix, cacheSize, pending: () => runner.pending, bulk: true });
      const previous = persist ? runner.registry.rebuild(name) : undefined;
      const exists = (t: string) =>
        runner.db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(t) !== undefined;
      if (previous && previous.version === p.version && previous.prefix === prefix && tables.every((t) => exists(t.name))) {
        return { entry, ctx, tables, position: previous.position, persist };
      }
      dropTables(
        runner.db,
        tables.map((t) => t.name),
      );
      createTables(runner.db, tables, false);
      if (persist) runner.registry.startRebuild(name, p.version, prefix, head);
      return { entry, ctx, tables, position: 0, persist };
    }),
  ).immediate();
}

/** Apply one page of the log to every shadow that has not seen it; returns the page length. */
function applyPage(runner: RebuildHost, shadows: Shadow[], limit: number, total: number): number {
  const from = Math.min(...shadows.map((s) => s.position));
  const page = runner.pageReader.page(from, limit);
  if (page.length === 0) return 0;
  applyEvents(runner, shadows, page.map(upcastEvent), total);
  return page.length;
}

/** Apply upcast events (in log order, starting right after the earliest shadow's position) to every shadow that has not seen them. */
function applyEvents(runner: RebuildHost, shadows: Shadow[], events: readonly StoredEvent[], total: number): void {
  const from = Math.min(...shadows.map((s) => s.position));
  for (const s of shadows) {
    const fresh = s.position === from ? events : events.filter((e) => e.position > s.position);
    if (fresh.length === 0) continue;
    s.entry.projection.apply(s.ctx, fresh);
    s.position = fresh[fresh.length - 1]!.position;
    if (s.persist) runner.registry.advanceRebuild(s.entry.projection.name, s.position, total);
  }
}

/**
 * Stream the log into the shadows: keyset pages, one transaction per page, yielding to the
 * event loop between pages so the live view keeps serving reads and appends.
 */
export async function fillShadows(
  runner: RebuildHost,
  shadows: Shadow[],
  opts: RebuildOptions,
  label: string,
): Promise<{ replayed: number; folding: Folding; workers: FoldWorkers | null }> {
  const batchSize = opts.batchSize ?? 10_000;
  const every = opts.progressEveryMs ?? 250;
  const started = performance.now();
  const startPosition = Math.min(...shadows.map((s) => s.position));
  let lastReport = 0;
  let replayed = 0;
  const report = (finished: boolean) => {
    if (!opts.onProgress) return;
    const now = performance.now();
    if (!finished && now - lastReport < every) return;
    lastReport = now;
    const done = Math.min(...shadows.map((s) => s.position));
    const total = Math.max(runner.log.headPosition(), done);
    const elapsed = (now - started) / 1000;
    const ratePerSec = elapsed > 0 ? (done - startPosition) / elapsed : 0;
    const etaMs = finished ? 0 : ratePerSec > 0 ? Math.round(((total - done) / ratePerSec) * 1000) : null;
    opts.onProgress({ projection: label, done, total, ratePerSec: Math.round(ratePerSec), etaMs, finished });
  };
  const plan = workerPlan(runner, shadows, opts, opts.cacheSize ?? 10_000);
  const folding: Folding = { worker: false, note: typeof plan === 'string' ? plan : null };
  let workers = typeof plan === 'string' ? null : new FoldWorkers(plan);
  /** Workers that folded the log and are still up: the caller's swap may ask them for summaries, then terminates them. */
  let folded: FoldWorkers | null = null;
  try {
    for (;;) {
      if (opts.signal?.aborted) throw new RebuildAbortedError(`rebuild of ${label} aborted; it resumes from its checkpoint`);
      if (workers && opts.worker === 'always') await workers.settled();
      if (workers?.failure) {
        folding.note = workers.failure;
        await workers.terminate();
        workers = null;
      }
      if (workers?.ready) {
        folding.worker = true;
        const viaWorkers = await workers.fill(runner, shadows, opts, label, () => report(false));
        replayed += viaWorkers.replayed;
        folding.note = viaWorkers.failure;
        if (viaWorkers.failure === null) folded = workers;
        else await workers.terminate();
        workers = null;
        // The workers wrote rows this thread's caches hold older copies of.
        for (const s of shadows) s.ctx.cache.clear();
      }
      // On this thread: until the workers are loaded, then what they left (appended since, or after a failure).
      const total = runner.log.headPosition();
      const n = relaxedDurability(runner.db, () => runner.db.transaction(() => applyPage(runner, shadows, batchSize, total)).immediate());
      replayed += n;
      report(false);
      if (n < batchSize) break;
      await yieldToLoop();
    }
  } catch (err) {
    await folded?.terminate();
    throw err;
  } finally {
    await workers?.terminate();
  }
  if (typeof plan !== 'string' && !folding.worker && folding.note === null) folding.note = 'the log was folded before the workers were loaded';
  report(true);
  return { replayed, folding, workers: folded };
}

/** Inside the caller's transaction: apply whatever was appended since the last page. */
export function catchUpShadows(runner: RebuildHost, shadows: Shadow[], batchSize = 5000): number {
  let n = 0;
  for (;;) {
    const read = applyPage(runner, shadows, batchSize, runner.log.headPosition());
    n += read;
    if (read < batchSize) return n;
  }
}

/**
 * Give the shadow the overlay the live view shows: the same pending source applied to every
 * order that has pending events in either copy, or was refreshed while the rebuild ran.
 */
export function refreshShadowOverlay(runner: RebuildHost, shadow: Shadow): void {
  const p = shadow.entry.projection;
  if (!p.refresh || !p.pendingKeys) return;
  const keys = new Set<string>(runner.refreshedDuringRebuild);
  // Folded in a worker, the shadow has no overlay yet: every order the outbox overlays needs it.
  for (const k of runner.pending?.overlaid?.() ?? []) keys.add(k);
  for (const k of p.pendingKeys(shadow.ctx)) keys.add(k);
  try {
    for (const k of p.pendingKeys(shadow.entry.ctx)) keys.add(k);
  } catch {
    // The live tables were built by another version and may not have the overlay columns.
  }
  if (keys.size > 0) p.refresh(shadow.ctx, [...keys]);
}

/**
 * Make the shadow complete: catch up, give it the live overlay, then let the projection derive
 * the tables its bulk mode skipped. Inside the caller's transaction, before a diff (a swap does
 * the same steps, deriving those tables after the indexes, from a worker's summary if it can).
 */
export function completeShadows(runner: RebuildHost, shadows: Shadow[]): number {
  const n = bringShadowsToHead(runner, shadows);
  for (const s of shadows) s.entry.projection.finishBulk?.(s.ctx);
  return n;
}

/** Inside the caller's transaction: catch up, then give each shadow the live overlay; returns the events caught up. */
function bringShadowsToHead(runner: RebuildHost, shadows: Shadow[]): number {
  const n = catchUpShadows(runner, shadows);
  for (const s of shadows) refreshShadowOverlay(runner, s);
  return n;
}

/**
 * Blue/green rebuild: replay the whole log into shadow tables while the live view stays
 * readable (and keeps being updated inline), then, in ONE transaction, apply the events
 * appended meanwhile, drop the old tables, rename the shadows into place, build the indexes
 * and move the checkpoint. Readers see either the old view or the new one, never a mix.
 * A crash or abort leaves the old view intact; the next rebuild resumes from the shadow's
 * checkpoint (committed with each page).
 */
export async function rebuildProjections(runner: RebuildHost, names: readonly string[], opts: RebuildOptions = {}): Promise<RebuildResult> {
  return withRebuildCache(runner.db, () => rebuildInto(runner, names, opts));
}

/** Page cache while a rebuild runs (KiB): the shadows' pages and the swap's index builds stay in memory. */
const REBUILD_CACHE_KIB = 256 * 1024;

/**
 * Run a rebuild with a larger page cache on its connection, then give the previous size back.
 * With the default 2 MiB, each index build at the swap re-read the list rows from the
 * WAL and the upserts of a page re-read the rows they had just written (at 200k events the
 * swap's index builds took 145 ms instead of 89 ms). At 1M events (100k orders, a 110 MB list
 * while its rows still held the folded state)
 * 64 MiB still re-read part of it for each of the ten index builds: 256 MiB took the swap from
 * 2.6 to 1.95 s. It is a bound, not an allocation: a small log uses little of it.
 */
export async function withRebuildCache<T>(db: Database.Database, fn: () => Promise<T>): Promise<T> {
  const restore = enlargeCache(db);
  try {
    return await fn();
  } finally {
    restore();
  }
}

/** Give the connection the rebuild's page cache; returns what gives the previous size back. */
function enlargeCache(db: Database.Database): () => void {
  const previous = db.pragma('cache_size', { simple: true }) as number;
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const kib = previous < 0 ? -previous : (previous * pageSize) / 1024;
  if (kib >= REBUILD_CACHE_KIB) return () => {};
  db.pragma(`cache_size = ${-REBUILD_CACHE_KIB}`);
  return () => db.pragma(`cache_size = ${previous}`);
}

/** A rebuild whose shadows take the appends as they are written (`feedRebuild`). */
export interface FedRebuild {
  /** Stop the feed, apply from the log whatever it did not take, swap the shadows in. */
  finish(opts?: RebuildOptions): Promise<RebuildResult>;
}

/**
 * A rebuild fed by the appends that follow: the shadows are prepared now and take each appended
 * batch inside its append transaction, so a first sync folds the pages it has just parsed
 * instead of reading them back from the log at the end (that read was a fifth of building the
 * views). The shadows' checkpoints commit with each batch, so a crash resumes like any
 * interrupted rebuild. A batch that is not contiguous, or that a projection cannot apply, stops
 * the feed (the projections' part of that batch is rolled back to a savepoint, the append
 * stands); `finish` then resumes from the saved checkpoints by reading the log, as a rebuild
 * does, and reports a failing projection the same way.
 */
export function feedRebuild(
  runner: RebuildHost & { readonly log: { headPosition(): number; onAppend(hook: (events: readonly StoredEvent[]) => void): () => void } },
  names: readonly string[],
  cacheSize = 10_000,
): FedRebuild {
  const started = performance.now();
  let shadows = prepareShadows(runner, names, REBUILD_PREFIX, true, cacheSize);
  const restoreCache = enlargeCache(runner.db);
  let fed = 0;
  let stopped = false;
  const unsubscribe = runner.log.onAppend((events) => {
    const first = events[0];
    if (stopped || !first) return;
    if (shadows.some((s) => s.position !== first.position - 1)) {
      stopped = true;
      return;
    }
    try {
      runner.db.transaction(() => applyEvents(runner, shadows, events.map(upcastEvent), events[events.length - 1]!.position))();
      fed += events.length;
    } catch {
      // Rolled back to the savepoint: finish() replays from the saved checkpoints and reports it.
      stopped = true;
    }
  });
  return {
    finish: async (opts = {}) => {
      unsubscribe();
      try {
        // Stopped: the shadows' contexts may hold states of a rolled-back batch; start again from what was saved.
        if (stopped) shadows = prepareShadows(runner, names, REBUILD_PREFIX, true, cacheSize);
        return await fillAndSwap(runner, names, shadows, opts, started, fed);
      } finally {
        restoreCache();
      }
    },
  };
}

async function rebuildInto(runner: RebuildHost, names: readonly string[], opts: RebuildOptions): Promise<RebuildResult> {
  const started = performance.now();
  const shadows = prepareShadows(runner, names, REBUILD_PREFIX, true, opts.cacheSize ?? 10_000);
  return fillAndSwap(runner, names, shadows, opts, started, 0);
}

/**
 * Bring the shadows to the head, then swap them in (one transaction). When workers folded the
 * log, one of them summarises the committed shadows for `finishBulk` while this thread builds
 * the indexes (the summary was a third of the swap), and the swap adds what it changed since.
 */
async function fillAndSwap(
  runner: RebuildHost,
  names: readonly string[],
  shadows: Shadow[],
  opts: RebuildOptions,
  started: number,
  alreadyApplied: number,
): Promise<RebuildResult> {
  const label = names.join(',');
  const filled = await fillShadows(runner, shadows, opts, label);
  let replayed = alreadyApplied + filled.replayed;
  let position = 0;
  let summarizedByWorker = false;
  try {
    runner.db
      .transaction(() => {
        // What the swap changes after the fill's last commit: the worker's summaries leave it out.
        for (const s of shadows) s.ctx.changed = new Set();
        replayed += bringShadowsToHead(runner, shadows);
        const changed = shadows.map((s) => [...(s.ctx.changed ?? [])]);
        for (const s of shadows) delete s.ctx.changed;
        // A worker summarises the committed shadows while this thread swaps them in and builds their indexes.
        const summaries = filled.workers && shadows.some((s) => s.entry.projection.summarizeBulk) ? filled.workers.summarize(changed) : () => null;
        for (const s of shadows) {
          const p = s.entry.projection;
          const live = p.tables('');
          const registered = runner.registry.get(p.name);
          const old = new Set<string>([
            ...(registered ? (JSON.parse(registered.tables) as string[]) : []),
            ...live.flatMap((t) => [t.name, ...(t.companions ?? [])]),
          ]);
          dropTables(runner.db, [...old]);
          for (const t of s.tables) runner.db.exec(`ALTER TABLE "${t.name}" RENAME TO "${t.baseName}"`);
          createTables(runner.db, live, true);
        }
        const summarized = summaries();
        summarizedByWorker = summarized !== null;
        shadows.forEach((s, k) => {
          const p = s.entry.projection;
          // Over the tables now under their live names (a fresh context: no statement of the old ones).
          const summary = summarized?.[k];
          p.finishBulk?.(createContext(runner.db, { bulk: true }), summary === undefined ? undefined : { of: summary, changed: changed[k]! });
          runner.registry.put(
            p.name,
            p.version,
            s.position,
            p.tables('').map((t) => t.name),
          );
          runner.registry.resolveDeadLetters(p.name, s.position);
          runner.registry.endRebuild(p.name);
          position = Math.max(position, s.position);
        });
      })
      .immediate();
  } finally {
    // The new view is in place (or the swap failed): the workers' teardown (0.1-0.2 s after a
    // 1M rebuild) need not hold the caller.
    filled.workers?.release();
  }
  return {
    projections: [...names],
    eventsReplayed: replayed,
    durationMs: Math.round(performance.now() - started),
    position,
    folding: filled.folding,
    summarized: summarizedByWorker,
  };
}
