import type { Issue } from '../domain/issues.js';

/** Base of every error the sync HTTP client throws. */
export class SyncError extends Error {
  override name = 'SyncError';
  /** Worth retrying later with backoff (network trouble, server overload). */
  readonly retryable: boolean = false;
}

/** The server could not be reached, the connection broke, or the request timed out. */
export class NetworkError extends SyncError {
  override name = 'NetworkError';
  override readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The server answered with an unexpected status (5xx, 429, 404…) or a body that breaks the contract. */
export class ServerError extends SyncError {
  override name = 'ServerError';
  override readonly retryable: boolean;
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown = null,
  ) {
    super(message);
    this.retryable = status >= 500 || status === 429;
  }
}

/** 401/403: the token is missing, wrong or lacks the device role. Retrying cannot help. */
export class AuthError extends SyncError {
  override name = 'AuthError';
  constructor(
    readonly status: 401 | 403,
    message: string,
  ) {
    super(message);
  }
}

/** 400/413/422: the server refused the request itself; resending it unchanged cannot succeed. */
export class BadRequestError extends SyncError {
  override name = 'BadRequestError';
  constructor(
    readonly status: number,
    message: string,
    readonly issues: Issue[] = [],
  ) {
    super(message);
  }
}

/** The local log and the server disagree in a way the engine must not paper over. */
export class SyncInvariantError extends Error {
  override name = 'SyncInvariantError';
}

/** Outbox operations on a command that does not exist or is in the wrong state. */
export class OutboxError extends Error {
  override name = 'OutboxError';
  constructor(
    readonly code: 'UNKNOWN_COMMAND' | 'WRONG_STATUS' | 'COMMAND_ID_REUSED',
    message: string,
  ) {
    super(message);
  }
}

/** A command failed its schema: nothing was written. */
export class InvalidCommandError extends Error {
  override name = 'InvalidCommandError';
  constructor(
    message: string,
    readonly issues: Issue[] = [],
  ) {
    super(message);
  }
}

/** A sync scope failed its schema: nothing was changed. */
export class InvalidScopeError extends Error {
  override name = 'InvalidScopeError';
}
