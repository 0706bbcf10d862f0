import { defineConfig } from "vitest/config";

/** `make e2e-kind` only (run.sh): the kind smoke suite plus the shared end-to-end suite, against a cluster. */
export default defineConfig({
  test: {
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/e2e-kind/**/*.test.ts", "test/e2e/**/*.test.ts"],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: "forks",
    fileParallelism: false,
  },
});
