import { join } from 'node:path';
import { z } from 'zod';
import { DEFAULT_AUTH_FAILURES, DEFAULT_BODY_LIMIT, DEFAULT_MAX_LIVE_STREAMS_PER_TOKEN, DEFAULT_RATE_LIMIT, DEFAULT_TIMEOUTS } from './app.js';
import type { ServerOptions } from './index.js';
import { loadTokensFromEnv } from './tokens.js';
import { BusPrefix } from './bus/messages.js';

export const ENV_HELP = `Environment variables:
  ORDERLOG_DATA                Data folder, shared with \`npm start\` (default ./data)
  ORDERLOG_DB                  SQLite file of the embedded backend (default <ORDERLOG_DATA>/server.sqlite)
  ORDERLOG_DATABASE_URL        PostgreSQL connection string; when set, PostgreSQL is used instead of SQLite.
                               The role the server works as: ideally the app role (see README)
  ORDERLOG_MIGRATE_DATABASE_URL  PostgreSQL connection string of the owner role: \`migrate\` (and \`start\`,
                               when set) runs migrations as it and grants the app role its rights.
                               Unset: the ORDERLOG_DATABASE_URL role migrates whatever is pending
  ORDERLOG_PG_SCHEMA           PostgreSQL schema for the tables (default public; created if missing)
  ORDERLOG_PORT                TCP port (default 8787; 0 picks a free one)
  ORDERLOG_HOST                Interface to listen on (default 127.0.0.1)
  ORDERLOG_TOKENS              JSON array of {"token","tenant","user","roles":["device"|"admin"]}
  ORDERLOG_TOKENS_FILE         Path of a JSON file with the same array
  ORDERLOG_DEV_TOKEN           Local development only: one device+admin token for tenant "dev",
                               used when no other token is configured
  ORDERLOG_RATE_LIMIT_MAX      Requests per token per window (default ${DEFAULT_RATE_LIMIT.max})
  ORDERLOG_RATE_LIMIT_WINDOW_MS  Rate-limit window in ms (default ${DEFAULT_RATE_LIMIT.timeWindowMs})
  ORDERLOG_BODY_LIMIT          Largest request body in bytes (default ${DEFAULT_BODY_LIMIT}; larger → 413)
  ORDERLOG_REQUEST_TIMEOUT_MS  A whole request must arrive within this, else 408 (default ${DEFAULT_TIMEOUTS.requestTimeoutMs})
  ORDERLOG_CONNECTION_TIMEOUT_MS  Idle socket timeout (default ${DEFAULT_TIMEOUTS.connectionTimeoutMs}; above the 60 s long-poll)
  ORDERLOG_KEEP_ALIVE_TIMEOUT_MS  Idle keep-alive connection timeout (default ${DEFAULT_TIMEOUTS.keepAliveTimeoutMs})
  ORDERLOG_MAX_LIVE_STREAMS    Open SSE streams + waiting long-polls per token (default ${DEFAULT_MAX_LIVE_STREAMS_PER_TOKEN}; more → 429)
  ORDERLOG_AUTH_FAILURES_MAX   Failed authentications per client address per window before it gets 429 (default ${DEFAULT_AUTH_FAILURES.max})
  ORDERLOG_AUTH_FAILURES_WINDOW_MS  That window in ms (default ${DEFAULT_AUTH_FAILURES.timeWindowMs})
  ORDERLOG_BOOTSTRAP_DIR       Folder of the bootstraps new devices take in before they pull (written by
                               \`npm run bootstrap\`; one folder per tenant). Unset: devices pull everything
  ORDERLOG_LOG_LEVEL           pino level: fatal, error, warn, info, debug, trace, silent (default info)
  ORDERLOG_NATS_URL            NATS server with JetStream (e.g. nats://127.0.0.1:4222): when set, the server relays
                               every committed event to it (one relaying process per database) and offers the
                               dead-letter admin routes. Unset: no broker is needed
  ORDERLOG_NATS_PREFIX         Subject prefix of the events (default orderlog: orderlog.<tenant>.<streamType>.<eventType>)
  ORDERLOG_QUERY_SCHEMA        PostgreSQL only: the seed's query endpoints read the worker-built read model in this
                               schema (\`npm run worker\`, ORDERLOG_WORKER_SCHEMA) instead of the server's own`;

