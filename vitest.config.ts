import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The fault suite is long (a five-minute outage, twenty power cuts): npm run test:faults.
    exclude: ['test/faults/**', '**/node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Peer tests bind ports and spawn servers; two workers suit this 2-core machine.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
