import { describe, expect, it } from "vitest";
import { evalJsonPath, humanDuration } from "./table.ts";

describe("humanDuration (apimachinery's HumanDuration)", () => {
  it.each([
    [0, "0s"],
    [119_000, "119s"],
    [150_000, "2m30s"],
    [600_000, "10m"],
    [3 * 3600_000 + 5 * 60_000, "3h5m"],
    [30 * 3600_000, "30h"],
    [3 * 86_400_000 + 2 * 3600_000, "3d2h"],
    [100 * 86_400_000, "100d"],
    [3 * 365 * 86_400_000, "3y0d"],
  ])("%d ms → %s", (ms, want) => {
    expect(humanDuration(ms)).toBe(want);
  });
});

describe("evalJsonPath", () => {
  const obj = {
    status: {
      conditions: [
        { type: "A", status: "False" },
        { type: "Ready", status: "True" },
      ],
      n: [5, 6],
    },
  };
  it.each([
    [".status.n[1]", 6],
    ['.status.conditions[?(@.type=="Ready")].status', "True"],
    [".status.missing.deeper", undefined],
    ["{.status.n[0]}", 5],
  ])("%s → %j", (path, want) => {
    expect(evalJsonPath(obj, path)).toEqual(want);
  });
});
