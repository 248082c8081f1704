import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { buildApp, type ServerTimeouts } from './app.js';
import { PgRepository } from './store/pg/pg-repository.js';
import type { EventRepository } from './repository.js';
import { READ_MODEL_VERSION } from './store/append-logic.js';
import { SqliteRepository } from './store/sqlite/sqlite-repository.js';
import type { TokenEntry } from './tokens.js';

/** How long close() lets in-flight requests finish before it drops the connections left. */
const SHUTDOWN_GRACE_MS = 2000;

export type { EventRepository, AppendCommand, AppendOutcome, ChainReport, OrderView } from './repository.js';
export type { TokenEntry, Role } from './tokens.js';
export { loadTokensFromEnv, parseTokens, TokenConfigError } from './tokens.js';
export { computeEventHash, canonicalJson, GENESIS_HASH } from './hash.js';
export { SqliteRepository } from './store/sqlite/sqlite-repository.js';
export { PgRepository } from './store/pg/pg-repository.js';
export { migratePg, migrateAsOwner, grantAppRole, MigrationRequiredError } from './store/pg/migrate.js';

export type BackendOptions =
  | { backend: 'sqlite'; file: string }
  | { backend: 'pg'; connectionString: string; schema?: string | undefined; migrateConnectionString?: string | undefined };

export type ServerOptions = BackendOptions & {
  tokens: TokenEntry[];
  logger?: FastifyServerOptions['logger'];
  rateLimit?: { max: number; timeWindowMs: number } | undefined;
  bodyLimit?: number | undefined;
  timeouts?: Partial<ServerTimeouts> | undefined;
  maxLiveStreamsPerToken?: number | undefined;
  authFailures?: { max: number; timeWindowMs: number } | undefined;
};

export interface CreatedServer {
  app: FastifyInstance;
  repo: EventRepository;
  /** Stops accepting requests, lets in-flight appends finish, then closes the database. */
  close(): Promise<void>;
}

export async function openRepository(opts: BackendOptions): Promise<EventRepository> {
  return opts.backend === 'sqlite'
    ? new SqliteRepository(opts.file)
    : PgRepository.open({ connectionString: opts.connectionString, schema: opts.schema, migrateConnectionString: opts.migrateConnectionString });
}

export async function createServer(opts: ServerOptions): Promise<CreatedServer> {
  if (opts.tokens.length === 0) throw new Error('createServer needs at least one token');
  const repo = await openRepository(opts);
  try {
    await repo.ensureReadModel(READ_MODEL_VERSION);
    const { app } = await buildApp({
      repo,
      tokens: opts.tokens,
      logger: opts.logger ?? false,
      ...(opts.rateLimit ? { rateLimit: opts.rateLimit } : {}),
      ...(opts.bodyLimit ? { bodyLimit: opts.bodyLimit } : {}),
      ...(opts.timeouts ? { timeouts: opts.timeouts } : {}),
      ...(opts.maxLiveStreamsPerToken ? { maxLiveStreamsPerToken: opts.maxLiveStreamsPerToken } : {}),
      ...(opts.authFailures ? { authFailures: opts.authFailures } : {}),
    });
    await app.ready();
    let closing: Promise<void> | null = null;
    return {
      app,
      repo,
      close: () =>
        (closing ??= (async () => {
          const stopped = app.close();
          // A connection still counted as busy (a long-poll its device has just abandoned, a
          // response that finished after close began) would hold close() for the keep-alive
          // timeout; after a grace period for in-flight requests, drop what is left.
          const grace = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
          try {
            await stopped;
          } finally {
            clearTimeout(grace);
          }
          await repo.close();
        })()),
    };
  } catch (err) {
    await repo.close();
    throw err;
  }
}

export interface StartedServer {
  url: string;
  repo: EventRepository;
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions & { port?: number; host?: string }): Promise<StartedServer> {
  const server = await createServer(opts);
  const host = opts.host ?? '127.0.0.1';
  try {
    await server.app.listen({ port: opts.port ?? 0, host });
  } catch (err) {
    await server.close();
    throw err;
  }
  const addr = server.app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return { url: `http://${shownHost}:${port}`, repo: server.repo, app: server.app, close: server.close };
}
