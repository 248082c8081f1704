/** The hash chain lives in the shared protocol module (devices audit with it); re-exported here. */
export { GENESIS_HASH, computeEventHash, type HashedContent } from '../protocol/event-hash.js';
export { canonicalJson } from '../protocol/canonical-json.js';
