import { existsSync, statSync } from 'node:fs';
import { bootstrapFile, readCurrentManifest, tenantFolder } from '../protocol/bootstrap-layout.js';
import type { BootstrapManifest } from '../protocol/sync-api.js';

/**
 * The bootstraps the server hands out (issue 17), as their builder (`npm run bootstrap`, run by
 * the operator like the worker) lays them out (protocol/bootstrap-layout.ts). The server only reads.
 */
export class BootstrapFiles {
  constructor(private readonly dir: string | null) {}

  /**
   * The tenant's current bootstrap, or null: none published, or one the server cannot vouch for
   * (an unreadable manifest, another tenant's, a file missing or of another size). Devices pull then.
   */
  current(tenant: string): BootstrapManifest | null {
    if (this.dir === null) return null;
    const folder = tenantFolder(this.dir, tenant);
    const stored = readCurrentManifest(folder);
    if (!stored || stored.tenant !== tenant) return null;
    const file = bootstrapFile(folder, stored.id);
    if (!existsSync(file) || statSync(file).size !== stored.bytes) return null;
    const { tenant: _, ...manifest } = stored;
    return manifest;
  }

  /** The path of a bootstrap file of this tenant (the current one, or an earlier one still kept for downloads under way). */
  file(tenant: string, id: string): { path: string; bytes: number } | null {
    if (this.dir === null || !/^[0-9a-f]{64}$/.test(id)) return null;
    const path = bootstrapFile(tenantFolder(this.dir, tenant), id);
    if (!existsSync(path)) return null;
    return { path, bytes: statSync(path).size };
  }
}
