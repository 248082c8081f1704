import pg from 'pg';
import type { RelayLease } from '../../bus/relay.js';
import { LOCK_CLASS_RELAY, lockKey } from './migrate.js';
import { SQL } from './sql.js';

/**
 * The relay's lease on PostgreSQL: a session-level advisory lock on one dedicated connection.
 * The process holding it relays; when it dies (or its connection drops) PostgreSQL frees the
 * lock and another server's next attempt takes over from the stored checkpoint.
 */
export class PgRelayLease implements RelayLease {
  private client: pg.Client | null = null;
  private holding = false;

  constructor(
    private readonly connectionString: string,
    private readonly schema: string,
  ) {}

  async acquire(): Promise<boolean> {
    if (this.holding && this.client) return true;
    if (!this.client) {
      const client = new pg.Client({ connectionString: this.connectionString });
      client.on('error', () => this.drop(client));
      client.on('end', () => this.drop(client));
      await client.connect();
      this.client = client;
    }
    const { rows } = await this.client.query<{ ok: boolean }>(SQL.relayLeader, [LOCK_CLASS_RELAY, lockKey(this.schema)]);
    this.holding = rows[0]!.ok;
    return this.holding;
  }

  held(): boolean {
    return this.holding;
  }

  async release(): Promise<void> {
    const client = this.client;
    this.drop(client);
    // Closing the session frees the lock.
    await client?.end().catch(() => undefined);
  }

  private drop(client: pg.Client | null): void {
    if (client && this.client !== client) return;
    this.client = null;
    this.holding = false;
  }
}
