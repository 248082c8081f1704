import { randomUUID } from 'node:crypto';
import pRetry, { AbortError } from 'p-retry';
import { AuthError, SyncError } from './errors.js';
import { SyncHttpClient, type SyncClient } from './http-client.js';
import type { Outbox } from './outbox.js';
import type { SyncEngine, SyncProgress, SyncReport } from './sync-engine.js';
import type { SyncStatus } from './views.js';

export interface SchedulerOptions {
  engine: SyncEngine;
  outbox: Outbox;
  serverUrl?: string | null;
  token?: string;
  /** Builds the client for setServer (tests inject timeouts). */
  createClient?: (url: string, token: string) => SyncClient;
  /** Periodic sync, ms (default 30 s; 0 disables). */
  intervalMs?: number;
  /** Quiet time after the last change before syncing, ms (default 300). */
  debounceMs?: number;
  /**
   * Live updates: while online, hold a long-poll on the server (`GET /sync/events?waitMs=`) and
   * sync as soon as it answers with an event another device stored. The hold, ms (default 25 s,
   * under common proxy idle timeouts; 0 disables and leaves only the periodic sync).
   */
  liveWaitMs?: number;
  /** Start with "work offline" on: no network traffic at all until resumed (setPaused(false)). */
  paused?: boolean;
  /** Backoff after network errors and 5xx: first delay, cap, and retries per sync. */
  backoff?: { minMs?: number; maxMs?: number; retries?: number };
  onReport?: (report: SyncReport) => void;
}

type Listener = (status: SyncStatus) => void;

/** Abortable sleep; resolves early (never rejects) when the signal fires. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    timer.unref();
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

const isRetryable = (err: unknown): boolean => err instanceof SyncError && err.retryable;
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Runs the sync engine in the background: after local changes (debounced), periodically, on
 * reconnect and on demand; one sync at a time; exponential backoff with jitter (p-retry) on
 * network errors and 5xx; stops on 401/403 until the credentials change. Reports SyncStatus.
 */
export class SyncScheduler {
  private readonly engine: SyncEngine;
  private readonly outbox: Outbox;
  private readonly createClient: (url: string, token: string) => SyncClient;
  private readonly intervalMs: number;
  private readonly debounceMs: number;
  private readonly liveWaitMs: number;
  private client: SyncClient | null = null;
  private paused: boolean;
  private watchAbort: AbortController | null = null;
  private readonly backoff: { minMs: number; maxMs: number; retries: number };
  private readonly onReport: ((r: SyncReport) => void) | undefined;
  private readonly listeners = new Set<Listener>();
  private status: SyncStatus;
  private started = false;
  private online = true;
  private unauthorized = false;
  private inFlight: Promise<void> | null = null;
  private again = false;
  private debounceTimer: NodeJS.Timeout | null = null;
  private intervalTimer: NodeJS.Timeout | null = null;
  private backoffAbort: AbortController | null = null;

  constructor(opts: SchedulerOptions) {
    this.engine = opts.engine;
    this.outbox = opts.outbox;
    this.createClient = opts.createClient ?? ((url, token) => new SyncHttpClient({ baseUrl: url, token }));
    this.intervalMs = opts.intervalMs ?? 30_000;
    this.debounceMs = opts.debounceMs ?? 300;
    this.liveWaitMs = opts.liveWaitMs ?? 25_000;
    this.paused = opts.paused ?? false;
    this.backoff = { minMs: opts.backoff?.minMs ?? 1000, maxMs: opts.backoff?.maxMs ?? 60_000, retries: opts.backoff?.retries ?? 8 };
    this.onReport = opts.onReport;
    this.status = {
      state: 'disabled',
      online: true,
      pendingCount: 0,
      conflictCount: 0,
      quarantinedCount: 0,
      lastSuccessAt: null,
      lastAttemptAt: null,
      lastError: null,
      nextAttemptAt: null,
      progress: null,
      serverUrl: null,
      paused: this.paused,
      revision: { epoch: randomUUID(), seq: 0 },
    };
    if (opts.serverUrl) this.setServer(opts.serverUrl, opts.token ?? '');
    else this.update({ state: 'disabled' });
  }

