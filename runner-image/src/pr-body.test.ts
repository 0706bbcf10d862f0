import { describe, expect, it } from "vitest";
import { STATS_END, STATS_START } from "./markers.ts";
import { prBody, statsSection, usd } from "./pr-body.ts";

const row = {
  stage: "write",
  attempt: 1,
  model: "claude-sonnet-4-6",
  costUsd: 0.2513,
  tokens: { input: 10, output: 20, cacheRead: 30, cacheWrite: 40 },
  turns: 7,
  durationMs: 12_340,
  outcome: "Succeeded",
};
const ticket = {
  source: "github" as const,
  id: "github:1",
  workItem: "gh-12",
  url: "u",
  repo: "a/b",
  number: 12,
  title: "t",
  body: "",
  author: "x",
  labels: [],
};

describe("PR body", () => {
  it("prints dollars with a leading zero", () => {
    expect(usd(0.2513)).toBe("$0.2513");
    expect(usd(1.5)).toBe("$1.5000");
  });
  it("has one row per stage, no Plan row, and the total, between the operator's markers", () => {
    const table = statsSection([row, { ...row, stage: "review", costUsd: 0.1 }]);
    expect(table.startsWith(STATS_START)).toBe(true);
    expect(table.endsWith(STATS_END)).toBe(true);
    expect(table).toContain("**Agent Stats** (total: $0.3513)");
    expect(table).toContain(
      "| Write | 1 | `claude-sonnet-4-6` | $0.2513 | 10 / 20 / 30 / 40 | 7 | 12.3s | Succeeded |",
    );
    expect(table).toContain("| Review |");
    expect(table).not.toContain("Plan");
  });
  it("closes the issue and names the run", () => {
    const body = prBody({ ticket, summary: "Fixed it.", requestId: "req-1", run: "b-12-x", stats: [row] });
    expect(body).toContain("Closes #12");
    expect(body).toContain("Fixed it.");
    expect(body).toContain("`b-12-x`");
  });
  it("links non-forge work items instead of closing", () => {
    const body = prBody({
      ticket: { ...ticket, source: "clickup", number: 0, workItem: "cu-9", url: "https://cu/9" },
      summary: "",
      requestId: "",
      run: "r",
      stats: [],
    });
    expect(body).not.toContain("Closes");
    expect(body).toContain("cu-9");
  });
});
