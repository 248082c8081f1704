import { runFoldWorker } from './fold-worker.js';

/** The fold worker's entry in a compiled build: projection modules are imported by their URL. */
runFoldWorker((url) => import(url) as Promise<Record<string, unknown>>);
