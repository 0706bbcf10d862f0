import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.ts";
import { parseQuantity, quantityProblems } from "./quantity.ts";

describe("parseQuantity (Kubernetes resource.Quantity syntax)", () => {
  it("reads the binary SI, decimal SI and exponent forms", () => {
    expect(parseQuantity("500m")).toBe(0.5);
    expect(parseQuantity("2")).toBe(2);
    expect(parseQuantity("1Gi")).toBe(2 ** 30);
    expect(parseQuantity("1.5Gi")).toBe(1.5 * 2 ** 30);
    expect(parseQuantity("128974848")).toBe(128974848);
    expect(parseQuantity("129e6")).toBe(129e6);
    expect(parseQuantity("123M")).toBe(123e6);
    expect(parseQuantity(".5")).toBe(0.5);
    expect(parseQuantity("1E")).toBe(1e18);
  });

  it("refuses what the API server refuses", () => {
    for (const bad of ["", "2 cores", "1GB", "1gi", "Gi", "0x10", "1.2.3", "-", "1Gi ", "one"])
      expect(parseQuantity(bad), bad).toBeUndefined();
  });
});

describe("quantityProblems (checked at operator start)", () => {
  it("accepts the defaults", () => {
    expect(quantityProblems(loadConfig({}))).toEqual([]);
  });

  it("names each bad setting: syntax, sign, request over limit, volume sizeLimits", () => {
    const problems = quantityProblems(
      loadConfig({
        RUNNER_CPU_LIMIT: "2 cores",
        RUNNER_MEMORY_REQUEST: "8Gi",
        SANDBOX_EPHEMERAL_STORAGE_LIMIT: "-1Gi",
        RUNNER_VOLUME_SIZE_LIMITS: JSON.stringify({ workspace: "8GB", tmp: "1Gi", scratch: "1Gi" }),
      }),
    );
    expect(problems).toEqual([
      'RUNNER_CPU_LIMIT="2 cores" is not a Kubernetes quantity (e.g. 500m, 2, 1Gi)',
      "RUNNER_MEMORY_REQUEST=8Gi is more than RUNNER_MEMORY_LIMIT=2Gi",
      'SANDBOX_EPHEMERAL_STORAGE_LIMIT="-1Gi" is negative',
      'RUNNER_VOLUME_SIZE_LIMITS.workspace="8GB" is not a Kubernetes quantity (e.g. 500m, 2, 1Gi)',
      "RUNNER_VOLUME_SIZE_LIMITS: unknown volume scratch",
    ]);
    expect(quantityProblems(loadConfig({ RUNNER_VOLUME_SIZE_LIMITS: "{workspace: 8Gi" }))).toEqual([
      "RUNNER_VOLUME_SIZE_LIMITS is not JSON",
    ]);
  });

  it("stops the operator process at start with a fatal message naming the setting", async () => {
    const root = join(import.meta.dirname, "..");
    const run = promisify(execFile)(process.execPath, ["--import", "tsx", "operator/main.ts"], {
      cwd: root,
      env: { PATH: process.env.PATH, RUNNER_MEMORY_LIMIT: "4 GiB", METRICS_PORT: "0", METRICS_HOST: "127.0.0.1" },
    });
    const err = (await run.then(
      () => undefined,
      (e) => e,
    )) as { code: number; stdout: string };
    expect(err?.code).toBe(1);
    const fatal = err.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((l) => l.level === 60);
    expect(fatal.msg).toContain('RUNNER_MEMORY_LIMIT="4 GiB" is not a Kubernetes quantity');
  });
});
