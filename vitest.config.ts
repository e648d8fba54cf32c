import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // `import { connect } from 'nexus'` (examples/, test/examples/) runs the
    // TypeScript sources here; compiled code reaches dist/ through the
    // package's self-reference ("exports" in package.json).
    alias: [{ find: /^nexus$/, replacement: fileURLToPath(new URL('./src/sdk/index.ts', import.meta.url)) }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Mount tests spawn daemons; keep parallelism modest on a 2-core machine.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
