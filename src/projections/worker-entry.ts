import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Where a fold worker's code comes from. A compiled build starts `rebuild-worker.js`, which
 * imports the projections' modules by URL. A source (TypeScript) run (`npm start`, the benches)
 * cannot: on Node 20 the loader given by `--import tsx` does not reach worker threads, and
 * registering tsx in each worker, then compiling and loading its module graph there, took
 * 0.6 s of two cores before the first page was folded (most of a 1M-event rebuild's head
 * start). So a source run bundles the worker and the projections' modules with esbuild (a dev
 * dependency, as tsx is), keeps the bundle until a file it holds changes, and starts each
 * worker from that one module.
 */

const compiled = !import.meta.url.endsWith('.ts');
const bundles = new Map<string, Promise<URL>>();

/** The worker module for these projection modules (`PortableProjection.module` URLs). */
export function foldWorkerEntry(modules: readonly string[]): Promise<URL> {
  if (compiled) return Promise.resolve(new URL('./rebuild-worker.js', import.meta.url));
  const key = [...new Set(modules)].sort().join('\n');
  let bundle = bundles.get(key);
  if (!bundle) {
    bundle = foldWorkerBundle(key.split('\n'));
    // A failed bundle is not kept: the rebuild folds on its own thread and the next one tries again.
    bundle.catch(() => bundles.delete(key));
    bundles.set(key, bundle);
  }
  return bundle;
}

/** Node options that preload modules, each followed by (or joined with `=` to) the module. */
const PRELOAD_OPTIONS = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader']);

/**
 * Start a fold worker on `entry`. In a source run it starts without the process's module
 * preloads: a worker inherits them, and the bundle needs none (registering tsx's loader in
 * each worker was half of its start: two workers loaded in 0.42 s with it, 0.22 s without).
 * Options given explicitly must be ones a worker accepts: Node refuses V8 and per-process
 * options there (`--expose-gc`, say), which apply to the whole process anyway, and names them
 * in its error, so they are left out too; if it still refuses, the worker inherits everything
 * as a compiled build's does.
 */
export function startFoldWorker(entry: URL, workerData: unknown, processExecArgv: readonly string[] = process.execArgv): Worker {
  let execArgv = foldWorkerExecArgv(processExecArgv);
  for (let attempt = 0; execArgv !== undefined; attempt++) {
    try {
      return new Worker(entry, { workerData, execArgv });
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
      const refused = refusedOptions(err as Error);
      execArgv = refused && attempt === 0 ? execArgv.filter((o) => !refused.has(o)) : undefined;
    }
  }
  return new Worker(entry, { workerData });
}

/** The options named by Node's refusal of a worker's `execArgv` (null: none named). */
function refusedOptions(err: Error): Set<string> | null {
  const listed = /: (.*)$/.exec(err.message)?.[1];
  return listed ? new Set(listed.split(', ')) : null;
}

/** The Node options a fold worker asks for: in a source run, the process's without its module preloads; a compiled build inherits them (undefined). */
export function foldWorkerExecArgv(execArgv: readonly string[] = process.execArgv): string[] | undefined {
  return compiled ? undefined : withoutPreloads(execArgv);
}

/** `execArgv` without the module preloads (`PRELOAD_OPTIONS`) and their modules. */
export function withoutPreloads(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const option = execArgv[i]!;
    if (PRELOAD_OPTIONS.has(option)) i++;
    else if (![...PRELOAD_OPTIONS].some((p) => option.startsWith(`${p}=`))) kept.push(option);
  }
  return kept;
}

const ENTRY_NAME = '<fold worker entry>';

/** Where bundles are kept between processes: next to the dev dependencies that build them. */
function cacheFolder(require: NodeJS.Require): string {
  return join(dirname(dirname(require.resolve('esbuild/package.json'))), '.cache', 'orderlog-fold-worker');
}

/** The inputs' digest, as a cache file names them (their contents, so a checkout or an edit is seen whatever its timestamps). */
function digestOf(files: readonly string[]): string {
  const hash = createHash('sha256');
  for (const f of files) hash.update(f).update('\0').update(readFileSync(f)).update('\0');
  return hash.digest('hex');
}

