import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { buildApp, type ServerTimeouts } from './app.js';
import { PgRepository } from './store/pg/pg-repository.js';
import type { EventRepository } from './repository.js';
import { READ_MODEL_VERSION } from './store/append-logic.js';
import { SqliteRepository } from './store/sqlite/sqlite-repository.js';
import type { TokenEntry } from './tokens.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { DeadLetters } from './bus/dead-letters.js';
import { busNames } from './bus/messages.js';
import { connectBus, ensureStreams } from './bus/nats.js';
import { Relay, soleLease } from './bus/relay.js';
import { registerBusRoutes } from './routes-bus.js';
import { PgRelayLease } from './store/pg/relay-lease.js';
import { PgWake } from './store/pg/wake.js';
import { workerQueries } from './store/pg/worker-store.js';

/** How long close() lets in-flight requests finish before it drops the connections left. */
const SHUTDOWN_GRACE_MS = 2000;
/** With LISTEN/NOTIFY, polling for other processes' appends is only the safety net. */
const PEER_RECHECK_WITH_NOTIFY_MS = 5000;

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
  /** NATS JetStream: relay every committed event to it (issue 15). Unset: no broker. */
  bus?: { url: string; prefix: string } | undefined;
  /** PostgreSQL: the seed's query endpoints read the worker-built read model in this schema. */
  querySchema?: string | undefined;
  /** Bootstraps for new devices (written by `npm run bootstrap`). Unset: devices pull everything. */
  bootstrapDir?: string | undefined;
};

export interface CreatedServer {
  app: FastifyInstance;
  repo: EventRepository;
  /** The broker relay, when a broker is configured. */
  relay: Relay | null;
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
  // What close() must undo besides the repository, newest first.
  const undo: (() => Promise<void>)[] = [];
  const unwind = async (): Promise<void> => {
    for (const u of undo.reverse()) await u().catch(() => undefined);
    undo.length = 0;
  };
  try {
    await repo.ensureReadModel(READ_MODEL_VERSION);
    let wakeLocal: () => void = () => undefined;
    let announce: (() => void) | undefined;
    if (opts.backend === 'pg') {
      // Other server processes on this schema wake this one's long-polls at once (and it theirs).
      const wake = new PgWake(opts.connectionString, opts.schema ?? 'public', () => wakeLocal());
      await wake.start();
      undo.push(() => wake.close());
      announce = () => wake.announce();
    }
    let queries: ReturnType<typeof workerQueries> | undefined;
    if (opts.querySchema) {
      if (opts.backend !== 'pg') throw new Error('querySchema needs the PostgreSQL backend');
      const q = workerQueries(opts.connectionString, opts.querySchema);
      undo.push(() => q.close());
      queries = q;
    }
    let nc: NatsConnection | null = null;
    const names = opts.bus ? busNames(opts.bus.prefix) : null;
    if (opts.bus && names) {
      const conn = await connectBus(opts.bus.url, 'orderlog-server');
      nc = conn;
      undo.push(() => conn.drain());
      await ensureStreams(conn, names);
    }
    const deadLetters = nc && names ? new DeadLetters(nc, names) : null;
    const { app, notifier } = await buildApp({
      repo,
      tokens: opts.tokens,
      logger: opts.logger ?? false,
      ...(opts.rateLimit ? { rateLimit: opts.rateLimit } : {}),
      ...(opts.bodyLimit ? { bodyLimit: opts.bodyLimit } : {}),
      ...(opts.timeouts ? { timeouts: opts.timeouts } : {}),
      ...(opts.maxLiveStreamsPerToken ? { maxLiveStreamsPerToken: opts.maxLiveStreamsPerToken } : {}),
      ...(opts.authFailures ? { authFailures: opts.authFailures } : {}),
      // Announced appends wake at once; the re-check remains for a lost LISTEN connection or a crash before NOTIFY.
      ...(announce ? { announce, peerRecheckMs: PEER_RECHECK_WITH_NOTIFY_MS } : {}),
      ...(queries ? { queries } : {}),
      ...(opts.bootstrapDir ? { bootstrapDir: opts.bootstrapDir } : {}),
      ...(deadLetters ? { registerExtraRoutes: (a: FastifyInstance) => registerBusRoutes(a, deadLetters) } : {}),
    });
    wakeLocal = () => notifier.peerAppended();
    await app.ready();
    let relay: Relay | null = null;
    if (nc && names) {
      const lease = opts.backend === 'pg' ? new PgRelayLease(opts.connectionString, opts.schema ?? 'public') : soleLease;
      relay = new Relay({ repo, nc, names, lease, wait: (ms, signal) => notifier.wait(ms, signal), log: app.log }).start();
    }
    let closing: Promise<void> | null = null;
    return {
      app,
      repo,
      relay,
      close: () =>
        (closing ??= (async () => {
          // The relay first: it waits on the notifier, which closing the app shuts.
          await relay?.stop();
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
          await unwind();
          await repo.close();
        })()),
    };
  } catch (err) {
    await unwind();
    await repo.close();
    throw err;
  }
}

export interface StartedServer {
  url: string;
  repo: EventRepository;
  app: FastifyInstance;
  relay: Relay | null;
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
  return { url: `http://${shownHost}:${port}`, repo: server.repo, app: server.app, relay: server.relay, close: server.close };
}
