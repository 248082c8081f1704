import { createHash } from 'node:crypto';

/** The "previous hash" of a stream's first event. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * JSON with object keys sorted at every level, so the same value always hashes the same no
 * matter how a database (JSONB reorders keys) or a client serialised it.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    // undefined / functions have no JSON form; they never occur in parsed JSON.
    return text === undefined ? 'null' : text;
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** The parts of a stored event the chain protects. */
export interface HashedContent {
  eventId: string;
  streamId: string;
  streamVersion: number;
  eventType: string;
  schemaVersion: number;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  recordedAt: string;
}

/** sha256(previous hash of the stream + canonical JSON of the event), hex. */
export function computeEventHash(previousHash: string, e: HashedContent): string {
  const body = canonicalJson({
    id: e.eventId,
    stream: e.streamId,
    version: e.streamVersion,
    type: e.eventType,
    schemaVersion: e.schemaVersion,
    data: e.data,
    metadata: e.metadata,
    recordedAt: e.recordedAt,
  });
  return createHash('sha256').update(previousHash).update(body).digest('hex');
}
