import { BootstrapBuilder } from '../app/bootstrap-builder.js';

/**
 * `npm run bootstrap`: keep a tenant's bootstrap for new devices in the server's bootstrap
 * directory (see src/app/bootstrap-builder.ts). Run it beside the server, which must be started
 * with the same ORDERLOG_BOOTSTRAP_DIR.
 */
export const BOOTSTRAP_USAGE = `npm run bootstrap [-- --once]

Follows the server as a device of one tenant and writes that tenant's bootstrap (the log and the
views as one device database file) into the server's bootstrap directory whenever enough events
arrived since the last one. New devices take it in, then pull the rest. --once: sync, write one
if due, and exit.

Environment variables:
  ORDERLOG_SERVER_URL           the server (e.g. http://127.0.0.1:8787)
  ORDERLOG_TOKEN                a device token of the tenant to build for
  ORDERLOG_BOOTSTRAP_DIR        the server's bootstrap directory (its ORDERLOG_BOOTSTRAP_DIR)
  ORDERLOG_BOOTSTRAP_WORK       the builder's own device folder (default <dir>/<tenant>/.builder)
  ORDERLOG_BOOTSTRAP_EVERY      build again after this many new events (default 10000)
  ORDERLOG_BOOTSTRAP_INTERVAL_MS  pause between syncs (default 30000)
`;

function positive(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive whole number, got ${JSON.stringify(raw)}`);
  return n;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(BOOTSTRAP_USAGE);
    return;
  }
  const env = process.env;
  const missing = ['ORDERLOG_SERVER_URL', 'ORDERLOG_TOKEN', 'ORDERLOG_BOOTSTRAP_DIR'].filter((n) => !env[n]);
  if (missing.length > 0) throw new Error(`set ${missing.join(', ')} (see npm run bootstrap -- --help)`);
  const builder = await BootstrapBuilder.open({
    serverUrl: env.ORDERLOG_SERVER_URL!,
    token: env.ORDERLOG_TOKEN!,
    dir: env.ORDERLOG_BOOTSTRAP_DIR!,
    ...(env.ORDERLOG_BOOTSTRAP_WORK ? { workDir: env.ORDERLOG_BOOTSTRAP_WORK } : {}),
    every: positive(env, 'ORDERLOG_BOOTSTRAP_EVERY'),
    intervalMs: positive(env, 'ORDERLOG_BOOTSTRAP_INTERVAL_MS'),
    log: (line) => console.log(`[bootstrap ${new Date().toISOString()}] ${line}`),
  });
  try {
    if (argv.includes('--once')) {
      await builder.round();
      return;
    }
    const stop = new AbortController();
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
    await builder.run(stop.signal);
  } finally {
    await builder.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
