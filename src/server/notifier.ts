import { EventEmitter } from 'node:events';

export interface AppendNotifierOptions {
  /**
   * Reads a marker that changes whenever events become visible to pulls, whichever process
   * stored them (e.g. the newest visible position). One timer polls it for all waiters together,
   * instead of every waiting stream re-querying the store. Without it, every tick wakes them all.
   */
  probe?: () => Promise<number | string>;
  /** How often other processes' appends are looked for (default 250 ms). */
  intervalMs?: number;
  /** Tells the other server processes of this process's appends (PostgreSQL LISTEN/NOTIFY). */
  announce?: () => void;
}

/**
 * Wakes long-polls and live streams when this process stores events, and (through one shared
 * re-check timer, running only while someone waits) when another server process did.
 */
export class AppendNotifier {
  private readonly emitter = new EventEmitter();
  private closed = false;
  private waiters = 0;
  private timer: NodeJS.Timeout | null = null;
  private probing = false;
  private lastMarker: number | string | null = null;
  private readonly probe: (() => Promise<number | string>) | undefined;
  private readonly intervalMs: number;
  private readonly announce: (() => void) | undefined;

  constructor(opts: AppendNotifierOptions = {}) {
    this.emitter.setMaxListeners(0);
    this.probe = opts.probe;
    this.intervalMs = opts.intervalMs ?? 250;
    this.announce = opts.announce;
  }

  /** This process stored events: wake its waiters and tell the other processes. */
  notify(): void {
    this.emitter.emit('append');
    this.announce?.();
  }

  /** Another process announced that it stored events: wake the waiters. */
  peerAppended(): void {
    this.emitter.emit('append');
  }

  /**
   * Resolves on the next append (local, or seen by the re-check), after `ms`, at shutdown, or on
   * `signal`: true when woken, false when the time ran out.
   */
  wait(ms: number, signal?: AbortSignal): Promise<boolean> {
    if (this.closed || signal?.aborted) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (woken: boolean): void => {
        clearTimeout(timer);
        this.emitter.off('append', done);
        this.emitter.off('close', done);
        signal?.removeEventListener('abort', done);
        this.waiters--;
        resolve(woken);
      };
      const done = (): void => finish(true);
      const timer = setTimeout(() => finish(false), ms);
      this.emitter.on('append', done);
      this.emitter.on('close', done);
      signal?.addEventListener('abort', done);
      this.waiters++;
      this.startTimer();
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
    this.stopTimer();
    this.emitter.emit('close');
  }

  private startTimer(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.recheck(), this.intervalMs);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * A waiter queried the store after the last probe's marker was taken (or before the first
   * probe, which therefore always wakes): any change from that marker may be news to it.
   */
  private async recheck(): Promise<void> {
    // Stopped lazily, so waiters that re-wait at once do not restart the timer each time.
    if (this.waiters === 0) {
      this.stopTimer();
      return;
    }
    if (!this.probe) {
      this.peerAppended();
      return;
    }
    if (this.probing) return;
    this.probing = true;
    try {
      const marker = await this.probe();
      const changed = marker !== this.lastMarker;
      this.lastMarker = marker;
      if (changed) this.peerAppended();
    } catch {
      // The waiters' own queries will meet (and report) whatever failed.
      this.peerAppended();
    } finally {
      this.probing = false;
    }
  }
}
