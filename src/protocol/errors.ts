import type { Issue } from '../domain/issues.js';
import type { ExpectedVersion } from './envelope.js';

/** The stream was not at the version the writer expected; nothing was written. */
export class ConcurrencyError extends Error {
  override name = 'ConcurrencyError';
  constructor(
    readonly streamId: string,
    readonly expectedVersion: ExpectedVersion,
    readonly actualVersion: number,
  ) {
    super(`stream ${streamId}: expected version ${String(expectedVersion)}, but it is at ${actualVersion}`);
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