const Env = z.object({
  ORDERLOG_DATA: z.string().min(1).default(join('.', 'data')),
  ORDERLOG_DB: z.string().min(1).optional(),
  ORDERLOG_DATABASE_URL: z.string().min(1).optional(),
  ORDERLOG_MIGRATE_DATABASE_URL: z.string().min(1).optional(),
  ORDERLOG_PG_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'lower-case letters, digits and _').optional(),
  ORDERLOG_PORT: z.coerce.number().int().min(0).max(65535).default(8787),
  ORDERLOG_HOST: z.string().min(1).default('127.0.0.1'),
  ORDERLOG_RATE_LIMIT_MAX: z.coerce.number().int().positive().default(DEFAULT_RATE_LIMIT.max),
  ORDERLOG_RATE_LIMIT_WINDOW_MS: z.coerce.number().int().positive().default(DEFAULT_RATE_LIMIT.timeWindowMs),
  ORDERLOG_BODY_LIMIT: z.coerce.number().int().positive().default(DEFAULT_BODY_LIMIT),
  ORDERLOG_REQUEST_TIMEOUT_MS: z.coerce.number().int().positive().default(DEFAULT_TIMEOUTS.requestTimeoutMs),
  ORDERLOG_CONNECTION_TIMEOUT_MS: z.coerce.number().int().positive().default(DEFAULT_TIMEOUTS.connectionTimeoutMs),
  ORDERLOG_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().positive().default(DEFAULT_TIMEOUTS.keepAliveTimeoutMs),
  ORDERLOG_MAX_LIVE_STREAMS: z.coerce.number().int().positive().default(DEFAULT_MAX_LIVE_STREAMS_PER_TOKEN),
  ORDERLOG_AUTH_FAILURES_MAX: z.coerce.number().int().positive().default(DEFAULT_AUTH_FAILURES.max),
  ORDERLOG_AUTH_FAILURES_WINDOW_MS: z.coerce.number().int().positive().default(DEFAULT_AUTH_FAILURES.timeWindowMs),
  ORDERLOG_NATS_URL: z.string().min(1).optional(),
  ORDERLOG_NATS_PREFIX: BusPrefix.default('orderlog'),
  ORDERLOG_QUERY_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'lower-case letters, digits and _').optional(),
  ORDERLOG_BOOTSTRAP_DIR: z.string().min(1).optional(),
  ORDERLOG_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type CliServerOptions = ServerOptions & { port: number; host: string };

/** Server options from the environment; throws ConfigError with every problem named. */
export function configFromEnv(env: NodeJS.ProcessEnv, opts: { needTokens: boolean }): CliServerOptions {
  const parsed = Env.safeParse(env);
  if (!parsed.success) throw new ConfigError(`invalid configuration:\n${z.prettifyError(parsed.error)}`);
  const e = parsed.data;
  const tokens = opts.needTokens ? loadTokensFromEnv(env) : [];
  if (e.ORDERLOG_MIGRATE_DATABASE_URL && !e.ORDERLOG_DATABASE_URL) {
    throw new ConfigError('invalid configuration: ORDERLOG_MIGRATE_DATABASE_URL needs ORDERLOG_DATABASE_URL (the role the server works as)');
  }
  if (e.ORDERLOG_QUERY_SCHEMA && !e.ORDERLOG_DATABASE_URL) {
    throw new ConfigError('invalid configuration: ORDERLOG_QUERY_SCHEMA needs ORDERLOG_DATABASE_URL (the worker-built read model lives in PostgreSQL)');
  }
  const backend = e.ORDERLOG_DATABASE_URL
    ? {
        backend: 'pg' as const,
        connectionString: e.ORDERLOG_DATABASE_URL,
        schema: e.ORDERLOG_PG_SCHEMA,
        migrateConnectionString: e.ORDERLOG_MIGRATE_DATABASE_URL,
      }
    : { backend: 'sqlite' as const, file: e.ORDERLOG_DB ?? join(e.ORDERLOG_DATA, 'server.sqlite') };
  return {
    ...backend,
    tokens,
    port: e.ORDERLOG_PORT,
    host: e.ORDERLOG_HOST,
    rateLimit: { max: e.ORDERLOG_RATE_LIMIT_MAX, timeWindowMs: e.ORDERLOG_RATE_LIMIT_WINDOW_MS },
    bodyLimit: e.ORDERLOG_BODY_LIMIT,
    timeouts: {
      requestTimeoutMs: e.ORDERLOG_REQUEST_TIMEOUT_MS,
      connectionTimeoutMs: e.ORDERLOG_CONNECTION_TIMEOUT_MS,
      keepAliveTimeoutMs: e.ORDERLOG_KEEP_ALIVE_TIMEOUT_MS,
    },
    maxLiveStreamsPerToken: e.ORDERLOG_MAX_LIVE_STREAMS,
    authFailures: { max: e.ORDERLOG_AUTH_FAILURES_MAX, timeWindowMs: e.ORDERLOG_AUTH_FAILURES_WINDOW_MS },
    logger: { level: e.ORDERLOG_LOG_LEVEL },
    bus: e.ORDERLOG_NATS_URL ? { url: e.ORDERLOG_NATS_URL, prefix: e.ORDERLOG_NATS_PREFIX } : undefined,
    querySchema: e.ORDERLOG_QUERY_SCHEMA,
    bootstrapDir: e.ORDERLOG_BOOTSTRAP_DIR,
  };
}
