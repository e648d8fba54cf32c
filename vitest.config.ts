import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Mount tests spawn daemons; keep parallelism modest on a 2-core machine.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
