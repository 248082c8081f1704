import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { SQL } from './sql.js';

/**
 * Cross-process wake-up on one PostgreSQL schema (LISTEN/NOTIFY): a process that stored events
 * announces it on the schema's channel after its commit, and every other server process on the
 * schema wakes its long-polls and live streams at once instead of at its next re-check.
 * Announcements are coalesced (at most one in flight, one more queued), and a process ignores
 * its own. The periodic re-check stays as the safety net (a lost connection, a crash between
 * commit and announcement).
 */
export class PgWake {
  private readonly id = randomUUID();
  private readonly channel: string;
  private client: pg.Client | null = null;
  private connecting: Promise<void> | null = null;
  private sending = false;
  private again = false;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;

  constructor(
    private readonly connectionString: string,
    schema: string,
    private readonly onPeerAppend: () => void,
  ) {
    this.channel = `orderlog_wake_${schema}`;
  }

  /** Connect and LISTEN; reconnects by itself after a lost connection. */
  async start(): Promise<void> {
    await this.connect();
  }

  /** Announce this process's append to the other processes (after its commit). */
  announce(): void {
    if (this.closed) return;
    if (this.sending) {
      this.again = true;
      return;
    }
    this.sending = true;
    void this.send();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private async send(): Promise<void> {
    try {
      do {
        this.again = false;
        const client = this.client;
        if (!client) return;
        await client.query(SQL.notify, [this.channel, this.id]).catch(() => undefined);
      } while (this.again && !this.closed);
    } finally {
      this.sending = false;
    }
  }

  private connect(): Promise<void> {
    this.connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.connectionString });
      const lost = (): void => {
        if (this.client !== client) return;
        this.client = null;
        this.scheduleReconnect();
        // Whatever was announced meanwhile is unknown: let the waiters look.
        this.onPeerAppend();
      };
      client.on('error', lost);
      client.on('end', lost);
      client.on('notification', (n) => {
        if (n.payload !== this.id) this.onPeerAppend();
      });
      try {
        await client.connect();
        await client.query(SQL.listen(pg.escapeIdentifier(this.channel)));
        if (this.closed) await client.end();
        else this.client = client;
      } catch (err) {
        await client.end().catch(() => undefined);
        if (this.closed) return;
        this.scheduleReconnect();
        throw err;
      }
    })().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.connect().catch(() => undefined);
    }, 500);
    this.retry.unref();
  }
}
