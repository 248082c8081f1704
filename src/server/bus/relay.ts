import { headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { EventRepository, RelayCursor } from '../repository.js';
import { HEADER, eventSubject, type BusEvent, type BusNames } from './messages.js';

/** Who may relay: one process per database at a time; the others wait and take over on a crash. */
export interface RelayLease {
  /** True when this process holds (or has just taken) the lease. */
  acquire(): Promise<boolean>;
  /** Whether the lease is still held (false once its connection was lost). */
  held(): boolean;
  release(): Promise<void>;
}

/** A single process on its own database (the embedded SQLite backend): always the relay. */
export const soleLease: RelayLease = { acquire: async () => true, held: () => true, release: async () => undefined };

export interface RelayLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RelayOptions {
  repo: EventRepository;
  nc: NatsConnection;
  names: BusNames;
  lease: RelayLease;
  /** Resolves when new events may have been stored (or after `ms`): the server's append notifier. */
  wait: (ms: number, signal: AbortSignal) => Promise<unknown>;
  /** Events per page (default 500): published together, then the checkpoint moves past them. */
  batch?: number;
  /** Longest sleep without a wake-up (default 1000 ms). */
  idleMs?: number;
  /** How often a process without the lease tries to take it (default 1000 ms). */
  leaseRetryMs?: number;
  /** How long the broker may take to acknowledge one publication (default 5000 ms). */
  publishTimeoutMs?: number;
  log?: RelayLog;
}

export interface RelayStats {
  /** Events the broker stored for the first time. */
  published: number;
  /** Re-publications the broker recognised by message id and dropped (after a crash or a lost ack). */
  duplicates: number;
  /** Failed pages (broker or database unavailable): retried from the stored checkpoint. */
  failures: number;
  leader: boolean;
  checkpoint: RelayCursor | null;
}

const quiet: RelayLog = { info: () => undefined, warn: () => undefined };
/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/**
 * The transactional relay: reads committed events through the store's gap-safe pull (every
 * tenant), publishes each page to JetStream with the event id as message id (the broker drops a
 * re-publication), and only once the broker acknowledged the whole page stores the cursor after
 * it. A crash between publishing and storing re-publishes that page: at least once, and
 * deduplicated by the broker within its duplicate window; the workers are idempotent beyond it.
 * A page is published in commit order on one connection, so each stream's events reach the
 * broker in version order (a failed page is re-published whole; the workers still check order).
 */
export class Relay {
  readonly stats: RelayStats = { published: 0, duplicates: 0, failures: 0, leader: false, checkpoint: null };
  private readonly js: JetStreamClient;
  private stopped = false;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;
  private readonly log: RelayLog;

  constructor(private readonly opts: RelayOptions) {
    this.js = jetstream(opts.nc, { timeout: opts.publishTimeoutMs ?? 5000 });
    this.log = opts.log ?? quiet;
  }

  start(): this {
    this.loop ??= this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    await this.loop;
    await this.opts.lease.release().catch(() => undefined);
    this.stats.leader = false;
  }

  private async run(): Promise<void> {
    let failuresInARow = 0;
    while (!this.stopped) {
      try {
        if (!(await this.opts.lease.acquire())) {
          this.stats.leader = false;
          await sleep(this.opts.leaseRetryMs ?? 1000, this.stopping.signal);
          continue;
        }
        if (!this.stats.leader) this.log.info({}, 'relay: this process relays events to the broker');
        this.stats.leader = true;
        await this.relayWhileLeader(() => (failuresInARow = 0));
      } catch (err) {
        this.stats.failures++;
        failuresInARow++;
        this.log.warn({ err, failuresInARow }, 'relay: page not published; retrying from the stored checkpoint');
        await sleep(Math.min(5000, 100 * 2 ** Math.min(failuresInARow, 6)), this.stopping.signal);
      }
    }
  }

  private async relayWhileLeader(onProgress: () => void): Promise<void> {
    const batch = this.opts.batch ?? 500;
    // Re-read on every (re)start: after a failure the stored checkpoint is the truth.
    let cursor = await this.opts.repo.relayCheckpoint();
    this.stats.checkpoint = cursor;
    while (!this.stopped && this.opts.lease.held()) {
      const page = await this.opts.repo.pullAll(cursor, batch);
      if (page.events.length > 0) {
        await this.publishPage(page.events);
        await this.opts.repo.saveRelayCheckpoint(page.next!);
        cursor = page.next;
        this.stats.checkpoint = cursor;
        onProgress();
      }
      if (!page.hasMore) await this.opts.wait(this.opts.idleMs ?? 1000, this.stopping.signal);
    }
  }

  /**
   * Publish a page in waves: wave k holds each stream's k-th event of the page, all in flight at
   * once, and the next wave starts when the broker acknowledged this one. A wave that fails part
   * way can then not put a stream's later event ahead of its earlier one: the retry re-publishes
   * the page (the acknowledged ones are dropped as duplicates) and each stream stays in order.
   */
  private async publishPage(events: BusEvent[]): Promise<void> {
    for (const wave of waves(events)) {
      const acks = await Promise.all(
        wave.map((e) => {
          const h = headers();
          h.set(HEADER.position, String(e.globalPosition));
          h.set(HEADER.version, String(e.streamVersion));
          h.set(HEADER.streamId, e.streamId);
          if (e.metadata.correlationId) h.set(HEADER.correlationId, e.metadata.correlationId);
          return this.js.publish(eventSubject(this.opts.names.prefix, e), JSON.stringify(e), { msgID: e.eventId, headers: h });
        }),
      );
      for (const ack of acks) {
        if (ack.duplicate) this.stats.duplicates++;
        else this.stats.published++;
      }
    }
  }
}

/** Split a page (in commit order) into waves: each stream's n-th event goes to wave n, commit order kept within a wave. */
export function waves<E extends { tenantId: string; streamId: string }>(events: readonly E[]): E[][] {
  const seen = new Map<string, number>();
  const out: E[][] = [];
  for (const e of events) {
    const key = `${e.tenantId}\u0000${e.streamId}`;
    const n = seen.get(key) ?? 0;
    seen.set(key, n + 1);
    (out[n] ??= []).push(e);
  }
  return out;
}
