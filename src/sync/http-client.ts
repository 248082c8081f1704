import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { z } from 'zod';
import { describeIssues, zodIssues } from '../domain/issues.js';
import { ServerEvent } from '../protocol/envelope.js';
import {
  BootstrapResponse,
  SessionResponse,
  ConflictResponse,
  ErrorResponse,
  PullResponse,
  PushResponse,
  PushResult,
  StreamEventsResponse,
  type BootstrapManifest,
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
  /** The tenant's current bootstrap for new devices, or null (none, or a server without them). */
  bootstrap?(): Promise<BootstrapManifest | null>;
  /** Download a bootstrap to `file` (created; must not exist), checked against its size and SHA-256. */
  downloadBootstrap?(manifest: BootstrapManifest, file: string): Promise<void>;
}

/** A bootstrap download that is not the file its manifest describes (truncated, altered, replaced). */
export class BootstrapDownloadError extends ServerError {
  override name = 'BootstrapDownloadError';
}

/** A download's least rate for its timeout: 1 MB/s on top of the request timeout. */
const MIN_DOWNLOAD_BYTES_PER_MS = 1000;

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

  /** Who this token is (its tenant, user and roles). */
  async session(): Promise<SessionResponse> {
    return this.request('/sync/session', { method: 'GET' }, SessionResponse);
  }

  async bootstrap(): Promise<BootstrapManifest | null> {
    try {
      return (await this.request('/sync/bootstrap', { method: 'GET' }, BootstrapResponse)).bootstrap;
    } catch (err) {
      // A server from before bootstraps: the device pulls.
      if (err instanceof ServerError && err.status === 404) return null;
      throw err;
    }
  }

  async downloadBootstrap(manifest: BootstrapManifest, file: string): Promise<void> {
    const path = `/sync/bootstrap/${manifest.id}`;
    let response: Response;
    try {
      response = await this.fetchImpl(this.baseUrl + path, {
        method: 'GET',
        headers: { authorization: `Bearer ${this.token}`, accept: 'application/vnd.sqlite3' },
        signal: withTimeout(this.timeoutMs + Math.ceil(manifest.bytes / MIN_DOWNLOAD_BYTES_PER_MS), undefined),
      });
    } catch (err) {
      throw new NetworkError(`GET ${path}: ${err instanceof Error ? describeCause(err) : String(err)}`, { cause: err });
    }
    if (!response.ok || !response.body) {
      const text = await response.text().catch(() => '');
      if (response.status === 401 || response.status === 403) throw new AuthError(response.status, `GET ${path}: ${text.slice(0, 300)}`);
      throw new ServerError(response.status, `GET ${path}: HTTP ${response.status}: ${text.slice(0, 300)}`);
    }
    const hash = createHash('sha256');
    let bytes = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        bytes += chunk.length;
        if (bytes > manifest.bytes) done(new BootstrapDownloadError(200, `GET ${path}: more than the manifest's ${manifest.bytes} bytes`));
        else done(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), count, createWriteStream(file, { flags: 'wx' }));
    } catch (err) {
      if (err instanceof BootstrapDownloadError) throw err;
      throw new NetworkError(`GET ${path}: ${err instanceof Error ? describeCause(err) : String(err)}`, { cause: err });
    }
    const digest = hash.digest('hex');
    if (bytes !== manifest.bytes || digest !== manifest.id) {
      throw new BootstrapDownloadError(200, `GET ${path}: got ${bytes} bytes with SHA-256 ${digest}, not the manifest's ${manifest.bytes} bytes with ${manifest.id}`);
    }
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
