import type { MessagePort } from 'node:worker_threads';

/**
 * Messages between a rebuild and the worker thread that folds for it (`rebuild-worker.ts`).
 * Internal to one process, so plain types: both ends are built from this module.
 */

/** What the worker starts from. */
export interface FoldWorkerInput {
  /** The database file (the worker opens it read-only). */
  file: string;
  prefix: string;
  batchSize: number;
  cacheSize: number;
  /** Batches the worker may fold ahead of the commits it has been told of. */
  window: number;
  projections: { name: string; module: string; factory: string }[];
  /** The streams this worker folds: partition `index` of `count` (`EventPageReader.partitionPage`). */
  partition: { index: number; count: number };
}

/**
 * One folded stretch of the log (the same positions in every worker, each its partition's
 * events; `events` counts those): its writes as a flat list (statement number, its arguments as an array, ...),
 * the SQL texts first numbered in this batch, and each projection's position after it.
 */
export interface FoldedBatch {
  kind: 'batch';
  batch: number;
  events: number;
  sqls: string[];
  ops: unknown[];
  positions: number[];
}

export type FoldWorkerMessage = { kind: 'ready' } | FoldedBatch | { kind: 'done' } | { kind: 'failed'; error: string };

/**
 * From the rebuild: `start` once every worker is ready (each projection's position, and the
 * head the workers fold up to: the rebuild takes the rest), then `committed` after each batch.
 * After `done`, `summarize` asks one worker for each projection's `summarizeBulk` of the
 * committed shadow (but `changed` keys), answered on `port` (a `SummaryReply`), then `flag`'s
 * first Int32 is set to 1 and notified: the rebuilding thread waits for it inside its swap.
 */
export type RebuildMessage =
  | { kind: 'start'; positions: number[]; upTo: number }
  | { kind: 'committed'; batch: number }
  | { kind: 'summarize'; changed: string[][]; port: MessagePort; flag: SharedArrayBuffer };

/** Each projection's summary (undefined: it has none), or why there is none. */
export type SummaryReply = { summaries: unknown[] } | { error: string };