  onStatus(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  getStatus(): SyncStatus {
    return { ...this.status, pendingCount: this.outbox.pendingCount(), conflictCount: this.outbox.conflictCount(), quarantinedCount: this.outbox.quarantine.count() };
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.intervalMs > 0) {
      this.intervalTimer = setInterval(() => void this.trigger(), this.intervalMs);
      this.intervalTimer.unref();
    }
    void this.trigger();
    this.restartWatch();
  }

  /** Waits for an in-flight sync to finish (its backoff wait is cut short). */
  async stop(): Promise<void> {
    this.started = false;
    if (this.intervalTimer) clearInterval(this.intervalTimer);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.intervalTimer = this.debounceTimer = null;
    this.again = false;
    this.backoffAbort?.abort(new Error('sync scheduler stopped'));
    this.stopWatch();
    await this.inFlight;
  }

  /** A local command was recorded: sync soon (debounced, so a burst of edits is one sync). */
  notifyChange(): void {
    this.update({});
    if (!this.started) return;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      void this.trigger();
    }, this.debounceMs);
    this.debounceTimer.unref();
  }

  /** Connectivity from the OS/browser: offline pauses syncing, coming back online syncs at once. */
  setOnline(online: boolean): void {
    const wasOffline = !this.online;
    this.online = online;
    if (!online) {
      this.backoffAbort?.abort(new Error('went offline'));
      this.stopWatch();
      this.update({ state: this.baseState(), online: false, nextAttemptAt: null });
      return;
    }
    this.update({ online: true, state: this.baseState() });
    if (wasOffline && this.started) {
      void this.trigger();
      this.restartWatch();
    }
  }

  /**
   * "Work offline", the person's own choice (a plane, a metered link): no request leaves the
   * device, not even "Sync now", until it is turned off; turning it off syncs at once.
   */
  setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    this.paused = paused;
    if (paused) {
      this.backoffAbort?.abort(new Error('work offline'));
      if (this.debounceTimer) clearTimeout(this.debounceTimer);
      this.debounceTimer = null;
      this.again = false;
      this.stopWatch();
      this.update({ state: this.baseState(), paused: true, nextAttemptAt: null, progress: null });
      return;
    }
    this.update({ state: this.baseState(), paused: false });
    if (this.started) {
      void this.trigger();
      this.restartWatch();
    }
  }

  isPaused(): boolean {
    return this.paused;
  }

  /** New server or credentials: clears an unauthorized stop. Empty url disables sync. */
  setServer(url: string | null, token: string): void {
    this.backoffAbort?.abort(new Error('server changed'));
    this.stopWatch();
    this.unauthorized = false;
    if (!url) {
      this.client = null;
      this.engine.setClient(null);
      this.update({ state: 'disabled', serverUrl: null, lastError: null, nextAttemptAt: null });
      return;
    }
    this.client = this.createClient(url, token);
    this.engine.setClient(this.client);
    this.update({ state: this.baseState(), serverUrl: url, lastError: null, nextAttemptAt: null });
    if (this.started) {
      void this.trigger();
      this.restartWatch();
    }
  }

  /** Sync now and resolve with the status after it (joins a sync already running). */
  async syncNow(): Promise<SyncStatus> {
    await this.trigger(true);
    return this.getStatus();
  }

  private baseState(): SyncStatus['state'] {
    if (!this.engine.hasClient()) return 'disabled';
    if (this.paused) return 'paused';
    if (this.unauthorized) return 'unauthorized';
    if (!this.online) return 'offline';
    return 'idle';
  }

  private trigger(force = false): Promise<void> {
    if (!this.engine.hasClient() || this.paused || (this.unauthorized && !force) || (!this.online && !force)) return this.inFlight ?? Promise.resolve();
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    this.inFlight = this.loop().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      await this.runWithBackoff();
    } while (this.again && this.started && this.online && !this.paused && !this.unauthorized && this.engine.hasClient());
  }

  private stopWatch(): void {
    this.watchAbort?.abort();
    this.watchAbort = null;
  }

  private restartWatch(): void {
    this.stopWatch();
    if (!this.started || this.liveWaitMs <= 0 || !this.client || this.paused || !this.online || this.unauthorized) return;
    const abort = new AbortController();
    this.watchAbort = abort;
    void this.watch(this.client, abort.signal);
  }

  /**
   * The live half of sync: a long-poll held on the server from this device's checkpoint. When it
   * answers with an event, another device (or this one) stored something: sync at once, so the
   * change shows within a round trip instead of at the next periodic sync. Failures back off
   * (the periodic sync stays as the safety net); 401/403 stop it until the credentials change.
   */
  private async watch(client: SyncClient, signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      // A running sync moves the checkpoint; polling from the old one would answer at once.
      await this.inFlight;
      if (signal.aborted) return;
      const after = this.engine.checkpoint();
      try {
        const page = await client.pull({ after, limit: 1, waitMs: this.liveWaitMs, signal });
        if (signal.aborted) return;
        failures = 0;
        if (page.events.length === 0) continue;
        await this.trigger();
        if (signal.aborted) return;
        // The sync failed (its own backoff is spent): do not spin on the same answer.
        if (this.engine.checkpoint() === after) await sleep(this.backoff.maxMs, signal);
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof AuthError) return;
        failures++;
        await sleep(Math.min(this.backoff.maxMs, this.backoff.minMs * 2 ** Math.min(failures - 1, 16)), signal);
      }
    }
  }

  private async runWithBackoff(): Promise<void> {
    const abort = new AbortController();
    this.backoffAbort = abort;
    const onProgress = (progress: SyncProgress) => this.update({ state: 'syncing', progress });
    try {
      const report = await pRetry(
        async () => {
          if (!this.engine.hasClient()) throw new AbortError('no server configured');
          this.update({ state: 'syncing', lastAttemptAt: new Date().toISOString(), nextAttemptAt: null, progress: null });
          return this.engine.syncOnce({ onProgress });
        },
        {
          retries: this.backoff.retries,
          factor: 2,
          minTimeout: this.backoff.minMs,
          maxTimeout: this.backoff.maxMs,
          randomize: true,
          signal: abort.signal,
          unref: true,
          shouldRetry: ({ error }) => isRetryable(error) && this.online,
          onFailedAttempt: ({ error, retriesConsumed }) => {
            // p-retry picks a delay in [base, 2·base) (jitter); we report the earliest.
            const base = Math.min(this.backoff.maxMs, this.backoff.minMs * 2 ** retriesConsumed);
            this.update({
              state: error instanceof AuthError ? 'unauthorized' : isRetryable(error) && isNetwork(error) ? 'offline' : 'error',
              lastError: message(error),
              progress: null,
              nextAttemptAt: isRetryable(error) ? new Date(Date.now() + base).toISOString() : null,
            });
          },
        },
      );
      this.onReport?.(report);
      const lastError = report.streamErrors.length > 0 ? report.streamErrors.map((e) => `${e.streamId}: ${e.message}`).join('; ') : null;
      this.update({ state: 'idle', lastSuccessAt: new Date().toISOString(), lastError, nextAttemptAt: null, progress: null });
    } catch (err) {
      if (err instanceof AuthError) {
        this.unauthorized = true;
        this.stopWatch();
        this.update({ state: 'unauthorized', lastError: message(err), nextAttemptAt: null, progress: null });
      } else if (abort.signal.aborted) {
        this.update({ state: this.baseState(), nextAttemptAt: null, progress: null });
      } else {
        this.update({
          state: isNetwork(err) ? 'offline' : 'error',
          lastError: message(err),
          progress: null,
          nextAttemptAt: this.started && this.intervalMs > 0 ? new Date(Date.now() + this.intervalMs).toISOString() : null,
        });
      }
    } finally {
      if (this.backoffAbort === abort) this.backoffAbort = null;
    }
  }

  private update(patch: Partial<SyncStatus>): void {
    const revision = { epoch: this.status.revision.epoch, seq: this.status.revision.seq + 1 };
    this.status = { ...this.status, ...patch, online: patch.online ?? this.online, revision };
    const snapshot = this.getStatus();
    for (const l of this.listeners) l(snapshot);
  }
}

function isNetwork(err: unknown): boolean {
  return err instanceof SyncError && err.name === 'NetworkError';
}
