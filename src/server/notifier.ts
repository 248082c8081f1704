import { EventEmitter } from 'node:events';

/**
 * Wakes long-polls and live streams when this process stores events. Other server processes
 * writing to the same database are noticed by the waiters' bounded re-check interval.
 */
export class AppendNotifier {
  private readonly emitter = new EventEmitter();
  private closed = false;

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  notify(): void {
    this.emitter.emit('append');
  }

  /** Resolves on the next local append, after `ms`, or at shutdown, whichever comes first. */
  wait(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.emitter.off('append', done);
        this.emitter.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.emitter.on('append', done);
      this.emitter.on('close', done);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
    this.emitter.emit('close');
  }
}
