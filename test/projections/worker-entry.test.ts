import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { foldWorkerBundle } from '../../src/projections/worker-entry.js';
import { openLocalStore } from '../../src/store/index.js';
import { tempDirs } from './support.js';

const tmp = tempDirs();
const made: string[] = [];
afterAll(() => {
  tmp.cleanup();
  // The cache entries this test made (named from the temporary modules' paths): code and manifest.
  for (const f of made) {
    rmSync(f, { force: true });
    rmSync(f.replace(/-[0-9a-f]+\.mjs$/, '.json'), { force: true });
  }
});

/** A projection module outside the source tree (TypeScript, as a source run loads it), reporting `marker`. */
function projectionModule(file: string, marker: string): void {
  writeFileSync(
    file,
    `import { orderListProjection } from ${JSON.stringify(fileURLToPath(new URL('../../src/projections/order-list.ts', import.meta.url)))};
export const marker: string = ${JSON.stringify(marker)};
export function markedOrderList() { return orderListProjection(); }
`,
  );
}

describe('the fold worker of a source run', () => {
  it('is bundled once, kept while the files it holds are unchanged, and built again when one changes', async () => {
    const file = tmp.file('marked-projection.ts');
    projectionModule(file, 'first');
    const url = pathToFileURL(file).href;
    const first = await foldWorkerBundle([url]);
    const bundle = fileURLToPath(first);
    made.push(bundle);
    expect(readFileSync(bundle, 'utf8')).toContain('"first"');
    const built = statSync(bundle).mtimeMs;

    // Unchanged inputs: the same file, not written again.
    const again = await foldWorkerBundle([url]);
    expect(again.href).toBe(first.href);
    expect(statSync(bundle).mtimeMs).toBe(built);

    // An input changed (same size, so only its contents tell): built again, as another file.
    projectionModule(file, 'other');
    const rebuilt = await foldWorkerBundle([url]);
    made.push(fileURLToPath(rebuilt));
    expect(rebuilt.href).not.toBe(first.href);
    expect(readFileSync(fileURLToPath(rebuilt), 'utf8')).toContain('"other"');
    expect(readFileSync(fileURLToPath(rebuilt), 'utf8')).not.toContain('"first"');
    // The earlier build stays for a worker that may be starting from it.
    expect(readFileSync(bundle, 'utf8')).toContain('"first"');
  });

  it('starts as a worker that loads its projections from the bundle and says it is ready', async () => {
    const file = tmp.file('marked-projection.ts');
    projectionModule(file, 'ready');
    const url = pathToFileURL(file).href;
    const entry = await foldWorkerBundle([url]);
    made.push(fileURLToPath(entry));
    const db = tmp.file();
    openLocalStore(db).close();
    const worker = new Worker(entry, {
      workerData: {
        file: db,
        prefix: '__rebuild_',
        batchSize: 10,
        cacheSize: 10,
        window: 2,
        projections: [{ name: 'order_list', module: url, factory: 'markedOrderList' }],
        partition: { index: 0, count: 1 },
      },
    });
    try {
      const message = await new Promise<{ kind: string; error?: string }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      expect(message).toEqual({ kind: 'ready' });
    } finally {
      await worker.terminate();
    }
  });
});
