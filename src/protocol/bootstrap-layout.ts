import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { BootstrapManifest } from './sync-api.js';

/**
 * How bootstraps lie on disk between their builder (`npm run bootstrap`) and the server that
 * hands them out: one folder per tenant under the server's bootstrap directory, holding
 * `<id>.sqlite` files and `current.json`, the manifest of the one to use.
 */

/** The manifest as stored: it names its tenant, so a file in the wrong folder is never served. */
export const StoredBootstrap = BootstrapManifest.extend({ tenant: z.string().min(1) });
export type StoredBootstrap = z.infer<typeof StoredBootstrap>;

export const CURRENT_MANIFEST = 'current.json';

/** A tenant's folder: its name encoded so that no tenant id can reach outside the directory. */
export function tenantFolder(dir: string, tenant: string): string {
  return join(dir, encodeURIComponent(tenant).replace(/\./g, '%2E'));
}

export function bootstrapFile(folder: string, id: string): string {
  return join(folder, `${id}.sqlite`);
}

/** A tenant folder's current manifest, or null: none yet, or one that does not parse. */
export function readCurrentManifest(folder: string): StoredBootstrap | null {
  try {
    const parsed = StoredBootstrap.safeParse(JSON.parse(readFileSync(join(folder, CURRENT_MANIFEST), 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
