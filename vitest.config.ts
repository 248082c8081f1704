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
    // A poll waits for what a real part does (a browser, a server, a worker): under the whole
    // suite on two cores that took over the 1 s default (a settings save in the e2e test, in CI).
    expect: { poll: { timeout: 10_000 } },
  },
});
