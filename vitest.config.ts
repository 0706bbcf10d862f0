import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{core,gateway,egress,operator,runner-image,test}/**/*.test.ts"],
    exclude: ["**/node_modules/**", "test/e2e-kind/**"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
