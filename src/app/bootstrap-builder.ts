import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readCurrentManifest, tenantFolder, type StoredBootstrap } from '../protocol/bootstrap-layout.js';
import { SyncHttpClient } from '../sync/http-client.js';
import { Device } from './device.js';
import { publishBootstrap } from './device-bootstrap.js';

export interface BootstrapBuilderOptions {
  serverUrl: string;
  /** A device token of the tenant to build for (the tenant is the token's). */
  token: string;
  /** The server's bootstrap directory (ORDERLOG_BOOTSTRAP_DIR). */
  dir: string;
  /** The builder's own device folder (default: `.builder` in the tenant's folder). */
  workDir?: string;
  /** Build again once this many events arrived since the current bootstrap (default 10,000). */
  every?: number;
  /** Pause between syncs in ms (default 30 s). */
  intervalMs?: number;
  log?: (line: string) => void;
}

/**
 * The bootstrap builder (`npm run bootstrap`): a device that follows the whole tenant, syncing
 * every interval, and writes its file as the tenant's bootstrap whenever enough events arrived
 * since the last one. It is a device like any other (same pull, contract, quarantine and views),
 * so what a new device takes in is exactly what it would have built by pulling.
 */
export class BootstrapBuilder {
  private constructor(
    readonly device: Device,
    readonly tenant: string,
    private readonly opts: BootstrapBuilderOptions,
    private published: number | null,
  ) {}

  static async open(opts: BootstrapBuilderOptions): Promise<BootstrapBuilder> {
    const client = new SyncHttpClient({ baseUrl: opts.serverUrl, token: opts.token, timeoutMs: 120_000 });
    const { tenant } = await client.session();
    const folder = tenantFolder(opts.dir, tenant);
    const device = await Device.open({ dataDir: opts.workDir ?? join(folder, '.builder'), serverUrl: opts.serverUrl, autoSync: false });
    device.engine.setClient(client);
    return new BootstrapBuilder(device, tenant, opts, readCurrentManifest(folder)?.events ?? null);
  }

  /** Sync, then write a bootstrap if one is due. Returns the one written, or null. */
  async round(): Promise<StoredBootstrap | null> {
    const report = await this.device.engine.syncOnce();
    const head = this.device.store.log.headPosition();
    const due = head > 0 && (this.published === null || head - this.published >= (this.opts.every ?? 10_000));
    this.opts.log?.(`synced ${report.pulledEvents} events (log at ${head})${due ? ', building a bootstrap' : ''}`);
    if (!due) return null;
    const started = Date.now();
    const manifest = await publishBootstrap({ store: this.device.store, engine: this.device.engine, tenant: this.tenant, dir: this.opts.dir });
    this.published = manifest.events;
    this.opts.log?.(`bootstrap ${manifest.id.slice(0, 12)}: ${manifest.events} events, ${manifest.bytes} bytes, in ${Date.now() - started} ms`);
    return manifest;
  }

  /** Rounds until `signal` aborts; a failed round is logged and retried at the next interval. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.round();
      } catch (err) {
        this.opts.log?.(`round failed: ${(err as Error).message}`);
      }
      await sleep(this.opts.intervalMs ?? 30_000, undefined, { signal }).catch(() => undefined);
    }
  }

  close(): Promise<void> {
    return this.device.close();
  }
}
