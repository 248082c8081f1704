import type Database from 'better-sqlite3';
import type { StoredEvent } from '../protocol/envelope.js';
import { upcastEvent, type EventLog } from '../store/event-log.js';
import { createContext, createTables } from './context.js';
import { EventPageReader } from './event-pages.js';
import { feedRebuild, rebuildProjections, type FedRebuild, type RebuildOptions, type RebuildResult } from './rebuild.js';
import { ProjectionRegistry, type DeadLetter } from './registry.js';
import {
  UnknownProjectionError,
  type PendingSource,
  type Projection,
  type ProjectionStatus,
  type RebuildProgress,
  type Registered,
} from './types.js';

export interface RunnerOptions {
  /** Events per catch-up transaction (default 2000). */
  batchSize?: number;
  /** Progress of rebuilds started by `open` (version bumps, new projections). */
  onRebuildProgress?: (p: RebuildProgress) => void;
  /** Largest gap an inline append fills from the log before applying (events written by other connections). */
  maxInlineGap?: number;
}

/**
 * Runs projections over one `EventLog`:
 * - inline: an `onAppend` hook applies new events inside the append transaction, so rows and
 *   checkpoint commit atomically with the events;
 * - `catchUp()`: from each checkpoint to the head in batched transactions (after a restart, or
 *   for events written by another connection);
 * - a projection that throws gets a dead letter and a 'failed' state and stops before the
 *   event (appends keep working: its work is rolled back to a savepoint); `retry` resumes it.
 */
export class ProjectionRunner {
  readonly registry: ProjectionRegistry;
  readonly db: Database.Database;
  readonly pageReader: EventPageReader;
  private readonly entries = new Map<string, Registered>();
  private pendingSource: PendingSource | null = null;
  private unsubscribe: (() => void) | null = null;
  /** The rebuild running now (manual, at open, or fed by a first sync), settled when it ends. */
  private rebuilding: Promise<unknown> | null = null;
  /** Orders refreshed while a rebuild runs: the shadow must show the same overlay when swapped in. */
  private readonly refreshed = new Set<string>();

  constructor(
    readonly log: EventLog,
    projections: readonly Projection[],
    readonly opts: RunnerOptions = {},
  ) {
    this.db = log.db;
    this.registry = new ProjectionRegistry(this.db);
    this.pageReader = new EventPageReader(this.db);
    for (const p of projections) {
      if (this.entries.has(p.name)) throw new Error(`projection ${p.name} is registered twice`);
      this.entries.set(p.name, { projection: p, ctx: createContext(this.db, { cacheSize: 5000, pending: () => this.pendingSource }) });
    }
  }

  get names(): string[] {
    return [...this.entries.keys()];
  }

  get pending(): PendingSource | null {
    return this.pendingSource;
  }

  get refreshedDuringRebuild(): ReadonlySet<string> {
    return this.refreshed;
  }

  entry(name: string): Registered {
    const e = this.entries.get(name);
    if (!e) throw new UnknownProjectionError(name);
    return e;
  }

  /**
   * Prepare every projection: new ones and those whose version changed (or whose rebuild was
   * interrupted) are rebuilt blue/green; the rest catch up from their checkpoint. Then attach
   * the inline hook.
   */
  async open(opts: Omit<RebuildOptions, 'onProgress'> = {}): Promise<{ rebuilt: string[] }> {
    const head = this.log.headPosition();
    const rebuild: string[] = [];
    for (const { projection: p } of this.entries.values()) {
      const row = this.registry.get(p.name);
      const interrupted = this.registry.rebuild(p.name);
      const needsRebuild = interrupted ? true : !row ? head > 0 : row.version !== p.version;
      if (needsRebuild) {
        rebuild.push(p.name);
      } else if (!row) {
        this.db.transaction(() => {
          const tables = p.tables('');
          createTables(this.db, tables, true);
          this.registry.put(p.name, p.version, 0, tables.map((t) => t.name));
        })();
      } else {
        createTables(this.db, p.tables(''), true);
      }
    }
    this.attach();
    if (rebuild.length > 0) await this.rebuild(rebuild, { ...opts, onProgress: this.opts.onRebuildProgress });
    this.catchUp();
    return { rebuilt: rebuild };
  }

