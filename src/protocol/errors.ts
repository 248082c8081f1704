import type { Issue } from '../domain/issues.js';
import type { ExpectedVersion } from './envelope.js';

/**
 * A version conflict: the stream was not at the version the writer expected, and nothing was
 * written. The one internal name of the concept: the device's log throws it as a
 * ConcurrencyError; the server's store returns it (status 'conflict', the sync API's push
 * status) with the events the writer missed. Only the wire codes differ, as each API promises:
 * WRONG_EXPECTED_VERSION on the sync API, CONCURRENT_MODIFICATION on the seed API.
 */
export interface VersionConflict {
  streamId: string;
  expectedVersion: ExpectedVersion;
  currentVersion: number;
}

/** A version conflict thrown by a writer that cannot answer with one (the device's event log). */
export class ConcurrencyError extends Error implements VersionConflict {
  override name = 'ConcurrencyError';
  constructor(
    readonly streamId: string,
    readonly expectedVersion: ExpectedVersion,
    readonly currentVersion: number,
  ) {
    super(`stream ${streamId}: expected version ${String(expectedVersion)}, but it is at ${currentVersion}`);
  }
}

/** An event id that is already stored was appended again with different content. */
export class IdempotencyConflictError extends Error {
  override name = 'IdempotencyConflictError';
  constructor(readonly eventId: string, detail: string) {
    super(`event ${eventId} is already stored with different content (${detail})`);
  }
}

/** Event data or envelope failed validation; nothing was written. */
export class InvalidEventError extends Error {
  override name = 'InvalidEventError';
  constructor(
    message: string,
    readonly issues: Issue[] = [],
  ) {
    super(message);
  }
}

/** The database was written by a newer build than this one. */
export class SchemaTooNewError extends Error {
  override name = 'SchemaTooNewError';
  constructor(
    readonly file: string,
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      `${file} has schema version ${found}, but this build only knows up to ${supported}: ` +
        'it was written by a newer version of the app. Upgrade the app; the file was not touched.',
    );
  }
}

/**
 * A read needs events that were archived (issue 16: `npm run server -- archive`) and are no
 * longer in the central store. Nothing is answered from a partial history: the message names
 * the archive files to restore (`npm run server -- restore <file>`).
 */
export class ArchivedEventsError extends Error {
  override name = 'ArchivedEventsError';
  constructor(
    readonly what: string,
    readonly archives: string[],
  ) {
    super(`${what} needs events that were archived to ${archives.join(', ')}; restore with \`npm run server -- restore <file>\``);
  }
}

/**
 * This device dropped the order's events up to `evictedVersion` (bounded history): a read of
 * the order as it was before then needs its history from the server.
 */
export class HistoryEvictedError extends Error {
  override name = 'HistoryEvictedError';
  constructor(
    readonly streamId: string,
    readonly evictedVersion: number,
  ) {
    super(
      `the history of ${streamId} up to version ${evictedVersion} was dropped on this device (closed order past the retention window); ` +
        'open its history from the server',
    );
  }
}