/**
 * The bundle, from the cache when every file it was built from is unchanged (building it took
 * 0.3-0.5 s of the rebuild's first second: esbuild starts a process and this thread is folding).
 */
export async function foldWorkerBundle(modules: readonly string[]): Promise<URL> {
  const require = createRequire(import.meta.url);
  // The native driver stays outside the bundle, imported by its absolute URL.
  const sqlite = pathToFileURL(require.resolve('better-sqlite3')).href;
  const entry = [
    `import { runFoldWorker } from ${JSON.stringify(fileURLToPath(new URL('./fold-worker.ts', import.meta.url)))};`,
    ...modules.map((m, i) => `import * as m${i} from ${JSON.stringify(fileURLToPath(m))};`),
    `const modules = { ${modules.map((m, i) => `${JSON.stringify(m)}: m${i}`).join(', ')} };`,
    // A module the bundle does not hold is imported as the compiled build does (and fails there the same way).
    'runFoldWorker((url) => modules[url] ? Promise.resolve(modules[url]) : import(url));',
  ].join('\n');
  const esbuildVersion = (require('esbuild/package.json') as { version: string }).version;
  const folder = cacheFolder(require);
  const name = createHash('sha256').update(`${esbuildVersion}\0${sqlite}\0${entry}`).digest('hex').slice(0, 24);
  const inputsFile = join(folder, `${name}.json`);
  try {
    const kept = JSON.parse(readFileSync(inputsFile, 'utf8')) as KeptBundle;
    if (digestOf(kept.inputs) === kept.digest && existsSync(join(folder, kept.file))) return pathToFileURL(join(folder, kept.file));
  } catch {
    // Not built yet, or an input is gone: build it.
  }
  const esbuild = (await import(pathToFileURL(require.resolve('esbuild')).href)) as typeof import('esbuild');
  const workingDir = fileURLToPath(new URL('.', import.meta.url));
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir: workingDir, loader: 'ts', sourcefile: ENTRY_NAME },
    absWorkingDir: workingDir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [
      {
        name: 'native-driver',
        setup(build) {
          build.onResolve({ filter: /^better-sqlite3$/ }, () => ({ path: sqlite, external: true }));
        },
      },
    ],
  });
  const inputs = Object.keys(result.metafile.inputs)
    // The entry is generated (its text is in the bundle's name); the rest are files.
    .filter((f) => f !== ENTRY_NAME)
    .map((f) => resolve(workingDir, f))
    .sort();
  // The code is named by what it was built from, and the manifest naming it is renamed into
  // place last: processes building at once never pair one's manifest with another's code.
  const digest = digestOf(inputs);
  const file = `${name}-${digest.slice(0, 16)}.mjs`;
  mkdirSync(folder, { recursive: true });
  const temp = `.${process.pid}-${Date.now()}`;
  writeFileSync(join(folder, file + temp), result.outputFiles[0]!.contents);
  renameSync(join(folder, file + temp), join(folder, file));
  writeFileSync(inputsFile + temp, JSON.stringify({ inputs, digest, file } satisfies KeptBundle));
  renameSync(inputsFile + temp, inputsFile);
  pruneBundles(folder, name, file);
  return pathToFileURL(join(folder, file));
}

/** A cache manifest: the files a bundle was built from, their digest and the bundle's file. */
interface KeptBundle {
  inputs: string[];
  digest: string;
  file: string;
}

/** Earlier builds of the same entry, once no worker can still be starting from them (an hour). */
function pruneBundles(folder: string, name: string, keep: string): void {
  const before = Date.now() - 3600_000;
  for (const f of readdirSync(folder)) {
    if (!f.startsWith(`${name}-`) || f === keep) continue;
    try {
      if (statSync(join(folder, f)).mtimeMs < before) rmSync(join(folder, f), { force: true });
    } catch {
      // Removed by another process meanwhile.
    }
  }
}
