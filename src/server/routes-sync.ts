import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import {
  AppendRequest,
  BootstrapParams,
  BootstrapResponse,
  SessionResponse,
  AppendResponse,
  ConflictResponse,
  ErrorResponse,
  PULL_CURSOR_START,
  PullQuery,
  PullResponse,
  PushRequest,
  PushResponse,
  ScopedPullRequest,
  StreamEventsQuery,
  StreamEventsResponse,
  parsePullCursor,
} from '../protocol/sync-api.js';
import { jsonText } from '../protocol/canonical-json.js';
import { ArchivedEventsError, IdempotencyConflictError } from '../protocol/errors.js';
import { streamPage } from './store/append-logic.js';
import { LiveQuery, StreamParams, commonErrors } from './http-schemas.js';
import { HttpError, caller, enrich } from './http-context.js';
import type { BootstrapFiles } from './bootstrap-files.js';
import type { LiveStreamSlots } from './live-streams.js';
import type { AppendNotifier } from './notifier.js';
import type { EventRepository } from './repository.js';

const SSE_BATCH = 500;
/** Bootstrap files are hundreds of MB: read in 1 MiB chunks rather than the default 64 KiB. */
const DOWNLOAD_CHUNK = 1024 * 1024;

/** Where a live stream starts: its query, else the Last-Event-ID it reconnects with (a cursor or a position), else the start. */
function resumeFrom(query: { after?: number | undefined; cursor?: string | undefined }, lastEventId: string | string[] | undefined): number | string {
  if (query.cursor !== undefined) return query.cursor;
  if (query.after !== undefined) return query.after;
  const last = typeof lastEventId === 'string' ? lastEventId.trim() : '';
  if (parsePullCursor(last)) return last;
  const position = Number(last);
  return last !== '' && Number.isSafeInteger(position) && position >= 0 ? position : PULL_CURSOR_START;
}
const SSE_HEARTBEAT_MS = 15_000;

type PushItem = PushResponse['results'][number];

