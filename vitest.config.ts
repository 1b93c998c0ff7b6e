import { defineConfig } from 'vitest/config';

// Every test file creates its own Dawn device, and each Dawn instance starts
// its own lavapipe worker threads. On a 2-core machine, running files in
// parallel only makes them contend, so files run one at a time in a forked
// worker each.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
