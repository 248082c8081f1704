import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { foldWorkerBundle, foldWorkerExecArgv, startFoldWorker, withoutPreloads } from '../../src/projections/worker-entry.js';
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

  /** Start the bundled worker over a new store (`start` given the entry and its data); resolves with its first message. */
  async function firstMessage(start: (entry: URL, workerData: unknown) => Worker = (entry, workerData) => new Worker(entry, { workerData })): Promise<{ kind: string; error?: string }> {
    const file = tmp.file('marked-projection.ts');
    projectionModule(file, 'ready');
    const url = pathToFileURL(file).href;
    const entry = await foldWorkerBundle([url]);
    made.push(fileURLToPath(entry));
    const db = tmp.file();
    openLocalStore(db).close();
    const worker = start(entry, {
        file: db,
        prefix: '__rebuild_',
        batchSize: 10,
        cacheSize: 10,
        window: 2,
        projections: [{ name: 'order_list', module: url, factory: 'markedOrderList' }],
        partition: { index: 0, count: 1 },
    });
    try {
      return await new Promise<{ kind: string; error?: string }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
    } finally {
      await worker.terminate();
    }
  }

  it('starts as a worker that loads its projections from the bundle and says it is ready', async () => {
    expect(await firstMessage()).toEqual({ kind: 'ready' });
  });

  it("starts without the process's module preloads (a worker inherits them; the bundle needs none), leaving out the options a worker refuses", async () => {
    const trace = tmp.file('preloaded.txt');
    const preload = tmp.file('preload.mjs');
    writeFileSync(preload, `import { appendFileSync } from 'node:fs';\nappendFileSync(${JSON.stringify(trace)}, 'loaded\\n');\n`);
    const href = pathToFileURL(preload).href;
    const execArgv = ['--import', href, '--expose-gc', `--import=${href}`, '-r', '/x.cjs', '--require=/x.cjs', '--loader', 'tsx', '--experimental-loader=tsx', '--trace-warnings'];
    expect(withoutPreloads(execArgv)).toEqual(['--expose-gc', '--trace-warnings']);
    // A source run (this test) filters them; a compiled build would inherit everything.
    expect(foldWorkerExecArgv(execArgv)).toEqual(withoutPreloads(execArgv));

    // Inherited, the preload runs in the worker too (what leaving it out saves).
    const inherited = ['--import', href];
    expect(await firstMessage((entry, workerData) => new Worker(entry, { workerData, execArgv: inherited }))).toEqual({ kind: 'ready' });
    expect(readFileSync(trace, 'utf8')).toBe('loaded\n');
    rmSync(trace);
    // Node refuses --expose-gc in a worker's options (a V8 option: it applies to the whole process anyway).
    expect(() => new Worker(new URL('data:text/javascript,'), { execArgv: ['--expose-gc'] })).toThrow(/--expose-gc/);
    // Started as a rebuild starts it: without the preload, and without what Node refuses.
    expect(await firstMessage((entry, workerData) => startFoldWorker(entry, workerData, [...inherited, '--expose-gc', '--trace-warnings']))).toEqual({ kind: 'ready' });
    expect(existsSync(trace)).toBe(false);
  });
});
