// npm run test:faults: the fault suite (docs/RELIABILITY.md). One file at a time: each fault
// is heavy (a five-minute outage, twenty power cuts, a full disk) and timing-sensitive.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
    fileParallelism: false,
    reporters: ['default'],
  },
});
