import { describe, expect, it } from 'vitest';
import { parseTortureArgs, runTorture } from '../../bench/torture.js';

describe('torture --short (the CI version of npm run torture)', () => {
  it('runs every part with faults injected and finds no failure', async () => {
    const results = await runTorture({ short: true });
    expect(results.map((r) => r.name.split(' ')[0])).toEqual(['crash', 'convergence', 'bad', 'load']);
    for (const r of results) {
      expect(r.trials, r.name).toBeGreaterThan(0);
      expect(r.faults, r.name).toBeGreaterThan(0);
      expect(r.details, r.name).toEqual([]);
      expect(r.failures, r.name).toBe(0);
    }
  }, 120_000);

  it('rejects unknown parts by name', () => {
    expect(parseTortureArgs(['--short', '--only=crash,fuzz'])).toEqual({ short: true, only: ['crash', 'fuzz'] });
    expect(() => parseTortureArgs(['--only=crash,nope'])).toThrow(/unknown torture part.*nope/);
    expect(parseTortureArgs(['--max-seconds=90'])).toEqual({ short: false, maxSecondsPerPart: 90 });
    expect(() => parseTortureArgs(['--max-seconds=soon'])).toThrow(/positive number of seconds/);
  });
});
