import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDevice } from '../app/device.js';
import { createHandlers } from '../app/handlers.js';
import { serveBrowserMode } from '../app/rpc-server.js';
import { startServer } from '../server/index.js';
import { loadTokensFromEnv, type TokenEntry } from '../server/tokens.js';

/**
 * `npm start`: the central server (embedded SQLite under ./data), then the desktop app on a
 * device store in ./data/device-1. Electron where its binary exists; browser mode otherwise.
 */

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const dataDir = resolve(process.env.ORDERLOG_DATA ?? join(process.cwd(), 'data'));
const rendererDir = join(root, 'dist-renderer');

export type ElectronResolution = { ok: true; binary: string } | { ok: false; reason: string };

/** Is there a runnable Electron? The npm package exports the binary's path once it has downloaded it. */
export function resolveElectron(req: NodeJS.Require = createRequire(import.meta.url)): ElectronResolution {
  try {
    req.resolve('electron');
  } catch {
    return { ok: false, reason: 'the electron package is not installed' };
  }
  let binary: unknown;
  try {
    binary = req('electron');
  } catch (err) {
    return { ok: false, reason: `the electron package cannot load: ${(err as Error).message.split('\n')[0]}` };
  }
  if (typeof binary !== 'string' || !existsSync(binary)) return { ok: false, reason: 'the Electron binary was not downloaded' };
  return { ok: true, binary };
}

/** Tokens from the environment, or a generated development token kept in data/dev-token. */
export function serverTokens(env: NodeJS.ProcessEnv, dir: string): { tokens: TokenEntry[]; deviceToken: string; userId: string } {
  if (env.ORDERLOG_TOKENS || env.ORDERLOG_TOKENS_FILE) {
    const tokens = loadTokensFromEnv(env);
    const device = tokens.find((t) => t.roles.includes('device')) ?? tokens[0]!;
    return { tokens, deviceToken: device.token, userId: device.user };
  }
  const file = join(dir, 'dev-token');
  let token = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  if (token.length < 16) {
    token = randomBytes(24).toString('hex');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
  }
  return { tokens: [{ token, tenant: 'dev', user: 'dev', roles: ['device', 'admin'] }], deviceToken: token, userId: 'dev' };
}

async function ensureRendererBuilt(): Promise<void> {
  if (existsSync(join(rendererDir, 'index.html'))) return;
  console.log('Building the renderer (first run)…');
  const { build } = await import('vite');
  await build({ configFile: join(root, 'vite.config.ts'), root: join(root, 'renderer'), logLevel: 'warn' });
}

async function ensureMainCompiled(): Promise<string> {
  const entry = join(root, 'dist', 'main', 'main.js');
  if (existsSync(entry)) return entry;
  console.log('Compiling the main process (first run)…');
  await new Promise<void>((ok, fail) => {
    const tsc = spawn(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
    tsc.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`tsc exited with ${code}`))));
  });
  return entry;
}

async function main(): Promise<void> {
  mkdirSync(dataDir, { recursive: true });
  const { tokens, deviceToken, userId } = serverTokens(process.env, dataDir);
  const server = await startServer({
    backend: 'sqlite',
    file: join(dataDir, 'server.sqlite'),
    tokens,
    port: Number(process.env.ORDERLOG_SERVER_PORT ?? 4710),
  });
  console.log(`Central server at ${server.url} (data in ${dataDir})`);
  await ensureRendererBuilt();

  const deviceDir = join(dataDir, 'device-1');
  mkdirSync(deviceDir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  const electron = resolveElectron();

  if (electron.ok) {
    await ensureMainCompiled();
    const child: ChildProcess = spawn(electron.binary, [root], {
      stdio: 'inherit',
      env: { ...process.env, ORDERLOG_DATA_DIR: deviceDir, ORDERLOG_SERVER_URL: server.url, ORDERLOG_TOKEN: deviceToken, ORDERLOG_USER: userId },
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    stops.push(async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    });
    void exited.then(() => shutdown(0));
    console.log(`Started the desktop app (Electron) on ${deviceDir}. Ctrl-C stops everything.`);
  } else {
    const device = await openDevice({ dataDir: deviceDir, serverUrl: server.url, token: deviceToken, userId });
    const handlers = createHandlers(device);
    // Stored settings win over openDevice's initial ones; point this dev device at this run's server.
    device.saveSettings({ serverUrl: server.url, token: deviceToken, userId: device.currentSettings().userId });
    const web = await serveBrowserMode({
      handlers,
      onStatus: (listener) => device.onStatus(listener),
      port: Number(process.env.ORDERLOG_APP_PORT ?? 4780),
      host: '127.0.0.1',
      rendererDir,
    });
    stops.push(() => web.close(), () => device.close());
    // The address carries this run's key in its fragment: whoever opens it is the app's one browser.
    console.log(`Electron is not available here (${electron.reason}); browser mode: open ${web.launchUrl}`);
  }
  stops.push(() => server.close());

  let stopping = false;
  async function shutdown(code: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    for (const stop of stops) {
      try {
        await stop();
      } catch (err) {
        console.error('orderlog: error while stopping:', (err as Error).message);
      }
    }
    process.exit(code);
  }
  process.once('SIGINT', () => void shutdown(0));
  process.once('SIGTERM', () => void shutdown(0));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(`orderlog: ${(err as Error).message}`);
    process.exit(1);
  });
}
