import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { describeIssues, zodIssues } from '../../src/domain/issues.js';

describe('issues', () => {
  it('turn a zod error into dot paths under a prefix, the input itself being (root)', () => {
    const schema = z.object({ items: z.array(z.object({ sku: z.string() })) });
    const bad = schema.safeParse({ items: [{ sku: 1 }] });
    expect(bad.success).toBe(false);
    if (bad.success) return;
    expect(zodIssues(bad.error)).toEqual([{ path: 'items.0.sku', message: expect.any(String) }]);
    expect(zodIssues(bad.error, 'body')).toEqual([{ path: 'body.items.0.sku', message: expect.any(String) }]);
    const root = schema.safeParse(7);
    expect(!root.success && zodIssues(root.error)[0]!.path).toBe('(root)');
  });

  it('read as one line that names the first five and counts the rest', () => {
    const issues = Array.from({ length: 7 }, (_, i) => ({ path: `f${i}`, message: 'required' }));
    expect(describeIssues(issues.slice(0, 2))).toBe('f0: required; f1: required');
    expect(describeIssues(issues)).toBe('f0: required; f1: required; f2: required; f3: required; f4: required; and 2 more');
  });
});
