import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Native SQLite work and child processes: keep the 2-core machine from thrashing.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
