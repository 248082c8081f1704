import { describeIssues, zodIssues, type Issue } from '../domain/issues.js';
import {
  ContractError,
  contract,
  parseInput,
  StatusEvent,
  type MethodInput,
  type MethodName,
  type MethodOutput,
} from './contract.js';

/**
 * Transport-agnostic client for the renderer↔store contract. It runs in the renderer (so it may
 * import zod and the contract only, never Node modules) and in tests.
 *
 * Every transport answers with an `RpcReply` envelope so typed errors survive the trip (Electron's
 * ipcRenderer.invoke would otherwise flatten a thrown error to a message string).
 */
/** UNAUTHORIZED, FORBIDDEN and UNSUPPORTED_MEDIA_TYPE come from browser mode's access checks. */
export type RpcErrorCode = ContractError['code'] | 'REJECTED' | 'UNAVAILABLE' | 'UNAUTHORIZED' | 'FORBIDDEN' | 'UNSUPPORTED_MEDIA_TYPE';
export interface RpcErrorBody {
  error: RpcErrorCode;
  message: string;
  issues: Issue[];
}
export type RpcReply = { ok: true; value: unknown } | { ok: false; error: RpcErrorBody };

export interface Transport {
  invoke(method: string, input: unknown): Promise<RpcReply>;
  /** Raw status notifications; the client validates them. Returns an unsubscribe function. */
  onStatus(listener: (event: unknown) => void): () => void;
}

/** Thrown by the client for any failed call; `code` tells bad input from server faults. */
export class RpcError extends Error {
  override name = 'RpcError';
  constructor(
    readonly code: RpcErrorCode,
    message: string,
    readonly issues: Issue[] = [],
  ) {
    super(message);
  }
}

export type RpcClient = { [M in MethodName]: (input: MethodInput<M>) => Promise<MethodOutput<M>> } & {
  onStatus(listener: (event: StatusEvent) => void): () => void;
};

export function createRpcClient(transport: Transport): RpcClient {
  const call = async (name: MethodName, raw: unknown): Promise<unknown> => {
    let input: unknown;
    try {
      input = parseInput(name, raw).input;
    } catch (err) {
      if (err instanceof ContractError) throw new RpcError(err.code, err.message, err.issues);
      throw err;
    }
    const reply = await transport.invoke(name, input);
    if (!reply.ok) throw new RpcError(reply.error.error, reply.error.message, reply.error.issues);
    const parsed = contract[name].output.safeParse(reply.value);
    if (!parsed.success) {
      const issues = zodIssues(parsed.error);
      throw new RpcError('BAD_OUTPUT', `unexpected reply from ${name}: ${describeIssues(issues)}`, issues);
    }
    return parsed.data;
  };
  const client: Record<string, unknown> = {
    onStatus(listener: (event: StatusEvent) => void) {
      return transport.onStatus((raw) => {
        const parsed = StatusEvent.safeParse(raw);
        // A malformed notification is dropped rather than crashing the UI; the next one replaces it.
        if (parsed.success) listener(parsed.data);
      });
    },
  };
  for (const name of Object.keys(contract) as MethodName[]) client[name] = (input: unknown) => call(name, input);
  return client as RpcClient;
}

function errorReply(code: RpcErrorCode, message: string): RpcReply {
  return { ok: false, error: { error: code, message, issues: [] } };
}

function isErrorBody(body: unknown): body is RpcErrorBody {
  return typeof body === 'object' && body !== null && typeof (body as RpcErrorBody).error === 'string' && typeof (body as RpcErrorBody).message === 'string';
}

/**
 * Browser mode: POST /rpc/:method and GET /rpc/events (Server-Sent Events). In the browser the
 * session cookie rides along by itself (same origin); other runtimes pass it in `headers`.
 */
export function httpTransport(baseUrl: string, opts: { headers?: Record<string, string> } = {}): Transport {
  const base = baseUrl.replace(/\/+$/, '');
  const extra = opts.headers ?? {};
  return {
    async invoke(method, input) {
      let res: Response;
      try {
        res = await fetch(`${base}/rpc/${encodeURIComponent(method)}`, {
          method: 'POST',
          headers: { ...extra, 'content-type': 'application/json' },
          body: JSON.stringify(input ?? {}),
        });
      } catch (err) {
        return errorReply('UNAVAILABLE', `cannot reach the local app service: ${(err as Error).message}`);
      }
      const body: unknown = await res.json().catch(() => null);
      if (res.ok) return { ok: true, value: body };
      if (isErrorBody(body)) return { ok: false, error: { ...body, issues: Array.isArray(body.issues) ? body.issues : [] } };
      return errorReply('INTERNAL', `the local app service answered ${res.status}`);
    },
    onStatus(listener) {
      const url = `${base}/rpc/events`;
      if (typeof globalThis.EventSource === 'function' && Object.keys(extra).length === 0) {
        // EventSource retries by itself while the service is down, but gives up for good on an
        // HTTP error (a 401 while the app restarts, say): then open a new one, backing off to 30 s.
        let source: EventSource | null = null;
        let retryTimer: ReturnType<typeof setTimeout> | null = null;
        let delay = 1000;
        let closed = false;
        const open = () => {
          source = new EventSource(url);
          source.onopen = () => {
            delay = 1000;
          };
          source.onmessage = (m) => {
            try {
              listener(JSON.parse(m.data as string));
            } catch {
              // Not JSON: ignore, the stream carries JSON only.
            }
          };
          source.onerror = () => {
            if (closed || source?.readyState !== EventSource.CLOSED) return;
            retryTimer = setTimeout(open, delay);
            delay = Math.min(delay * 2, 30_000);
          };
        };
        open();
        return () => {
          closed = true;
          if (retryTimer) clearTimeout(retryTimer);
          source?.close();
        };
      }
      return fetchEventStream(url, listener, extra);
    },
  };
}

/** SSE over fetch, for runtimes without EventSource (Node). Reconnects after a second. */
function fetchEventStream(url: string, listener: (event: unknown) => void, headers: Record<string, string>): () => void {
  const abort = new AbortController();
  const run = async () => {
    while (!abort.signal.aborted) {
      try {
        const res = await fetch(url, { signal: abort.signal, headers: { ...headers, accept: 'text/event-stream' } });
        if (!res.ok || !res.body) throw new Error(`status stream answered ${res.status}`);
        const decoder = new TextDecoder();
        let buffer = '';
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = frame
              .split('\n')
              .filter((l) => l.startsWith('data:'))
              .map((l) => l.slice(5).trimStart())
              .join('\n');
            if (data) {
              try {
                listener(JSON.parse(data));
              } catch {
                // ignore non-JSON frames
              }
            }
          }
        }
      } catch {
        if (abort.signal.aborted) return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  void run();
  return () => abort.abort();
}

/** What the preload script exposes as `window.orderlog`. */
export interface OrderlogBridge {
  invoke(method: string, input: unknown): Promise<RpcReply>;
  onStatus(listener: (event: unknown) => void): () => void;
}

/** Electron: the preload bridge (ipcRenderer.invoke('rpc', …) behind contextBridge). */
export function ipcTransport(bridge: OrderlogBridge): Transport {
  return {
    async invoke(method, input) {
      try {
        return await bridge.invoke(method, input);
      } catch (err) {
        return errorReply('UNAVAILABLE', `the app's main process did not answer: ${(err as Error).message}`);
      }
    },
    onStatus: (listener) => bridge.onStatus(listener),
  };
}
