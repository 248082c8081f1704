import { availableParallelism } from 'node:os';
import { MessageChannel, receiveMessageOnPort, type Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { relaxedDurability } from './context.js';
import { RebuildAbortedError } from './types.js';
import type { RebuildHost, RebuildOptions, Shadow } from './rebuild.js';
import { foldWorkerEntry, startFoldWorker } from './worker-entry.js';
import type { FoldedBatch, FoldWorkerInput, FoldWorkerMessage, RebuildMessage, SummaryReply } from './worker-protocol.js';

/**
 * A rebuild on several threads: workers read the log and fold it through the projections (each
 * its partition of the streams; the reading, parsing and folding were most of a one-thread
 * rebuild), this thread commits the writes they post, batch by batch, with the shadows'
 * checkpoints. Workers are an accelerator only: if one cannot start or fails, the rebuild goes
 * on here from the last committed batch (a failing event then fails it as on one thread).
 */

/** Below this many events to replay, starting workers costs more than they save (measured: slower at 200k, 8% faster at 500k). */
export const WORKER_MIN_EVENTS = 300_000;

/**
 * How long a swap waits for a worker's summary before deriving it itself. A summary of 100k
 * orders takes about 0.4 s; the bound only matters if the worker died without answering.
 */
const SUMMARY_TIMEOUT_MS = 60_000;

/**
 * Batches a worker folds ahead of the commits (bounds what its caches keep unconfirmed). Two
 * left each worker of a 1M rebuild waiting 0.2-0.8 s for the rebuilding thread, which shares a
 * core with them; four, under 0.2 s (median of six interleaved rebuilds: 5.67 s against 5.95 s).
 */
const WINDOW = 4;

/** How a rebuild folded its events: in workers, or on the calling thread and why. */
export interface Folding {
  worker: boolean;
  /** Why workers were not used, or why they stopped (the rebuild then went on here). */
  note: string | null;
}

/** The workers' input (one per partition of the streams), or why this rebuild folds on the calling thread. */
export function workerPlan(runner: RebuildHost, shadows: readonly Shadow[], opts: RebuildOptions, cacheSize: number): FoldWorkerInput[] | string {
  const mode = opts.worker ?? 'auto';
  if (mode === 'never') return 'not asked for';
  const from = Math.min(...shadows.map((s) => s.position));
  const least = opts.workerMinEvents ?? WORKER_MIN_EVENTS;
  if (mode === 'auto' && runner.log.headPosition() - from < least) return `fewer than ${least} events to replay`;
  const db = runner.db;
  if (db.memory || !db.name) return 'the database is in memory';
  if (runner.pending && !runner.pending.overlaid) return 'the pending source cannot list its overlaid orders';
  const projections: FoldWorkerInput['projections'] = [];
  for (const s of shadows) {
    const p = s.entry.projection;
    if (!p.portable) return `projection ${p.name} has no worker factory`;
    projections.push({ name: p.name, module: p.portable.module, factory: p.portable.factory });
  }
  const prefix = shadows[0]!.ctx.prefix;
  if (shadows.some((s) => s.ctx.prefix !== prefix)) return 'the shadows have different prefixes';
  // One worker per core when every projection's streams fold apart: each reads, parses and
  // folds only its partition's events, so the reading is split too.
  const count = shadows.every((s) => s.entry.projection.portable?.byStream) ? Math.max(1, Math.min(opts.workers ?? availableParallelism(), 8)) : 1;
  return Array.from({ length: count }, (_, index) => ({
    file: db.name,
    prefix,
    batchSize: opts.batchSize ?? 10_000,
    cacheSize,
    window: WINDOW,
    projections,
    partition: { index, count },
  }));
}

type Event = FoldedBatch | { kind: 'done' } | { kind: 'failed'; error: string };

/**
 * The fold workers of one rebuild. They start loading at once; until all are ready the rebuild
 * folds on its own thread (so a short log never waits for them), then `fill` hands them the
 * rest of the log: each batch is one stretch of it folded by every worker (each its partition
 * of the streams), committed here (their writes, the shadows' positions and checkpoints) in one
 * transaction, in order. The worker is an accelerator only: `fill` returns, with the reason,
 * when one fails, and the rebuild goes on from the committed positions.
 */
export class FoldWorkers {
  private workers: Worker[] = [];
  private readonly started: Promise<void>;
  private terminated = false;
  private readonly queues: Event[][];
  private readonly waiting: (((e: Event) => void) | null)[];
  private loaded = 0;
  private settle: (() => void) | null = null;
  /** Why a worker stopped before `fill` (then it is never ready). */
  failure: string | null = null;

  constructor(private readonly inputs: FoldWorkerInput[]) {
    this.queues = inputs.map(() => []);
    this.waiting = inputs.map(() => null);
    this.started = foldWorkerEntry(inputs[0]!.projections.map((p) => p.module)).then(
      (entry) => {
        if (!this.terminated) this.workers = this.inputs.map((input, i) => this.start(entry, input, i));
      },
      (err: unknown) => this.push(0, { kind: 'failed', error: `the worker could not be built: ${err instanceof Error ? err.message : String(err)}` }),
    );
  }

  private push(i: number, e: Event): void {
    if (e.kind === 'failed') {
      this.failure ??= e.error;
      this.settle?.();
    }
    const waiter = this.waiting[i];
    this.waiting[i] = null;
    if (waiter) waiter(e);
    else this.queues[i]!.push(e);
  }

  private start(entry: URL, input: FoldWorkerInput, i: number): Worker {
    const w = startFoldWorker(entry, input);
    w.on('message', (m: FoldWorkerMessage) => {
      if (m.kind !== 'ready') return this.push(i, m);
      this.loaded++;
      if (this.ready) this.settle?.();
    });
    w.on('error', (err) => this.push(i, { kind: 'failed', error: `${err.name}: ${err.message}` }));
    w.on('exit', (code) => this.push(i, { kind: 'failed', error: `the worker exited (code ${code})` }));
    return w;
  }

  get ready(): boolean {
    return this.loaded === this.inputs.length && this.failure === null;
  }

  /** Resolves when every worker is ready, or one failed. */
  settled(): Promise<void> {
    if (this.ready || this.failure !== null) return Promise.resolve();
    return new Promise<void>((resolve) => (this.settle = resolve));
  }

  private next(i: number): Promise<Event> {
    const queued = this.queues[i]!.shift();
    return queued ? Promise.resolve(queued) : new Promise<Event>((resolve) => (this.waiting[i] = resolve));
  }

  /** Fold from the shadows' positions to the head; returns the events committed and, if a worker failed, why. */
  async fill(runner: RebuildHost, shadows: Shadow[], opts: RebuildOptions, label: string, onBatch: () => void): Promise<{ replayed: number; failure: string | null }> {
    const start: RebuildMessage = { kind: 'start', positions: shadows.map((s) => s.position), upTo: runner.log.headPosition() };
    for (const w of this.workers) w.postMessage(start);
    const statements: Database.Statement[][] = this.workers.map(() => []);
    const db = runner.db;
    let replayed = 0;
    for (;;) {
      const messages = await Promise.all(this.workers.map((_, i) => this.next(i)));
      if (opts.signal?.aborted) throw new RebuildAbortedError(`rebuild of ${label} aborted; it resumes from its checkpoint`);
      const failed = messages.find((m) => m.kind === 'failed');
      if (failed) return { replayed, failure: failed.error };
      const batches = messages.filter((m): m is FoldedBatch => m.kind === 'batch');
      if (batches.length === 0) return { replayed, failure: null };
      const first = batches[0]!;
      if (batches.length < messages.length || batches.some((b) => b.batch !== first.batch || b.positions.some((p, k) => p !== first.positions[k]))) {
        return { replayed, failure: 'the workers folded different stretches of the log' };
      }
      try {
        const total = runner.log.headPosition();
        relaxedDurability(db, () =>
          db
            .transaction(() => {
              batches.forEach((b, w) => {
                const own = statements[w]!;
                for (const sql of b.sqls) own.push(db.prepare(sql));
                const ops = b.ops;
                for (let i = 0; i < ops.length; i += 2) own[ops[i] as number]!.run(ops[i + 1]);
              });
              shadows.forEach((s, k) => {
                const position = first.positions[k]!;
                if (position !== s.position && s.persist) runner.registry.advanceRebuild(s.entry.projection.name, position, total);
              });
            })
            .immediate(),
        );
      } catch (err) {
        return { replayed, failure: `committing a folded batch failed: ${err instanceof Error ? err.message : String(err)}` };
      }
      shadows.forEach((s, k) => (s.position = first.positions[k]!));
      for (const b of batches) replayed += b.events;
      const committed: RebuildMessage = { kind: 'committed', batch: first.batch };
      for (const w of this.workers) w.postMessage(committed);
      onBatch();
    }
  }

  /**
   * After `fill`: ask the first worker for each projection's `summarizeBulk` of the committed
   * shadow (but `changed[k]` keys of projection k). Returns what waits for the answer
   * synchronously (a swap runs in one synchronous transaction): the summaries, or null when the
   * worker failed or took longer than `SUMMARY_TIMEOUT_MS` (the swap then derives them itself).
   */
  summarize(changed: string[][]): () => unknown[] | null {
    const worker = this.workers[0];
    if (!worker || this.failure !== null) return () => null;
    const { port1, port2 } = new MessageChannel();
    // Read with receiveMessageOnPort only: it must not keep the process up if the swap fails first.
    port1.unref();
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const request: RebuildMessage = { kind: 'summarize', changed, port: port2, flag: flag.buffer as SharedArrayBuffer };
    worker.postMessage(request, [port2]);
    return () => {
      try {
        if (Atomics.wait(flag, 0, 0, SUMMARY_TIMEOUT_MS) === 'timed-out') return null;
        const reply = receiveMessageOnPort(port1)?.message as SummaryReply | undefined;
        return reply && 'summaries' in reply ? reply.summaries : null;
      } finally {
        port1.close();
      }
    };
  }

  async terminate(): Promise<void> {
    this.terminated = true;
    await this.started;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /** Terminate in the background: nothing waits for the threads to be gone, and a failure to stop one is nobody's to handle. */
  release(): void {
    this.terminate().catch(() => undefined);
  }
}
