import type { z } from 'zod';
import { RpcError } from '../../src/app/rpc-client.js';
import { describeIssues } from '../../src/domain/issues.js';

export type FieldErrors = Record<string, string>;

/** zod issues → first message per dotted path, for inline field errors. */
export function fieldErrors(error: z.ZodError): FieldErrors {
  const out: FieldErrors = {};
  for (const issue of error.issues) {
    const key = issue.path.join('.') || '(root)';
    if (!(key in out)) out[key] = issue.message;
  }
  return out;
}

/** Any failure from a call → a sentence for the user. */
export function describeError(err: unknown): string {
  if (err instanceof RpcError) {
    if (err.code === 'BAD_INPUT' && err.issues.length) return describeIssues(err.issues);
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
