import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { NewEvent } from '../protocol/envelope.js';
import type { Role, TokenEntry } from './tokens.js';

/** Raised by handlers to answer with a specific status and body. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly statusCode: number,
    readonly body: { error: string; message: string; [k: string]: unknown },
  ) {
    super(body.message);
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    auth: TokenEntry | null;
    correlationId: string;
  }
  interface FastifyContextConfig {
    /** No token needed (health and readiness only). */
    public?: boolean;
    /** Role the token must hold; default device. */
    role?: Role;
  }
}

export function bearerToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (!h) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1]! : null;
}

/** The authenticated caller; handlers only run after the auth hook accepted the request. */
export function caller(req: FastifyRequest): TokenEntry {
  if (!req.auth) throw new HttpError(401, { error: 'UNAUTHORIZED', message: 'a bearer token is required' });
  return req.auth;
}

const HEADER_TEXT = /^[\x20-\x7e]{1,200}$/;

export function headerText(req: { headers: IncomingHttpHeaders }, name: string): string | undefined {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s !== undefined && HEADER_TEXT.test(s) ? s : undefined;
}

/** The client's x-correlation-id when it is plain text, else a new one: the request id of every log line. */
export function correlationIdOf(headers: IncomingHttpHeaders): string {
  return headerText({ headers }, 'x-correlation-id') ?? randomUUID();
}

/**
 * Server-owned metadata: tenant and user come from the token (clients cannot choose them),
 * source from x-source, correlation id from the event, the x-correlation-id header, or a new one.
 */
export function enrich(events: NewEvent[], req: FastifyRequest): NewEvent[] {
  const who = caller(req);
  const source = headerText(req, 'x-source');
  return events.map((e) => ({
    ...e,
    metadata: {
      ...e.metadata,
      tenantId: who.tenant,
      userId: who.user,
      source: source ?? e.metadata.source ?? 'unknown',
      correlationId: e.metadata.correlationId ?? req.correlationId,
    },
  }));
}

/** Conditional GET: true when the client's copy is current (a 304 was sent). */
export function notModified(req: FastifyRequest, reply: FastifyReply, etag: string): boolean {
  reply.header('etag', etag);
  reply.header('cache-control', 'no-cache');
  const inm = req.headers['if-none-match'];
  if (!inm) return false;
  const tags = inm.split(',').map((t) => t.trim().replace(/^W\//, ''));
  if (tags.includes(etag) || tags.includes('*')) {
    reply.code(304).send();
    return true;
  }
  return false;
}
