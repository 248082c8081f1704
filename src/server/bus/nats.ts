import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { BusNames } from './messages.js';

/** How long the broker remembers a message id to drop a re-publication (the relay's crash window). */
export const DUPLICATE_WINDOW_MS = 10 * 60_000;

/**
 * Connect for good: the client reconnects forever (a broker restart is an outage, not an end),
 * and a first connection waits for a broker that is not up yet.
 */
export async function connectBus(url: string, name: string): Promise<NatsConnection> {
  return connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: true, timeout: 5000 });
}

/**
 * Create (or keep) the events stream and the dead-letter stream: file storage, so a broker
 * restart loses nothing it acknowledged; limits retention, so several consumers may read.
 */
export async function ensureStreams(nc: NatsConnection, names: BusNames): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  await upsertStream(jsm, names.stream, `${names.prefix}.>`, DUPLICATE_WINDOW_MS);
  await upsertStream(jsm, names.deadStream, `${names.deadPrefix}.>`, 2 * 60_000);
  return jsm;
}

async function upsertStream(jsm: JetStreamManager, name: string, subject: string, duplicateWindowMs: number): Promise<void> {
  const config = {
    name,
    subjects: [subject],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    duplicate_window: nanos(duplicateWindowMs),
  };
  try {
    await jsm.streams.info(name);
    await jsm.streams.update(name, { subjects: config.subjects, duplicate_window: config.duplicate_window });
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add(config);
  }
}

export function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; api_error?: { err_code?: number } };
  return e?.api_error?.err_code === 10059 || e?.api_error?.err_code === 10014 || /not found/i.test(String(e?.message ?? ''));
}
