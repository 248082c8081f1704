import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';

/** The "previous hash" of a stream's first event. */
export const GENESIS_HASH = '0'.repeat(64);

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

/**
 * sha256(previous hash of the stream + canonical JSON of the event), hex. The server chains
 * every stored event this way; devices recompute it to audit their synced copy.
 */
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
