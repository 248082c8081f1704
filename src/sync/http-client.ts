import { z } from 'zod';
import { describeIssues, zodIssues } from '../domain/issues.js';
import { ServerEvent } from '../protocol/envelope.js';
import {
  ConflictResponse,
  ErrorResponse,
  PullResponse,
  PushResponse,
  PushResult,
  StreamEventsResponse,
  type PushRequest,
  type ScopedPullRequest,
} from '../protocol/sync-api.js';
import type { PullCheckpoint } from './sync-repository.js';
import { AuthError, BadRequestError, NetworkError, ServerError } from './errors.js';
import { fastPullResponse } from './fast-pull-page.js';

export interface SyncClientOptions {
  /** e.g. http://127.0.0.1:8080 (no trailing path). */
  baseUrl: string;
  token: string;
  /** Per-request timeout in ms (a long-poll adds its wait on top). Default 30 s. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/**
 * Server events as a device accepts them off the wire: coordinates strictly, content loosely.
 * The engine holds every event to the event contract and quarantines what fails (an event
 * written by another server build or behind the server's back), so one bad row can never make
 * a whole pull page, or a push answer, unreadable.
 */
const WireEvent = ServerEvent.extend({
  streamId: z.string().min(1).max(1000),
  streamType: z.string().min(1).max(1000),
  eventType: z.string().min(1).max(1000),
  schemaVersion: z.number().int(),
  metadata: z.record(z.string(), z.unknown()),
  recordedAt: z.string().refine((s) => Number.isFinite(Date.parse(s)), 'must be a timestamp'),
});
export const WirePullResponse = PullResponse.extend({ events: z.array(WireEvent) });
const WireConflict = ConflictResponse.extend({ missingEvents: z.array(WireEvent) });
const WirePushResponse = PushResponse.extend({
  results: z.array(z.union([PushResult.options[0], z.object({ status: z.literal('conflict'), conflict: WireConflict }), PushResult.options[2]])),
});

/** What the sync engine needs from the server; the HTTP client is the one real implementation. */
export interface SyncClient {
  readonly baseUrl: string;
  push(request: PushRequest): Promise<PushResponse>;
  /**
   * `after`: the device's pull checkpoint, a cursor (text) or, on a device that synced before
   * cursors (or pulls a scope), a position. `signal` ends a held long-poll early (the scheduler's live watch).
   */
  pull(query: { after: PullCheckpoint; limit?: number; waitMs?: number; signal?: AbortSignal }): Promise<PullResponse>;
  /** Scoped sync: the events of the streams in a scope (POST /sync/events/scoped). */
  scopedPull?(request: ScopedPullRequest): Promise<PullResponse>;
  /** One page of a stream's events after `afterVersion` (the rest of a conflict answer). */
  streamEvents(streamId: string, query: { afterVersion: number; limit?: number }): Promise<StreamEventsResponse>;
}

/**
 * The device side of the wire contract in src/protocol/sync-api.ts: bearer token, timeouts,
 * every response validated with the shared zod schemas, failures mapped to typed errors.
 */
export class SyncHttpClient implements SyncClient {
  readonly baseUrl: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: SyncClientOptions) {
    let url: URL;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      throw new TypeError(`server URL ${JSON.stringify(opts.baseUrl)} is not a valid URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`server URL must be http(s), got ${url.protocol}`);
    this.baseUrl = url.toString().replace(/\/+$/, '');
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.fetchImpl = opts.fetch ?? fetch;
  }

  async push(request: PushRequest): Promise<PushResponse> {
    // Content of missing events is checked by the engine (see WireEvent).
    return (await this.request('/sync/push', { method: 'POST', body: request }, WirePushResponse)) as PushResponse;
  }

  async pull(query: { after: PullCheckpoint; limit?: number; waitMs?: number; signal?: AbortSignal }): Promise<PullResponse> {
    const params = new URLSearchParams(typeof query.after === 'string' ? { cursor: query.after } : { after: String(query.after) });
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.waitMs) params.set('waitMs', String(query.waitMs));
    // Content of the events is checked by the engine (see WireEvent).
    return (await this.request(`/sync/events?${params.toString()}`, { method: 'GET', extraTimeoutMs: query.waitMs ?? 0, signal: query.signal }, WirePullResponse, fastPullResponse)) as PullResponse;
  }

  async scopedPull(request: ScopedPullRequest): Promise<PullResponse> {
    return (await this.request('/sync/events/scoped', { method: 'POST', body: request }, WirePullResponse, fastPullResponse)) as PullResponse;
  }

  async streamEvents(streamId: string, query: { afterVersion: number; limit?: number }): Promise<StreamEventsResponse> {
    const params = new URLSearchParams({ afterVersion: String(query.afterVersion) });
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    return this.request(`/sync/streams/${encodeURIComponent(streamId)}/events?${params.toString()}`, { method: 'GET' }, StreamEventsResponse);
  }

  private async request<S extends z.ZodType>(
    path: string,
    opts: { method: 'GET' | 'POST'; body?: unknown; extraTimeoutMs?: number; signal?: AbortSignal },
    schema: S,
    /** The schema's answer for the common well-formed body, or null to let the schema decide. */
    fast?: (body: unknown) => z.infer<S> | null,
  ): Promise<z.infer<S>> {
    const url = this.baseUrl + path;
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: 'application/json' };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(url, {
        method: opts.method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: withTimeout(this.timeoutMs + (opts.extraTimeoutMs ?? 0), opts.signal),
      });
      text = await response.text();
    } catch (err) {
      const reason = err instanceof Error ? (err.name === 'TimeoutError' ? 'timed out' : describeCause(err)) : String(err);
      throw new NetworkError(`${opts.method} ${path}: ${reason}`, { cause: err });
    }
    const body = parseJson(text);
    const status = response.status;
    if (status >= 200 && status < 300) {
      const quick = fast?.(body);
      if (quick) return quick;
      const parsed = schema.safeParse(body);
      if (!parsed.success) {
        throw new ServerError(status, `${opts.method} ${path}: response breaks the sync contract (${describeIssues(zodIssues(parsed.error))})`, body);
      }
      return parsed.data;
    }
    const error = ErrorResponse.safeParse(body);
    const message = error.success ? `${error.data.error}: ${error.data.message}` : text.slice(0, 300) || response.statusText;
    if (status === 401 || status === 403) throw new AuthError(status, `${opts.method} ${path}: ${message}`);
    if (status === 400 || status === 413 || status === 422) {
      throw new BadRequestError(status, `${opts.method} ${path}: ${message}`, error.success ? (error.data.issues ?? []) : []);
    }
    throw new ServerError(status, `${opts.method} ${path}: HTTP ${status}: ${message}`, body);
  }
}

function withTimeout(ms: number, signal: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(ms);
  return signal ? AbortSignal.any([timeout, signal]) : timeout;
}

function parseJson(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** undici hides the useful part (ECONNREFUSED, socket hang up) in `cause`. */
function describeCause(err: Error): string {
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) return `${err.message} (${(cause as { code?: string }).code ?? cause.message})`;
  return err.message;
}
