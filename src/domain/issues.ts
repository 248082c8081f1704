import type { z } from 'zod';

/**
 * One problem with an input: where (a dot path) and what. Every layer reports bad input as a
 * list of these, on the wire too; it lives in the domain because the domain's own translations
 * (the seed dialect) report them.
 */
export interface Issue {
  path: string;
  message: string;
}

/** A zod error as issues, paths under `prefix` ('(root)' for the input itself). */
export function zodIssues(error: z.ZodError, prefix = ''): Issue[] {
  return error.issues.map((i) => ({ path: [prefix, ...i.path.map(String)].filter((p) => p !== '').join('.') || '(root)', message: i.message }));
}

/** One line for people: the first few issues with their paths. */
export function describeIssues(issues: readonly Issue[]): string {
  const shown = issues.slice(0, 5).map((i) => `${i.path}: ${i.message}`);
  if (issues.length > 5) shown.push(`and ${issues.length - 5} more`);
  return shown.join('; ');
}
