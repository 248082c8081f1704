import { rmSync } from 'node:fs';
import { PULL_CURSOR_START, type BootstrapManifest } from '../protocol/sync-api.js';
import { ReplicaImportError } from '../store/replica-import.js';
import { AuthError } from './errors.js';
import type { SyncClient } from './http-client.js';

/**
 * A new device's first sync from a bootstrap (issue 17): instead of pulling the tenant's whole
 * log page by page (every event parsed, checked, stored and folded on the device's one thread),
 * it downloads the file a device that follows the server built (the log and the views as SQLite
 * pages) and takes it in at page-copy speed, then pulls from the file's cursor on.
 *
 * Only a device that holds nothing takes one: no events, no commands (pending or decided), no
 * quarantine, no kept or evicted orders, the whole tenant as its scope, the first cursor. Its
 * replicated tables are then empty, so replacing them loses nothing. Anything else pulls.
 */
export interface BootstrapTarget {
  /** The device's schema fingerprint: a bootstrap built with another one is not downloaded. */
  fingerprint(): string;
  /** Where to download a bootstrap: a new file in the device's own folder. */
  downloadPath(id: string): string;
  /**
   * Take the downloaded file in, in one transaction that runs `before` first (it throws when the
   * device is no longer blank) and `after` last; the views are re-read from what it holds.
   * Returns the events taken in.
   */
  take(file: string, hooks: { before: () => void; after: () => void }): Promise<{ events: number }>;
}

export type BootstrapOutcome =
  | { used: true; events: number; bytes: number }
  /** Not taken: the reason (none offered is not reported). The device pulled instead. */
  | { used: false; reason: string };

/**
 * Try the tenant's bootstrap. Null: none applies (the device is not blank, the server offers
 * none, or one of another schema); the caller pulls as usual. A failed download or import
 * changes nothing and is reported, and the caller pulls: it must never stop a sync. An
 * authentication failure is the sync's own failure and is thrown.
 */
export async function takeBootstrap(
  client: SyncClient,
  target: BootstrapTarget,
  blank: () => boolean,
  setCheckpoint: (cursor: string) => void,
): Promise<BootstrapOutcome | null> {
  if (!client.bootstrap || !client.downloadBootstrap || !blank()) return null;
  let manifest: BootstrapManifest | null;
  try {
    manifest = await client.bootstrap();
  } catch (err) {
    if (err instanceof AuthError) throw err;
    return { used: false, reason: `the bootstrap could not be asked for: ${(err as Error).message}` };
  }
  if (!manifest || manifest.schema !== target.fingerprint() || manifest.cursor === PULL_CURSOR_START) return null;
  const file = target.downloadPath(manifest.id);
  // A download a crash interrupted is started over.
  rmSync(file, { force: true });
  try {
    await client.downloadBootstrap(manifest, file);
    const { events } = await target.take(file, {
      before: () => {
        if (!blank()) throw new ReplicaImportError('the device is no longer blank (it synced or took a command meanwhile)');
      },
      after: () => setCheckpoint(manifest.cursor),
    });
    return { used: true, events, bytes: manifest.bytes };
  } catch (err) {
    if (err instanceof AuthError) throw err;
    return { used: false, reason: (err as Error).message };
  } finally {
    rmSync(file, { force: true });
  }
}
