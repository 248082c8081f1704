import { basename } from 'node:path';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { CommandRejectedError } from '../domain/commands.js';
import { describeIssues } from '../domain/issues.js';
import { jsonText } from '../protocol/canonical-json.js';
import { ArchivedEventsError, IdempotencyConflictError, InvalidEventError } from '../protocol/errors.js';
import { ErrorResponse } from '../protocol/sync-api.js';
import { HealthResponse } from './http-schemas.js';
import { AuthFailureThrottle } from './auth-throttle.js';
import { HttpError, bearerToken, correlationIdOf } from './http-context.js';
import { LiveStreamSlots } from './live-streams.js';
import { AppendNotifier } from './notifier.js';
import type { EventRepository } from './repository.js';
import { registerApiRoutes, type OrderQueries } from './routes-api.js';
import { registerSyncRoutes } from './routes-sync.js';
import { BootstrapFiles } from './bootstrap-files.js';
import type { TokenEntry } from './tokens.js';

export interface AppOptions {
  repo: EventRepository;
  tokens: TokenEntry[];
  logger?: FastifyServerOptions['logger'];
  rateLimit?: { max: number; timeWindowMs: number };
  bodyLimit?: number;
  timeouts?: Partial<ServerTimeouts>;
  /** Live streams (SSE, long-polls) one token may hold open at once. */
  maxLiveStreamsPerToken?: number;
  /** Failed authentications one client address may make per window before it is refused. */
  authFailures?: { max: number; timeWindowMs: number };
  /** Tells other server processes of this one's appends (PostgreSQL LISTEN/NOTIFY). */
  announce?: () => void;
  /** How often other processes' appends are looked for by polling (default 250 ms; a safety net only when they announce). */
  peerRecheckMs?: number;
  /** The seed's query endpoints read this read model (a worker-built one) instead of the server's own. */
  queries?: OrderQueries;
  /** Bootstraps for new devices, one folder per tenant (see bootstrap-files.ts). */
  bootstrapDir?: string;
  /** Admin routes over the broker's dead letters (only when a broker is configured). */
  registerExtraRoutes?: (app: FastifyInstance) => void;
}