  /** Apply appended events inline (idempotent: safe to call twice). */
  attach(): void {
    if (!this.unsubscribe) this.unsubscribe = this.log.onAppend((events) => this.deliver(events));
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /**
   * Deliver events (in log order) to every live projection. Events at or below a projection's
   * checkpoint are ignored, so re-delivery never double counts. Runs in the caller's transaction.
   */
  deliver(events: readonly StoredEvent[]): void {
    if (events.length === 0) return;
    const first = events[0]!.position;
    const maxGap = this.opts.maxInlineGap ?? 5000;
    this.inTransaction(() => {
      for (const entry of this.entries.values()) {
        const row = this.registry.get(entry.projection.name);
        if (!row || row.state !== 'live' || row.version !== entry.projection.version) continue;
        entry.ctx.cache.clear();
        let batch = events;
        const gap = first - 1 - row.position;
        if (gap > maxGap) continue; // too far behind for an append: catchUp() takes it from here
        if (gap > 0) batch = [...this.log.readPage(row.position, gap), ...events];
        this.applyGuarded(entry, batch, row.position);
      }
    });
  }

  /**
   * Apply events above `checkpoint` in a savepoint, then move the checkpoint. On an error the
   * savepoint is rolled back and the events are retried one by one to find the culprit: the
   * ones before it are kept, it goes to the dead-letter table, the projection stops there.
   * Returns false if the projection failed.
   */
  private applyGuarded(entry: Registered, events: readonly StoredEvent[], checkpoint: number): boolean {
    const { projection: p, ctx } = entry;
    const fresh = events.filter((e) => e.position > checkpoint);
    if (fresh.length === 0) return true;
    const step = (batch: readonly StoredEvent[]) =>
      this.db.transaction(() => {
        p.apply(ctx, batch.map(upcastEvent));
        this.registry.setPosition(p.name, batch[batch.length - 1]!.position);
      })();
    try {
      step(fresh);
      return true;
    } catch {
      ctx.cache.clear();
    }
    for (const e of fresh) {
      try {
        step([e]);
      } catch (err) {
        ctx.cache.clear();
        this.registry.fail(p.name, e, err);
        return false;
      }
    }
    return true;
  }

  /**
   * Bring every live projection from its checkpoint to the head, in batched transactions (one
   * page read is shared by all projections). Returns the number of events read.
   */
  catchUp(opts: { names?: readonly string[]; maxEvents?: number } = {}): number {
    const batchSize = this.opts.batchSize ?? 2000;
    const selected = [...this.entries.values()].filter((e) => !opts.names || opts.names.includes(e.projection.name));
    for (const e of selected) e.ctx.cache.clear();
    const eligible = () =>
      selected
        .map((entry) => ({ entry, row: this.registry.get(entry.projection.name) }))
        .filter(({ entry, row }) => row && row.state === 'live' && row.version === entry.projection.version);
    let read = 0;
    try {
      for (;;) {
        const head = this.log.headPosition();
        const live = eligible();
        if (live.length === 0) break;
        const from = Math.min(...live.map(({ row }) => row!.position));
        if (from >= head) break;
        const limit = Math.min(batchSize, opts.maxEvents !== undefined ? opts.maxEvents - read : batchSize);
        if (limit <= 0) break;
        const n = this.inTransaction(() => {
          const page = this.pageReader.page(from, limit);
          for (const { entry } of eligible()) {
            const row = this.registry.get(entry.projection.name)!;
            this.applyGuarded(entry, page, row.position);
          }
          return page.length;
        });
        read += n;
        if (n === 0) break;
      }
    } finally {
      for (const e of selected) e.ctx.cache.clear();
    }
    return read;
  }

  status(): ProjectionStatus[] {
    const head = this.log.headPosition();
    return [...this.entries.values()].map(({ projection: p }) => {
      const row = this.registry.get(p.name);
      const rebuilding = this.registry.rebuild(p.name);
      const position = row?.position ?? 0;
      let state: ProjectionStatus['state'] = 'live';
      if (row?.state === 'failed') state = 'failed';
      else if (rebuilding || !row || row.version !== p.version) state = 'rebuilding';
      else if (position < head) state = 'behind';
      return { name: p.name, version: row?.version ?? p.version, position, head, state, error: row?.error ?? null };
    });
  }

  /** The position a projection's live view reflects. */
  position(name: string): number {
    this.entry(name);
    return this.registry.get(name)?.position ?? 0;
  }

  deadLetters(name?: string, includeResolved = false): DeadLetter[] {
    return this.registry.deadLetters(name, includeResolved);
  }

  /** Clear a failed state and run the stopped event again (after a fix); returns the new status. */
  retry(name: string): ProjectionStatus {
    this.entry(name);
    const row = this.registry.get(name);
    if (row?.state === 'failed') this.registry.unfail(name);
    this.catchUp({ names: [name] });
    const after = this.registry.get(name);
    if (after && after.state === 'live') this.registry.resolveDeadLetters(name, after.position);
    return this.status().find((s) => s.name === name)!;
  }

  /**
   * Rebuild every projection from the appends that follow (a first sync, far behind): the shadows
   * take each appended batch as it is written and `finish` swaps them in. Detach the inline hook
   * first (`close`); `attach` after `finish`. Null while another rebuild runs (rebuilds share the
   * shadow tables): the caller rebuilds at the end instead, after it.
   */
  feedRebuild(): FedRebuild | null {
    if (this.rebuilding) return null;
    const fed = feedRebuild(this, this.names);
    let ended!: () => void;
    const running = new Promise<void>((resolve) => (ended = resolve));
    this.rebuilding = running;
    return {
      finish: async (opts) => {
        try {
          return await fed.finish(opts);
        } finally {
          this.afterRebuild(this.names);
          if (this.rebuilding === running) this.rebuilding = null;
          ended();
        }
      },
    };
  }

  async rebuild(names: string | readonly string[] = this.names, opts: RebuildOptions = {}): Promise<RebuildResult> {
    const list = typeof names === 'string' ? [names] : [...names];
    for (const n of list) this.entry(n);
    // One at a time: rebuilds share the shadow tables (a second one would fold into the first's).
    while (this.rebuilding) await this.rebuilding.catch(() => {});
    const running = rebuildProjections(this, list, opts);
    this.rebuilding = running;
    try {
      return await running;
    } finally {
      this.rebuilding = null;
      this.afterRebuild(list);
    }
  }

  /**
   * The tables were replaced from outside (a bootstrap taken in, the hook detached meanwhile):
   * forget what the contexts cached and open again, so a projection of another version is
   * rebuilt and the rest catch up from their checkpoints.
   */
  async reload(): Promise<void> {
    this.afterRebuild(this.names);
    await this.open();
  }

  /** The live tables were replaced: whatever the contexts cached describes the old ones. */
  private afterRebuild(names: readonly string[]): void {
    for (const n of names) this.entry(n).ctx.cache.clear();
    if (!this.entriesRebuilding()) this.refreshed.clear();
  }

  /**
   * Set (or clear) the sync outbox overlay. Rows that currently show an overlay are recomputed
   * against the new source; the sync layer calls `refreshOrders` for orders it adds later.
   * `current`: the stored overlay is already this source's, because it is the durable outbox
   * whose every change refreshed its orders in the same transaction (a device reopening its own
   * file). Then nothing is recomputed: at boot that was one fold per order with pending
   * commands before the first page could show.
   */
  setPendingSource(src: PendingSource | null, opts: { current?: boolean } = {}): void {
    if (opts.current) {
      this.pendingSource = src;
      return;
    }
    const before = this.pendingKeys();
    this.pendingSource = src;
    if (before.length > 0) this.refreshOrders(before);
  }

  private pendingKeys(): string[] {
    const keys = new Set<string>();
    for (const { projection: p, ctx } of this.entries.values()) {
      if (!p.pendingKeys || !this.isLive(p)) continue;
      for (const k of p.pendingKeys(ctx)) keys.add(k);
    }
    return [...keys];
  }

  private isLive(p: Projection): boolean {
    const row = this.registry.get(p.name);
    return !!row && row.state === 'live' && row.version === p.version;
  }

  /**
   * Recompute the effective rows (confirmed state + pending events, sync badge) of these
   * orders and re-diff the aggregates. Runs inside the caller's transaction if there is one
   * (e.g. the sync layer's outbox write), so the list never shows a half-applied change.
   */
  refreshOrders(orderIds: readonly string[]): void {
    if (orderIds.length === 0) return;
    this.inTransaction(() => {
      for (const { projection: p, ctx } of this.entries.values()) {
        if (!p.refresh || !this.isLive(p)) continue;
        ctx.cache.clear();
        p.refresh(ctx, orderIds);
        ctx.cache.clear();
      }
    });
    if (this.entriesRebuilding()) for (const id of orderIds) this.refreshed.add(id);
  }

  private entriesRebuilding(): boolean {
    return [...this.entries.keys()].some((n) => this.registry.rebuild(n) !== undefined);
  }

  /** Nested calls become savepoints; a top-level call takes the write lock up front. */
  private inTransaction<T>(fn: () => T): T {
    const tx = this.db.transaction(fn);
    return this.db.inTransaction ? tx() : tx.immediate();
  }
}
