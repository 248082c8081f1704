import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { RpcErrorBody } from './rpc-client.js';

/**
 * Browser mode's access control. The local HTTP service answers exactly one browser: the one
 * given the launch URL, whose fragment (`#k=<secret>`, never sent by a browser on its own) the
 * renderer exchanges once for an HttpOnly, SameSite=Strict cookie. Every RPC and the status
 * stream need that cookie; on top, the Host must be this loopback address and port (DNS
 * rebinding), a present Origin must be that same origin, cross-site fetches are refused, and RPCs
 * must carry a JSON body (a cross-site "simple" POST cannot set that type without a preflight,
 * and no CORS headers are ever sent). Checks run in onRequest, before any body is parsed or any
 * handler runs, so a refused request changes nothing. Static assets need only a valid Host.
 */

export const SESSION_PATH = '/auth/session';
const SECRET_BYTES = 32;
const FRAGMENT_KEY = 'k';

export interface BrowserAccess {
  /** Hex, 256 bits, fresh for each launch. Goes in the launch URL's fragment only. */
  readonly secret: string;
  /** The URL that opens the app in one step: the base plus the secret in the fragment. */
  launchUrl(base: string): string;
}

/**
 * Where a session outlives a restart: the SHA-256 of the session cookie's value, in a 0600 file in
 * the device's data folder. The browser that signed in keeps its cookie (HttpOnly, SameSite=Strict,
 * dropped when that browser quits), so an open tab reconnects by itself when the app restarts on
 * the same data folder and port. The file holds no usable secret; a new sign-in with a launch key
 * replaces it, which signs the previous browser out.
 */
export interface SessionStore {
  load(): string | null;
  save(hashHex: string): void;
}

const StoredSession = z.strictObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/) });

export function fileSessionStore(file: string): SessionStore {
  return {
    load() {
      if (!existsSync(file)) return null;
      try {
        const parsed = StoredSession.safeParse(JSON.parse(readFileSync(file, 'utf8')));
        return parsed.success ? parsed.data.sha256 : null;
      } catch {
        return null;
      }
    },
    save(sha256) {
      const tmp = `${file}.tmp`;
      writeFileSync(tmp, `${JSON.stringify({ sha256 })}\n`, { mode: 0o600 });
      renameSync(tmp, file);
    },
  };
}

const sha256Hex = (value: string) => createHash('sha256').update(value).digest('hex');

const SessionRequest = z.strictObject({ secret: z.string().regex(/^[0-9a-f]{64}$/) });

/** Constant-time equality of two strings of any length (compared as SHA-256 digests). */
export function sameSecret(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}

const LOOPBACK_BIND = new Set(['127.0.0.1', '::1']);

export function assertLoopbackBind(host: string): void {
  if (!LOOPBACK_BIND.has(host)) throw new Error(`browser mode only listens on loopback (127.0.0.1 or ::1), not ${JSON.stringify(host)}`);
}

function refuse(reply: FastifyReply, status: number, error: RpcErrorBody['error'], message: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').send({ error, message, issues: [] } satisfies RpcErrorBody);
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  if (length !== undefined) return Number(length) > 0;
  return request.headers['transfer-encoding'] !== undefined;
}

function isJson(request: FastifyRequest): boolean {
  const type = request.headers['content-type'];
  return typeof type === 'string' && /^application\/json\s*(;|$)/i.test(type.trim());
}

/**
 * Install the checks and the session exchange on `app`, which listens on `bindHost` (loopback).
 * `rpcPrefix` routes (and the session route) are guarded; everything else is static.
 */
export function registerBrowserAccess(
  app: FastifyInstance,
  opts: { bindHost: string; rpcPrefix: string; secret?: string; sessions?: SessionStore },
): BrowserAccess {
  assertLoopbackBind(opts.bindHost);
  const secret = opts.secret ?? randomBytes(SECRET_BYTES).toString('hex');
  // The cookie's value is a second random key, so the launch secret never sits in a cookie jar.
  // It is minted at this run's first sign-in; until then a session kept from the previous run
  // (its hash, see SessionStore) is still good.
  let sessionKey: string | null = null;
  let sessionHash: string | null = opts.sessions?.load() ?? null;
  const hostName = opts.bindHost.includes(':') ? `[${opts.bindHost}]` : opts.bindHost;
  // Cookies are not port-scoped: the port in the name keeps two running apps from clobbering each other.
  const cookieNameFor = (request: FastifyRequest) => `orderlog_session_${request.socket.localPort ?? 0}`;
  const signedIn = (request: FastifyRequest) => {
    const presented = parseCookie(request.headers.cookie ?? '')[cookieNameFor(request)];
    return presented !== undefined && sessionHash !== null && sameSecret(sha256Hex(presented), sessionHash);
  };

  const allowedHosts = (port: number) => new Set([`${hostName}:${port}`, `localhost:${port}`]);

  app.addHook('onRequest', async (request, reply) => {
    // The port the connection really arrived on: a rebinding page's Host names its own domain.
    const port = request.socket.localPort ?? 0;
    const host = request.headers.host ?? '';
    if (!allowedHosts(port).has(host)) {
      return refuse(reply, 403, 'FORBIDDEN', `this service only answers requests addressed to ${hostName}:${port}`);
    }
    const path = request.url.split('?')[0]!;
    const guarded = path === SESSION_PATH || path === opts.rpcPrefix || path.startsWith(`${opts.rpcPrefix}/`);
    if (!guarded) return;
    reply.header('cache-control', 'no-store');
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== `http://${host}`) {
      return refuse(reply, 403, 'FORBIDDEN', 'calls from another origin are refused');
    }
    const site = request.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      return refuse(reply, 403, 'FORBIDDEN', `calls from a ${String(site)} page are refused`);
    }
    if (request.method === 'POST') {
      if (!isJson(request)) return refuse(reply, 415, 'UNSUPPORTED_MEDIA_TYPE', 'calls must send a JSON body (content-type: application/json)');
      if (!hasBody(request)) return refuse(reply, 400, 'BAD_INPUT', 'calls must send a JSON body; send {} for no input');
    }
    if (path === SESSION_PATH) return;
    if (!signedIn(request)) {
      return refuse(reply, 401, 'UNAUTHORIZED', 'this browser is not signed in to the app: open the address that “npm start” printed');
    }
  });

  // Exchange the launch secret for the session cookie.
  app.post(SESSION_PATH, async (request, reply) => {
    const parsed = SessionRequest.safeParse(request.body);
    if (!parsed.success || !sameSecret(parsed.data.secret, secret)) {
      return refuse(reply, 401, 'UNAUTHORIZED', 'this key is not valid for the running app: open the address that “npm start” printed for this run');
    }
    if (sessionKey === null) {
      sessionKey = randomBytes(SECRET_BYTES).toString('base64url');
      sessionHash = sha256Hex(sessionKey);
      opts.sessions?.save(sessionHash);
    }
    reply.header('set-cookie', stringifySetCookie({ name: cookieNameFor(request), value: sessionKey, httpOnly: true, sameSite: 'strict', path: '/' }));
    return reply.code(204).send();
  });

  // A reloaded page asks whether its cookie is still good (the hook answers 401 when not).
  app.get(SESSION_PATH, async (request, reply) => {
    if (!signedIn(request)) {
      return refuse(reply, 401, 'UNAUTHORIZED', 'this browser is not signed in to the app: open the address that “npm start” printed');
    }
    return reply.code(204).send();
  });

  return {
    secret,
    launchUrl: (base) => `${base.replace(/\/+$/, '')}/#${FRAGMENT_KEY}=${secret}`,
  };
}
