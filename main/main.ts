import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ElectronMain } from './electron-api.js';
import { runMain } from './app-main.js';

// Loaded at runtime so the project typechecks without the optional `electron` package.
const electron = createRequire(import.meta.url)('electron') as ElectronMain;

const here = fileURLToPath(new URL('.', import.meta.url));
// dist/main/main.js → dist-renderer/ (same layout in the source tree and in the asar).
const rendererDir = join(here, '..', '..', 'dist-renderer');

runMain(electron, process.env, { preload: join(here, 'preload.cjs'), rendererDir, rendererIndex: join(rendererDir, 'index.html') });
