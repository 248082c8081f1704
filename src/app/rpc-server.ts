import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { CommandRejectedError } from '../domain/commands.js';
import { describeIssues, zodIssues } from '../domain/issues.js';
import { ContractError, contract, parseInput, type Handlers, type StatusEvent } from './contract.js';
import type { RpcErrorBody, RpcReply } from './rpc-client.js';
import { RENDERER_CSP } from './csp.js';
import { fileSessionStore, registerBrowserAccess } from './browser-access.js';

/**
 * The store side of the renderer contract, shared by both transports: `dispatch` validates
 * input, runs the handler, validates output and turns every failure into a typed reply. The
 * HTTP routes (browser mode) live here; Electron's IPC uses `dispatch` from main/.
 */
export type StatusSubscribe = (listener: (event: StatusEvent) => void) => () => void;

const HTTP_STATUS: Record<RpcErrorBody['error'], number> = {
  BAD_INPUT: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  UNKNOWN_METHOD: 404,
  UNSUPPORTED_MEDIA_TYPE: 415,
  REJECTED: 409,
  BAD_OUTPUT: 500,
  INTERNAL: 500,
  UNAVAILABLE: 503,
};

export function httpStatusOf(reply: RpcReply): number {
  return reply.ok ? 200 : HTTP_STATUS[reply.error.error];
}

function isZodError(err: unknown): err is z.ZodError {
  return typeof err === 'object' && err !== null && (err as { name?: string }).name === 'ZodError' && Array.isArray((err as z.ZodError).issues);
}

export function errorBody(err: unknown): RpcErrorBody {
  if (err instanceof ContractError) return { error: err.code, message: err.message, issues: err.issues };
  if (err instanceof CommandRejectedError) return { error: 'REJECTED', message: err.message, issues: [] };
  // A handler that validates deeper (e.g. settings) reports bad input, not a crash.
  if (isZodError(err)) {
    const issues = zodIssues(err);
    return { error: 'BAD_INPUT', message: describeIssues(issues), issues };
  }
  return { error: 'INTERNAL', message: err instanceof Error ? err.message : String(err), issues: [] };
}

/** Validate, run, validate the answer. Never throws: failures come back as `{ok:false}`. */
export async function dispatch(handlers: Handlers, method: string, rawInput: unknown): Promise<RpcReply> {
  try {
    const { method: name, input } = parseInput(method, rawInput);
    const handler = handlers[name] as (input: unknown) => Promise<unknown>;
    const value = await handler(input);
    const checked = contract[name].output.safeParse(value);
    if (!checked.success) {
      const issues = zodIssues(checked.error);
      throw new ContractError('BAD_OUTPUT', `handler ${name} returned an invalid result: ${describeIssues(issues)}`, issues);
    }
    return { ok: true, value: checked.data };
  } catch (err) {
    return { ok: false, error: errorBody(err) };
  }
}

const SSE_KEEPALIVE_MS = 15_000;

/** POST /rpc/:method (body = input) and GET /rpc/events (SSE of StatusEvent); guarded by browser-access.ts. */
function registerRpcRoutes(fastify: FastifyInstance, handlers: Handlers, onStatus: StatusSubscribe, snapshot: () => StatusEvent[]): void {
  fastify.post<{ Params: { method: string } }>('/rpc/:method', async (request, reply) => {
    const result = await dispatch(handlers, request.params.method, request.body);
    if (!result.ok && result.error.error === 'INTERNAL') request.log.error({ method: request.params.method, err: result.error.message }, 'rpc handler failed');
    return reply.code(httpStatusOf(result)).send(result.ok ? result.value : result.error);
  });

  fastify.get('/rpc/events', (request, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 1000\n\n');
    // A (re)connecting page gets the present state first: after the app restarts, an open tab
    // must not keep the status it saw before (nor miss changes made while it was away).
    for (const event of snapshot()) res.write(`data: ${JSON.stringify(event)}\n\n`);
    const unsubscribe = onStatus((event) => {
      res.write(`data: ${JSON.stringify(event)}\n\n`);
    });
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), SSE_KEEPALIVE_MS);
    const close = () => {
      clearInterval(keepalive);
      unsubscribe();
    };
    request.raw.on('close', close);
    res.on('error', close);
  });
}

export { RENDERER_CSP };

export interface BrowserModeOptions {
  handlers: Handlers;
  onStatus: StatusSubscribe;
  /** Sent first on every status stream connection (the current sync status, a refresh hint). */
  snapshot?: () => StatusEvent[];
  /** File keeping the browser session's hash across restarts (see browser-access.ts); none: per run only. */
  sessionFile?: string;
  port: number;
  host?: string;
  /** The built renderer (dist-renderer/). */
  rendererDir: string;
  logger?: boolean;
}

export interface BrowserModeServer {
  /** The app's origin (reloads and deep links work once the browser holds the session cookie). */
  url: string;
  /** The URL to print and open: the origin plus this launch's secret in the fragment. */
  launchUrl: string;
  port: number;
  close(): Promise<void>;
}

/** Serves the built renderer plus the RPC routes: the app in an ordinary browser. */
export async function serveBrowserMode(opts: BrowserModeOptions): Promise<BrowserModeServer> {
  // Loaded lazily so Electron's main process, which shares `dispatch`, never pulls in fastify.
  const { default: Fastify } = await import('fastify');
  const { default: fastifyStatic } = await import('@fastify/static');
  // forceCloseConnections: open SSE streams must not hold close() until the browser goes away.
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: 1_048_576, forceCloseConnections: true });
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('content-security-policy', RENDERER_CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-opener-policy', 'same-origin');
    return payload;
  });
  // Fastify's own refusals (malformed or empty JSON, oversize bodies) in the contract's error shape.
  app.setErrorHandler((err: { statusCode?: number; message: string }, request, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) request.log.error({ err: err.message }, 'browser mode request failed');
    const error: RpcErrorBody['error'] = status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : status < 500 ? 'BAD_INPUT' : 'INTERNAL';
    return reply.code(status).send({ error, message: status < 500 ? err.message : 'the local app service failed', issues: [] } satisfies RpcErrorBody);
  });
  const host = opts.host ?? '127.0.0.1';
  const access = registerBrowserAccess(app, {
    bindHost: host,
    rpcPrefix: '/rpc',
    ...(opts.sessionFile ? { sessions: fileSessionStore(opts.sessionFile) } : {}),
  });
  await app.register(fastifyStatic, { root: resolve(opts.rendererDir), index: ['index.html'] });
  registerRpcRoutes(app, opts.handlers, opts.onStatus, opts.snapshot ?? (() => []));
  await app.listen({ port: opts.port, host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closing: Promise<void> | null = null;
  return {
    url,
    launchUrl: access.launchUrl(url),
    port,
    close: () => (closing ??= app.close()),
  };
}