export function registerSyncRoutes(app: FastifyInstance, repo: EventRepository, notifier: AppendNotifier, slots: LiveStreamSlots, bootstraps: BootstrapFiles): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get(
    '/sync/session',
    { schema: { tags: ['sync'], description: 'Who the token is: its tenant, user and roles.', response: { 200: SessionResponse, ...commonErrors() } } },
    async (req) => {
      const who = caller(req);
      return { tenant: who.tenant, user: who.user, roles: [...who.roles] };
    },
  );

  r.get(
    '/sync/bootstrap',
    {
      schema: {
        tags: ['sync'],
        description:
          "The caller's tenant's current bootstrap (a device database file holding the log and the views up to `cursor`), or null. " +
          'A new device downloads it (`/sync/bootstrap/{id}`), takes it in, and pulls from `cursor` on.',
        response: { 200: BootstrapResponse, ...commonErrors() },
      },
    },
    async (req) => ({ bootstrap: bootstraps.current(caller(req).tenant) }),
  );

  r.get(
    '/sync/bootstrap/:id',
    {
      schema: {
        tags: ['sync'],
        description: 'A bootstrap file of the caller\'s tenant (application/vnd.sqlite3); its SHA-256 is its id.',
        params: BootstrapParams,
        response: {
          200: { description: 'The bootstrap file: a SQLite database of the device schema.', content: { 'application/vnd.sqlite3': { schema: z.string() } } },
          ...commonErrors(),
          404: ErrorResponse,
        },
      },
    },
    async (req, reply) => {
      const found = bootstraps.file(caller(req).tenant, req.params.id);
      if (!found) return reply.code(404).send({ error: 'NOT_FOUND', message: `no bootstrap ${req.params.id} for this tenant (ask GET /sync/bootstrap for the current one)` });
      return reply.type('application/vnd.sqlite3').header('content-length', found.bytes).send(createReadStream(found.path, { highWaterMark: DOWNLOAD_CHUNK }));
    },
  );

  /** A live-stream slot of the caller's token, or 429 when it holds the most it may. */
  function liveSlot(token: string): () => void {
    const release = slots.acquire(token);
    if (release) return release;
    throw new HttpError(429, {
      error: 'TOO_MANY_STREAMS',
      message: `this token already holds ${slots.perToken} live streams (SSE or long-polls with waitMs), the most allowed; close one first`,
    });
  }

  r.post(
    '/sync/streams/:streamId/append',
    {
      schema: {
        tags: ['sync'],
        params: StreamParams,
        body: AppendRequest,
        response: { 201: AppendResponse, ...commonErrors({ body: true }), 409: ConflictResponse, 422: ErrorResponse },
      },
    },
    async (req, reply) => {
      const who = caller(req);
      const outcome = await repo.append({
        tenantId: who.tenant,
        streamId: req.params.streamId,
        streamType: req.body.streamType,
        expectedVersion: req.body.expectedVersion,
        events: enrich(req.body.events, req),
      });
      if (outcome.status === 'conflict') return reply.code(409).send(outcome.conflict);
      if (!outcome.result.duplicate) notifier.notify();
      return reply.code(201).send(outcome.result);
    },
  );

  r.post(
    '/sync/push',
    { schema: { tags: ['sync'], body: PushRequest, response: { 200: PushResponse, ...commonErrors({ body: true }) } } },
    async (req) => {
      const who = caller(req);
      const outcomes = await repo.appendAll(
        req.body.appends.map((a) => ({
          tenantId: who.tenant,
          streamId: a.streamId,
          streamType: a.streamType,
          expectedVersion: a.expectedVersion,
          events: enrich(a.events, req),
        })),
      );
      let stored = false;
      const results = outcomes.map((o, i): PushItem => {
        if (o.status === 'conflict') return { status: 'conflict', conflict: o.conflict };
        if (o.status === 'error') {
          const streamId = req.body.appends[i]!.streamId;
          if (o.error instanceof IdempotencyConflictError) return { status: 'error', streamId, error: 'IDEMPOTENCY_CONFLICT', message: o.error.message };
          const issues = o.error.issues.map((x) => ({ path: `appends.${i}.${x.path}`, message: x.message }));
          return { status: 'error', streamId, error: 'BAD_REQUEST', message: o.error.message, issues };
        }
        stored ||= !o.result.duplicate;
        return { status: 'ok', result: o.result };
      });
      if (stored) notifier.notify();
      return { results };
    },
  );

  r.get(
    '/sync/streams/:streamId/events',
    {
      schema: {
        tags: ['sync'],
        description:
          "One stream of the caller's tenant with its hash chain, a bounded page at a time (`afterVersion`, `limit`, `hasMore`): " +
          'for a device to audit its synced copy and to fetch the rest of a conflict answer.',
        params: StreamParams,
        querystring: StreamEventsQuery,
        response: { 200: StreamEventsResponse, ...commonErrors(), 404: ErrorResponse, 410: ErrorResponse },
      },
    },
    async (req, reply) => {
      const who = caller(req);
      const { afterVersion, limit } = req.query;
      const rows = await repo.readStream(who.tenant, req.params.streamId, afterVersion, limit + 1);
      if (rows.length === 0 && afterVersion === 0) return reply.code(404).send({ error: 'NOT_FOUND', message: `stream ${req.params.streamId} not found` });
      return { streamId: req.params.streamId, ...streamPage(rows, limit) };
    },
  );

  r.get(
    '/sync/events',
    { schema: { tags: ['sync'], querystring: PullQuery, response: { 200: PullResponse, ...commonErrors(), 410: ErrorResponse } } },
    async (req, reply) => {
      const who = caller(req);
      const { after, cursor, limit, waitMs } = req.query;
      // Older devices send the position they reached; neither means from the start.
      const from = cursor ?? after ?? PULL_CURSOR_START;
      // The page's JSON straight from the stored text (the documented PullResponse, unchanged).
      if (waitMs === 0) return reply.type('application/json; charset=utf-8').send((await repo.pullText(who.tenant, from, limit)).text);
      const release = liveSlot(who.token);
      // A client that gives up frees its slot at once instead of when the wait ends.
      const gone = new AbortController();
      reply.raw.on('close', () => gone.abort());
      try {
        const deadline = Date.now() + waitMs;
        // After the wait runs out, one last read answers (the wall clock may still show a
        // millisecond left when the timer fires; waiting again would only cost another query).
        let timedOut = false;
        for (;;) {
          const page = await repo.pull(who.tenant, from, limit);
          const left = deadline - Date.now();
          if (page.events.length > 0 || timedOut || left <= 0 || notifier.isClosed || gone.signal.aborted) return page;
          timedOut = !(await notifier.wait(left, gone.signal));
        }
      } finally {
        release();
      }
    },
  );

  r.post(
    '/sync/events/scoped',
    {
      schema: {
        tags: ['sync'],
        description:
          "Scoped pull: the caller's tenant's events after `after` (at most `upTo`) of the orders in `scope` (customers, changed within " +
          '`recentDays`, listed `streams`). `nextPosition` passes over the events out of scope; a stream entering the scope later is ' +
          'backfilled by a pull with `upTo` (or its stream read).',
        body: ScopedPullRequest,
        response: { 200: PullResponse, ...commonErrors({ body: true }) },
      },
    },
    async (req) => repo.scopedPull(caller(req).tenant, req.body),
  );

  r.get(
    '/sync/events/live',
    {
      schema: {
        tags: ['sync'],
        description:
          'Server-sent events: each `event: event` carries one ServerEvent as JSON. Started with `cursor` (or nothing), the last event ' +
          'of each batch carries `id`: the pull cursor after it; started with `after` (a position: older clients), every event carries ' +
          'its global position. Last-Event-ID resumes either.',
        querystring: LiveQuery,
        response: {
          200: {
            description: 'An endless text/event-stream: comments (`: heartbeat`) and `event: event` frames, each with one ServerEvent as JSON.',
            content: { 'text/event-stream': { schema: z.string() } },
          },
          ...commonErrors(),
        },
      },
    },
    async (req, reply) => {
      const who = caller(req);
      const release = liveSlot(who.token);
      let from: number | string = resumeFrom(req.query, req.headers['last-event-id']);
      reply.hijack();
      const res = reply.raw;
      const gone = new AbortController();
      req.raw.on('close', () => gone.abort());
      res.on('close', () => gone.abort());
      try {
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
          'x-correlation-id': req.correlationId,
        });
        res.write(': connected\n\n');
        let lastBeat = Date.now();
        while (!gone.signal.aborted && !notifier.isClosed) {
          const page = await repo.pull(who.tenant, from, SSE_BATCH);
          const byPosition = typeof from === 'number';
          page.events.forEach((e, i) => {
            const id = byPosition ? e.globalPosition : i === page.events.length - 1 ? page.nextCursor : undefined;
            res.write(`${id === undefined ? '' : `id: ${id}\n`}event: event\ndata: ${jsonText(e)}\n\n`);
          });
          from = byPosition ? page.nextPosition : (page.nextCursor ?? from);
          if (page.hasMore) continue;
          if (Date.now() - lastBeat > SSE_HEARTBEAT_MS) {
            res.write(': heartbeat\n\n');
            lastBeat = Date.now();
          }
          await notifier.wait(SSE_HEARTBEAT_MS, gone.signal);
        }
      } catch (err) {
        // Events of this tenant were archived: say so on the stream (the same body as a pull's 410) before closing.
        if (err instanceof ArchivedEventsError) res.write(`event: error\ndata: ${JSON.stringify({ error: 'ARCHIVED', message: err.message, archives: err.archives.map((a) => basename(a)) })}\n\n`);
        req.log.error({ err }, 'live stream failed');
      } finally {
        release();
        res.end();
      }
    },
  );
}
