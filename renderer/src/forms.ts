import type { z } from 'zod';
import { RpcError } from '../../src/app/rpc-client.js';

export type FieldErrors = Record<string, string>;

const sentence = (s: string) => {
  const t = s.trim();
  return t ? `${t[0]!.toUpperCase()}${t.slice(1)}${/[.!?]$/.test(t) ? '' : '.'}` : t;
};

/**
 * One zod issue → a sentence for a person. The schemas' own messages ("may contain letters,
 * digits and . _ : @ - only") are kept; zod's generic wording ("Invalid input: expected number,
 * received NaN", "Too small: expected number to be >0") is replaced by what to do about it.
 */
export function plainIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.expected === 'number' || issue.expected === 'int') return 'Enter a whole number, for example 3.';
      if (issue.expected === 'string') return 'This field is required.';
      return 'This value is missing or not valid.';
    case 'too_small':
      if (/^(Too small|Invalid)/.test(issue.message)) {
        if (issue.origin === 'string') return Number(issue.minimum) <= 1 ? 'This field is required.' : `Enter at least ${String(issue.minimum)} characters.`;
        if (issue.origin === 'array') return `Add at least ${String(issue.minimum)}.`;
        const min = Number(issue.minimum);
        return issue.inclusive === false ? `Must be more than ${min}.` : `Must be at least ${min}.`;
      }
      return sentence(issue.message);
    case 'too_big':
      if (/^(Too big|Invalid)/.test(issue.message)) {
        if (issue.origin === 'string') return `Too long: at most ${String(issue.maximum)} characters.`;
        if (issue.origin === 'array') return `At most ${String(issue.maximum)} allowed.`;
        return `Must be at most ${Number(issue.maximum).toLocaleString()}.`;
      }
      return sentence(issue.message);
    default:
      if (/^Invalid (input|string|format)/.test(issue.message) || /expected/.test(issue.message)) return 'This value is not valid here.';
      return sentence(issue.message);
  }
}

/** zod issues → first plain message per dotted path, for inline field errors. */
export function fieldErrors(error: z.ZodError): FieldErrors {
  const out: FieldErrors = {};
  for (const issue of error.issues) {
    const key = issue.path.join('.') || '(root)';
    if (!(key in out)) out[key] = plainIssue(issue as z.core.$ZodIssue);
  }
  return out;
}

/** Any failure from a call → a sentence for the user. */
export function describeError(err: unknown): string {
  if (err instanceof RpcError) {
    if (err.code === 'BAD_INPUT' && err.issues.length) return err.issues.map((i) => sentence(i.message)).join(' ');
    if (err.code === 'UNAVAILABLE') return 'The app’s local service is not answering (is it restarting?). It reconnects by itself; try again in a moment.';
    return sentence(err.message);
  }
  return sentence(err instanceof Error ? err.message : String(err));
}

/** A character count for fields with a limit: shown before the limit bites, never silently cut. */
export function lengthNote(value: string, max: number): { text: string; over: boolean } {
  const n = value.trim().length;
  return { text: `${n.toLocaleString()} / ${max.toLocaleString()}`, over: n > max };
}