export interface ServerTimeouts {
  /** The whole request (headers and body) must arrive within this; a slow sender gets 408 and is cut off. */
  requestTimeoutMs: number;
  /** A socket with no traffic for this long is closed (above the longest long-poll and the SSE heartbeat). */
  connectionTimeoutMs: number;
  /**
   * An idle keep-alive connection is closed after this. Long (Fastify's own default): a client
   * that reuses a connection the server is just closing gets ECONNRESET, and a device busy for
   * a while (a large rebase) must not meet that on its next request.
   */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_BODY_LIMIT = 10 * 1024 * 1024;
export const DEFAULT_RATE_LIMIT = { max: 100_000, timeWindowMs: 60_000 };
export const DEFAULT_TIMEOUTS: ServerTimeouts = { requestTimeoutMs: 30_000, connectionTimeoutMs: 120_000, keepAliveTimeoutMs: 72_000 };
export const DEFAULT_MAX_LIVE_STREAMS_PER_TOKEN = 8;
export const DEFAULT_AUTH_FAILURES = { max: 20, timeWindowMs: 60_000 };

export type App = FastifyInstance;

/** Fastify instance with auth, validation, errors, OpenAPI and every route; does not listen. */
export async function buildApp(opts: AppOptions): Promise<{ app: App; notifier: AppendNotifier }> {
  const timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    return503OnClosing: true,
    requestTimeout: timeouts.requestTimeoutMs,
    connectionTimeout: timeouts.connectionTimeoutMs,
    keepAliveTimeout: timeouts.keepAliveTimeoutMs,
    http: {
      headersTimeout: Math.min(60_000, timeouts.requestTimeoutMs),
      // Node checks request deadlines on this interval (default 30 s), which would stretch short timeouts.
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(timeouts.requestTimeoutMs / 4))),
    },
    // Log lines carry the correlation id the client sees (x-correlation-id) as their request id.
    genReqId: (req) => correlationIdOf(req.headers),
    requestIdHeader: false,
    logController: new LogController({ requestIdLogLabel: 'correlationId' }),
  }).withTypeProvider<ZodTypeProvider>();
  // One shared re-check for other processes' appends, instead of every waiting stream re-querying.
  const notifier = new AppendNotifier({ probe: () => opts.repo.visibleHead(), ...(opts.announce ? { announce: opts.announce } : {}), ...(opts.peerRecheckMs ? { intervalMs: opts.peerRecheckMs } : {}) });
  const byToken = new Map(opts.tokens.map((t) => [t.token, t]));
  const authFailures = opts.authFailures ?? DEFAULT_AUTH_FAILURES;
  const throttle = new AuthFailureThrottle(authFailures.max, authFailures.timeWindowMs);
  const liveSlots = new LiveStreamSlots(opts.maxLiveStreamsPerToken ?? DEFAULT_MAX_LIVE_STREAMS_PER_TOKEN);

  // Many HTTP clients send Content-Type: application/json with no body on body-less requests
  // (POST /api/admin/projections/rebuild). An empty JSON body is no body; a route that needs one
  // still answers 400 naming it. Non-empty bodies keep Fastify's parser (prototype-poisoning checks).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = body.toString();
    if (text.trim() === '') return done(null, undefined);
    parseJson(req, text, done);
  });

  app.setValidatorCompiler(validatorCompiler);
  // Response schemas document the API (OpenAPI); bodies are built from typed values already.
  // jsonText: an event stored nested thousands of levels deep (before the event contract) must
  // not turn every pull of its tenant into a 500.
  app.setSerializerCompiler(() => (data) => jsonText(data));

  app.decorateRequest('auth', null);
  app.decorateRequest('correlationId', '');

  await app.register(swagger, {
    openapi: {
      info: { title: 'orderlog central event store', version: '1.0.0', description: 'Sync API for devices and the seed-compatible order API.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });

  const limits = opts.rateLimit ?? DEFAULT_RATE_LIMIT;
  await app.register(rateLimit, {
    max: limits.max,
    timeWindow: limits.timeWindowMs,
    keyGenerator: (req) => {
      const t = bearerToken(req);
      return t && byToken.has(t) ? `token:${t}` : `ip:${req.ip}`;
    },
    errorResponseBuilder: (_req, ctx) => ({
      statusCode: ctx.statusCode,
      error: 'RATE_LIMITED',
      message: `too many requests: at most ${ctx.max} per ${ctx.after}`,
    }),
  });

  app.addHook('onRequest', async (req, reply) => {
    req.correlationId = req.id;
    reply.header('x-correlation-id', req.correlationId);
    const cfg = req.routeOptions.config;
    if (cfg.public) return;
    const blockedMs = throttle.retryAfterMs(req.ip);
    if (blockedMs > 0) {
      reply.header('retry-after', String(Math.ceil(blockedMs / 1000)));
      throw new HttpError(429, {
        error: 'RATE_LIMITED',
        message: `too many failed authentication attempts from this address; retry in ${Math.ceil(blockedMs / 1000)} s`,
      });
    }
    const token = bearerToken(req);
    const entry = token ? byToken.get(token) : undefined;
    if (!entry) {
      throttle.fail(req.ip);
      reply.header('www-authenticate', 'Bearer');
      throw new HttpError(401, { error: 'UNAUTHORIZED', message: token ? 'unknown bearer token' : 'a bearer token is required (Authorization: Bearer <token>)' });
    }
    const role = cfg.role ?? 'device';
    if (!entry.roles.includes(role) && !entry.roles.includes('admin')) {
      throw new HttpError(403, { error: 'FORBIDDEN', message: `this endpoint needs the ${role} role` });
    }
    req.auth = entry;
  });

  app.setErrorHandler((err, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const where = err.validationContext ?? 'body';
      const issues = err.validation.map((v) => ({
        path: [where, ...v.instancePath.split('/').filter(Boolean)].join('.'),
        message: v.message ?? 'invalid',
      }));
      return reply.code(400).send({ error: 'BAD_REQUEST', message: describeIssues(issues), issues });
    }
    if (err instanceof HttpError) return reply.code(err.statusCode).send(err.body);
    if (err instanceof InvalidEventError) {
      return reply.code(400).send({ error: 'BAD_REQUEST', message: err.message, issues: err.issues.map((i) => ({ path: `body.${i.path}`, message: i.message })) });
    }
    if (err instanceof ArchivedEventsError) {
      // File names only: the server's directories are none of a device's business.
      const archives = err.archives.map((a) => basename(a));
      return reply.code(410).send({ error: 'ARCHIVED', message: `${err.what} needs events that were archived (${archives.join(', ')}); an operator can restore them`, archives });
    }
    if (err instanceof IdempotencyConflictError) return reply.code(422).send({ error: 'IDEMPOTENCY_CONFLICT', message: err.message, eventId: err.eventId });
    if (err instanceof CommandRejectedError) return reply.code(422).send({ error: err.rejection.code, message: err.rejection.message });
    const e = err as { statusCode?: number; code?: string; message: string };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send({ error: 'PAYLOAD_TOO_LARGE', message: e.message });
    if (e.statusCode === 429) return reply.code(429).send({ error: 'RATE_LIMITED', message: e.message });
    if (e.code === '22P05' || e.code === '22P02') {
      // PostgreSQL refused a value of the input: the client's fault, but its text stays in the log.
      req.log.warn({ err }, 'database refused a value');
      return reply.code(400).send({ error: 'BAD_REQUEST', message: 'the database refused a value of this request', correlationId: req.correlationId });
    }
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      const code = e.statusCode === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : e.statusCode === 404 ? 'NOT_FOUND' : 'BAD_REQUEST';
      return reply.code(e.statusCode).send({ error: code, message: e.message });
    }
    // Database and other unexpected errors: logged with the correlation id, never echoed.
    req.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'INTERNAL', message: 'internal error', correlationId: req.correlationId });
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  // security: [] overrides the document's global bearer requirement: probes need no token.
  app.get('/health', { config: { public: true, rateLimit: false }, schema: { security: [], response: { 200: HealthResponse, 500: ErrorResponse } } }, async () => ({ status: 'ok' }));
  app.get('/ready', { config: { public: true, rateLimit: false }, schema: { security: [], response: { 200: HealthResponse, 500: ErrorResponse, 503: HealthResponse } } }, async (_req, reply) => {
    try {
      await opts.repo.ping();
      return { status: 'ready', backend: opts.repo.backend };
    } catch {
      return reply.code(503).send({ status: 'unavailable', backend: opts.repo.backend });
    }
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  registerSyncRoutes(app, opts.repo, notifier, liveSlots, new BootstrapFiles(opts.bootstrapDir ?? null));
  registerApiRoutes(app, opts.repo, notifier, opts.queries);
  opts.registerExtraRoutes?.(app);

  // Wake long-polls and live streams so close() does not wait for their timeouts.
  app.addHook('preClose', async () => notifier.close());
  return { app, notifier };
}
