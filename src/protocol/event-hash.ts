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
  return chainHash(previousHash, e, canonicalJson(e.data), canonicalJson(e.metadata));
}

/**
 * computeEventHash when the canonical JSON of data and metadata is already at hand (the server
 * stores those very texts, so it writes each event to JSON once).
 */
export function chainHash(previousHash: string, e: Omit<HashedContent, 'data' | 'metadata'>, dataJson: string, metadataJson: string): string {
  // The keys in sorted order: exactly canonicalJson({ id, stream, version, type, schemaVersion, data, metadata, recordedAt }).
  const body =
    `{"data":${dataJson},"id":${canonicalJson(e.eventId)},"metadata":${metadataJson},"recordedAt":${canonicalJson(e.recordedAt)},` +
    `"schemaVersion":${canonicalJson(e.schemaVersion)},"stream":${canonicalJson(e.streamId)},"type":${canonicalJson(e.eventType)},"version":${canonicalJson(e.streamVersion)}}`;
  return createHash('sha256').update(previousHash).update(body).digest('hex');
}
