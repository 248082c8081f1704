import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDevice } from '../app/device.js';
import { createHandlers } from '../app/handlers.js';
import { serveBrowserMode } from '../app/rpc-server.js';
import { BROWSER_SESSION_FILE } from '../app/device.js';
import { startServer } from '../server/index.js';
import { loadTokensFromEnv, type TokenEntry } from '../server/tokens.js';

/**
 * `npm start`: the central server (embedded SQLite under ./data), then the desktop app on a
 * device store in ./data/device-1. Electron where its binary exists; browser mode otherwise.
 */

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const defaultRendererDir = join(root, 'dist-renderer');

export const START_USAGE = `npm start [-- --devices N]

Starts the central server (embedded SQLite) and N desktop devices (default 1, at most 4) against
it: the Electron app where its binary exists, browser mode otherwise (one address per device).
Each device keeps its own store in <data>/device-<n>; the first run seeds its settings (server
URL, token, user), later runs keep whatever was saved in Settings.

Environment variables (the same names as \`npm run server\`, see \`npm run server -- --help\`):
  ORDERLOG_DATA        folder for everything npm start keeps (default ./data)
  ORDERLOG_DB          the server's SQLite file (default <ORDERLOG_DATA>/server.sqlite)
  ORDERLOG_PORT        the server's port (default 4710 here; \`npm run server\` defaults to 8787)
  ORDERLOG_HOST        the server's interface (default 127.0.0.1)
  ORDERLOG_APP_PORT    browser mode's first port (default 4780; device n uses 4780 + n - 1)
  ORDERLOG_RENDERER_DIR  a built renderer to serve (default dist-renderer/, built on first run)
  ORDERLOG_TOKENS, ORDERLOG_TOKENS_FILE   server tokens; without them a development token per
                       device is generated in <ORDERLOG_DATA>/dev-token[-n]
Deprecated (still read, with a warning): ORDERLOG_SERVER_PORT (use ORDERLOG_PORT).
`;

export interface StartConfig {
  dataDir: string;
  serverDb: string;
  serverPort: number;
  serverHost: string;
  appPort: number;
  rendererDir: string;
  devices: number;
  help: boolean;
  /** One line per deprecated name in use. */
  warnings: string[];
}

const MAX_DEVICES = 4;

function portFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${name} must be a port number (0-65535), got ${JSON.stringify(raw)}`);
  return port;
}

/** `npm start`'s settings from its arguments and environment; throws with a plain sentence on bad input. */
export function startConfig(env: NodeJS.ProcessEnv, argv: string[], cwd = process.cwd()): StartConfig {
  const warnings: string[] = [];
  const dataDir = resolve(env.ORDERLOG_DATA || join(cwd, 'data'));
  let serverPort = portFrom(env, 'ORDERLOG_PORT', 4710);
  if (env.ORDERLOG_SERVER_PORT !== undefined && env.ORDERLOG_SERVER_PORT !== '') {
    if (env.ORDERLOG_PORT === undefined || env.ORDERLOG_PORT === '') {
      serverPort = portFrom(env, 'ORDERLOG_SERVER_PORT', 4710);
      warnings.push('ORDERLOG_SERVER_PORT is deprecated: use ORDERLOG_PORT (the name `npm run server` reads).');
    } else {
      warnings.push('ORDERLOG_SERVER_PORT is deprecated and ignored because ORDERLOG_PORT is set.');
    }
  }
  let devices = 1;
  const help = argv.includes('--help') || argv.includes('-h');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const inline = /^--devices=(.*)$/.exec(arg)?.[1];
    if (arg === '--devices' || inline !== undefined) {
      const value = inline ?? argv[++i];
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > MAX_DEVICES) throw new Error(`--devices takes a number from 1 to ${MAX_DEVICES}, got ${JSON.stringify(value ?? '')}`);
      devices = n;
    } else if (arg !== '--help' && arg !== '-h') {
      throw new Error(`unknown argument ${JSON.stringify(arg)} (try npm start -- --help)`);
    }
  }
  return {
    dataDir,
    serverDb: resolve(env.ORDERLOG_DB || join(dataDir, 'server.sqlite')),
    serverPort,
    serverHost: env.ORDERLOG_HOST || '127.0.0.1',
    appPort: portFrom(env, 'ORDERLOG_APP_PORT', 4780),
    rendererDir: env.ORDERLOG_RENDERER_DIR ? resolve(env.ORDERLOG_RENDERER_DIR) : defaultRendererDir,
    devices,
    help,
    warnings,
  };
}

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

export interface DeviceCredential {
  token: string;
  userId: string;
}

/**
 * Tokens from the environment (every device uses its device token), or generated development
 * tokens: data/dev-token for device 1 (user "dev"), data/dev-token-<n> for device n (user
 * "dev-<n>"), so two devices show up as two people in the history and the conflict inbox.
 */
export function serverTokens(env: NodeJS.ProcessEnv, dir: string, devices = 1): { tokens: TokenEntry[]; deviceToken: string; userId: string; devices: DeviceCredential[] } {
  if (env.ORDERLOG_TOKENS || env.ORDERLOG_TOKENS_FILE) {
    const tokens = loadTokensFromEnv(env);
    const device = tokens.find((t) => t.roles.includes('device')) ?? tokens[0]!;
    const credential = { token: device.token, userId: device.user };
    return { tokens, deviceToken: device.token, userId: device.user, devices: Array.from({ length: devices }, () => credential) };
  }
  const tokens: TokenEntry[] = [];
  for (let n = 1; n <= devices; n++) {
    const file = join(dir, n === 1 ? 'dev-token' : `dev-token-${n}`);
    let token = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
    if (token.length < 16) {
      token = randomBytes(24).toString('hex');
      writeFileSync(file, `${token}\n`, { mode: 0o600 });
    }
    tokens.push({ token, tenant: 'dev', user: n === 1 ? 'dev' : `dev-${n}`, roles: ['device', 'admin'] });
  }
  const creds = tokens.map((t) => ({ token: t.token, userId: t.user }));
  return { tokens, deviceToken: creds[0]!.token, userId: creds[0]!.userId, devices: creds };
}

async function ensureRendererBuilt(rendererDir: string): Promise<void> {
  if (existsSync(join(rendererDir, 'index.html'))) return;
  if (rendererDir !== defaultRendererDir) throw new Error(`ORDERLOG_RENDERER_DIR=${rendererDir} holds no built renderer (index.html)`);
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
  const cfg = startConfig(process.env, process.argv.slice(2));
  if (cfg.help) {
    process.stdout.write(START_USAGE);
    return;
  }
  for (const w of cfg.warnings) console.warn(`orderlog: ${w}`);
  const dataDir = cfg.dataDir;
  mkdirSync(dataDir, { recursive: true });
  const { tokens, devices: credentials } = serverTokens(process.env, dataDir, cfg.devices);
  const server = await startServer({ backend: 'sqlite', file: cfg.serverDb, tokens, port: cfg.serverPort, host: cfg.serverHost });
  console.log(`Central server at ${server.url} (data in ${dataDir})`);
  await ensureRendererBuilt(cfg.rendererDir);

  const stops: (() => Promise<void>)[] = [];
  const electron = resolveElectron();

  for (let n = 1; n <= cfg.devices; n++) {
    const deviceDir = join(dataDir, `device-${n}`);
    mkdirSync(deviceDir, { recursive: true });
    const { token, userId } = credentials[n - 1]!;
    // Electron keeps one instance per user profile, so further devices always run in browser mode.
    if (n === 1 && electron.ok) {
      await ensureMainCompiled();
      const child: ChildProcess = spawn(electron.binary, [root], {
        stdio: 'inherit',
        env: { ...process.env, ORDERLOG_DATA_DIR: deviceDir, ORDERLOG_SERVER_URL: server.url, ORDERLOG_TOKEN: token, ORDERLOG_USER: userId },
      });
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      stops.push(async () => {
        if (child.exitCode === null) child.kill('SIGTERM');
        await exited;
      });
      void exited.then(() => shutdown(0));
      console.log(`Device 1: the desktop app (Electron) on ${deviceDir}. Ctrl-C stops everything.`);
      continue;
    }
    // The server URL, token and user seed a new device only: later runs keep what was saved in Settings.
    const device = await openDevice({ dataDir: deviceDir, serverUrl: server.url, token, userId });
    const handlers = createHandlers(device);
    const web = await serveBrowserMode({
      handlers,
      onStatus: (listener) => device.onStatus(listener),
      snapshot: () => device.statusSnapshot(),
      sessionFile: join(deviceDir, BROWSER_SESSION_FILE),
      port: cfg.appPort === 0 ? 0 : cfg.appPort + n - 1,
      host: '127.0.0.1',
      rendererDir: cfg.rendererDir,
    });
    stops.unshift(() => web.close().then(() => device.close()));
    const saved = device.currentSettings().serverUrl;
    const target = saved === server.url ? '' : saved ? ` (it syncs with ${saved}, as saved in its Settings)` : ' (sync is off in its Settings)';
    if (n === 1 && !electron.ok) console.log(`Electron is not available here (${electron.reason}); browser mode.`);
    // The address carries this run's key in its fragment: whoever opens it is that device's one browser.
    console.log(`Device ${n} (${device.currentSettings().userId})${target}: open ${web.launchUrl}`);
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
