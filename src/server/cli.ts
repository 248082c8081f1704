import { ArchivedEventsError } from '../protocol/errors.js';
import { ConfigError, ENV_HELP, configFromEnv } from './config.js';
import { MigrationRequiredError } from './store/pg/migrate.js';
import { ArchiveError, archivePartitions, ownerPool, parseCutoff, restoreArchive } from './store/pg/archive.js';
import { migrateAsOwner, openRepository, startServer } from './index.js';
import { TokenConfigError } from './tokens.js';

const USAGE = `orderlog central server

Usage:
  npm run server [-- start]        start the HTTP event store (default)
  npm run server -- verify-chain [--tenant T] [--stream S]
                                   check every stream's hash chain; exit 1 at the first broken link
  npm run server -- migrate        apply pending migrations; on PostgreSQL as the owner role
                                   (ORDERLOG_MIGRATE_DATABASE_URL, else ORDERLOG_DATABASE_URL) and grant
                                   the ORDERLOG_DATABASE_URL role what the server needs
  npm run server -- rebuild-projections [--tenant T]
                                   replay the order read model of one tenant, or of every tenant
  npm run server -- archive --before <date|position> [--dir D]
                                   (PostgreSQL) write every cold partition wholly before the date or
                                   position to D (default ./archives), read it back, then drop it
  npm run server -- restore <file> put an archived partition back (newest archive first)
  npm run server -- --help

${ENV_HELP}
`;

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function start(): Promise<void> {
  const cfg = configFromEnv(process.env, { needTokens: true });
  const server = await startServer(cfg);
  // One plain line on stdout so scripts (and tests) can find the address.
  process.stdout.write(`orderlog server listening on ${server.url} (backend ${cfg.backend})\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    server.app.log.info({ signal }, 'shutting down: finishing in-flight requests');
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        server.app.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function verifyChain(args: string[]): Promise<number> {
  const cfg = configFromEnv(process.env, { needTokens: false });
  const repo = await openRepository(cfg);
  try {
    const report = await repo.verifyChain({ tenantId: argValue(args, '--tenant'), streamId: argValue(args, '--stream') });
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (report.ok) process.stdout.write(`chain intact: ${report.eventsChecked} events in ${report.streamsChecked} streams\n`);
    else process.stderr.write(`chain BROKEN at ${report.firstBroken?.tenantId}/${report.firstBroken?.streamId} v${report.firstBroken?.streamVersion}: ${report.firstBroken?.reason}\n`);
    return report.ok ? 0 : 1;
  } finally {
    await repo.close();
  }
}

async function migrate(): Promise<number> {
  const cfg = configFromEnv(process.env, { needTokens: false });
  if (cfg.backend === 'sqlite') {
    const repo = await openRepository(cfg);
    await repo.close();
    process.stdout.write(`SQLite ${cfg.file}: migrations applied\n`);
    return 0;
  }
  const done = await migrateAsOwner({
    ownerConnectionString: cfg.migrateConnectionString ?? cfg.connectionString,
    appConnectionString: cfg.migrateConnectionString ? cfg.connectionString : undefined,
    schema: cfg.schema,
  });
  process.stdout.write(
    `PostgreSQL schema ${cfg.schema ?? 'public'}: ${done.migrations} migrations applied` +
      (done.appRole ? `; role ${done.appRole} granted the server's rights\n` : '\n'),
  );
  return 0;
}

async function rebuildProjections(args: string[]): Promise<number> {
  const cfg = configFromEnv(process.env, { needTokens: false });
  const repo = await openRepository(cfg);
  try {
    const tenant = argValue(args, '--tenant');
    const started = Date.now();
    const { eventsReplayed } = await repo.rebuildProjections(tenant);
    process.stdout.write(`projections rebuilt for ${tenant ? `tenant ${tenant}` : 'every tenant'}: ${eventsReplayed} events replayed in ${Date.now() - started} ms\n`);
    return 0;
  } finally {
    await repo.close();
  }
}

/** Archive and restore change partitions: they run as the owner role, on PostgreSQL only. */
function archiveTarget(): { connectionString: string; schema: string } {
  const cfg = configFromEnv(process.env, { needTokens: false });
  if (cfg.backend === 'sqlite') {
    throw new ArchiveError(
      'archive and restore need the PostgreSQL backend (ORDERLOG_DATABASE_URL): the embedded SQLite store is one file, which is archived whole by copying it while the server is stopped',
    );
  }
  return { connectionString: cfg.migrateConnectionString ?? cfg.connectionString, schema: cfg.schema ?? 'public' };
}

async function archive(args: string[]): Promise<number> {
  const before = argValue(args, '--before');
  if (!before) throw new ArchiveError('archive needs --before <date|position>, e.g. --before 2026-01-01');
  const cutoff = parseCutoff(before);
  const target = archiveTarget();
  const pool = ownerPool(target.connectionString, target.schema);
  try {
    const started = Date.now();
    const done = await archivePartitions(pool, target.schema, cutoff, argValue(args, '--dir') ?? 'archives');
    for (const a of done) process.stdout.write(`archived ${a.partition}: ${a.events} events (positions ${a.firstPosition}..${a.lastPosition}), ${a.bytes} bytes -> ${a.file}\n`);
    process.stdout.write(`${done.length} partition(s) archived in ${Date.now() - started} ms\n`);
    return 0;
  } finally {
    await pool.end();
  }
}

async function restore(args: string[]): Promise<number> {
  const file = args[0];
  if (!file) throw new ArchiveError('restore needs the archive file: npm run server -- restore <file>');
  const target = archiveTarget();
  const pool = ownerPool(target.connectionString, target.schema);
  try {
    const r = await restoreArchive(pool, file);
    process.stdout.write(`restored ${r.partition}: ${r.events} events from ${file}\n`);
    return 0;
  } finally {
    await pool.end();
  }
}

async function main(args: string[]): Promise<number | null> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const command = args[0] ?? 'start';
  if (command === 'start') {
    await start();
    return null;
  }
  if (command === 'verify-chain') return verifyChain(args.slice(1));
  if (command === 'migrate') return migrate();
  if (command === 'rebuild-projections') return rebuildProjections(args.slice(1));
  if (command === 'archive') return archive(args.slice(1));
  if (command === 'restore') return restore(args.slice(1));
  process.stderr.write(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== null) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof TokenConfigError || err instanceof MigrationRequiredError || err instanceof ArchiveError || err instanceof ArchivedEventsError) process.stderr.write(`orderlog server: ${err.message}\n`);
    else process.stderr.write(`orderlog server failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
