import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { upcastEvent } from '../store/event-log.js';
import { EventPageReader } from './event-pages.js';
import { UnconfirmedCache } from './unconfirmed-cache.js';
import type { ApplyContext, Projection } from './types.js';
import type { FoldWorkerInput, FoldWorkerMessage, RebuildMessage, SummaryReply } from './worker-protocol.js';

/**
 * The body of a parallel rebuild's worker thread: it reads the log on its own read-only connection,
 * folds each page through the projections and posts their writes; the rebuilding thread commits
 * them in order and says so. Reads of the shadows (cache misses) see only committed batches, so
 * the caches keep what they evict until its batch is committed (`UnconfirmedCache`).
 */

/** A write's result cannot be known here: it is committed later, by another thread. */
const NO_RESULT = Object.freeze({
  get changes(): never {
    throw new Error('a projection folded in a rebuild worker cannot read the result of a write');
  },
  get lastInsertRowid(): never {
    throw new Error('a projection folded in a rebuild worker cannot read the result of a write');
  },
});

const CHAINED = new Set(['pluck', 'raw', 'expand', 'safeIntegers']);

/** Where the worker finds a projection's module (`PortableProjection.module`). */
export type ModuleLoader = (url: string) => Promise<Record<string, unknown>>;

async function main(input: FoldWorkerInput, port: MessagePort, load: ModuleLoader): Promise<void> {
  const db = new Database(input.file, { readonly: true, fileMustExist: true });
  // Small: another connection's commit empties it at each page's read transaction anyway.
  db.pragma('cache_size = -8192');
  const reader = new EventPageReader(db);
  /** Each SQL text's recording statement; its number (for the rebuilding thread) is its order here. */
  const recorded = new Map<string, Database.Statement>();
  let newSqls: string[] = [];
  let ops: unknown[] = [];

  /** A statement whose reads run here and whose `run` records the write for the rebuilding thread (one per SQL text, shared by the projections). */
  const recording = (sql: string): Database.Statement => {
    const known = recorded.get(sql);
    if (known) return known;
    const real = db.prepare(sql);
    const n = recorded.size;
    newSqls.push(sql);
    // Its arguments as one array: better-sqlite3 binds an array's items as the parameters.
    const run = (...args: unknown[]) => {
      ops.push(n, args);
      return NO_RESULT;
    };
    const proxy: Database.Statement = new Proxy(real, {
      get(target, key) {
        if (key === 'run') return run;
        if (typeof key === 'string' && CHAINED.has(key)) {
          return (...args: unknown[]) => {
            (target as unknown as Record<string, (...a: unknown[]) => unknown>)[key]!(...args);
            return proxy;
          };
        }
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    recorded.set(sql, proxy);
    return proxy;
  };

  const shadows: { projection: Projection; ctx: ApplyContext; cache: UnconfirmedCache<unknown>; position: number }[] = [];
  for (const p of input.projections) {
    const mod = await load(p.module);
    const factory = mod[p.factory];
    if (typeof factory !== 'function') throw new Error(`${p.module} exports no factory ${p.factory}`);
    const projection = (factory as () => Projection)();
    if (projection.name !== p.name) throw new Error(`${p.module}#${p.factory} builds ${projection.name}, not ${p.name}`);
    const cache = new UnconfirmedCache<unknown>(input.cacheSize);
    const ctx: ApplyContext = { db, prefix: input.prefix, bulk: true, cache, pending: null, stmt: recording };
    shadows.push({ projection, ctx, cache, position: 0 });
  }

  /** After the fold: each projection's summary of the committed shadow, in one read transaction. */
  const summarize = (m: Extract<RebuildMessage, { kind: 'summarize' }>) => {
    let reply: SummaryReply;
    try {
      reply = { summaries: db.transaction(() => shadows.map((s, k) => s.projection.summarizeBulk?.(s.ctx, m.changed[k] ?? [])))() };
    } catch (err) {
      reply = { error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
    }
    m.port.postMessage(reply);
    m.port.close();
    const flag = new Int32Array(m.flag);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  };

  let committed = 0;
  let upTo = -1;
  let wake: (() => void) | null = null;
  port.on('message', (m: RebuildMessage) => {
    if (m.kind === 'summarize') return summarize(m);
    if (m.kind === 'start') {
      shadows.forEach((s, k) => (s.position = m.positions[k]!));
      upTo = m.upTo;
    } else {
      committed = Math.max(committed, m.batch);
      for (const s of shadows) s.cache.confirm(committed);
    }
    wake?.();
  });
  // Loaded: the rebuild folds on its own thread until every worker says so, then says where to start.
  port.postMessage({ kind: 'ready' } satisfies FoldWorkerMessage);
  while (upTo < 0) await new Promise<void>((resolve) => (wake = resolve));

  const { index, count } = input.partition;
  let batch = 0;
  for (;;) {
    while (batch - committed >= input.window) await new Promise<void>((resolve) => (wake = resolve));
    wake = null;
    const from = Math.min(...shadows.map((s) => s.position));
    if (from >= upTo) break;
    const end = Math.min(from + input.batchSize, upTo);
    batch++;
    for (const s of shadows) s.cache.batch = batch;
    // One read transaction per page: the cache-miss reads share one snapshot (of the batches
    // confirmed so far) and the connection's page cache, which a commit elsewhere invalidates,
    // is reloaded once per page instead of once per read.
    const folded = db.transaction(() => {
      const events = reader.partitionPage(from, end, index, count).map(upcastEvent);
      for (const s of shadows) {
        if (end <= s.position) continue;
        const fresh = s.position === from ? events : events.filter((e) => e.position > s.position);
        if (fresh.length > 0) s.projection.apply(s.ctx, fresh);
        // The other partitions' events are folded by the other workers, in the same batch.
        s.position = end;
      }
      return events.length;
    })();
    const message: FoldWorkerMessage = { kind: 'batch', batch, events: folded, sqls: newSqls, ops, positions: shadows.map((s) => s.position) };
    port.postMessage(message);
    newSqls = [];
    ops = [];
  }
  // The connection stays open for `summarize`; the rebuild terminates the worker after its swap.
  port.postMessage({ kind: 'done' } satisfies FoldWorkerMessage);
}

/** Run the worker on this thread's `workerData`, reporting a failure to the rebuild instead of throwing. */
export function runFoldWorker(load: ModuleLoader): void {
  const port = parentPort;
  if (!port) throw new Error('runFoldWorker runs in a worker thread');
  main(workerData as FoldWorkerInput, port, load).catch((err: unknown) => {
    port.postMessage({ kind: 'failed', error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) } satisfies FoldWorkerMessage);
  });
}
