import { describe, expect, it } from "vitest";
import { loadConfig } from "../../runner-image/src/config.ts";
import type { Forge } from "../../runner-image/src/forge.ts";
import { createRedactor } from "../../runner-image/src/hooks/redact.ts";
import { LocalExecutor } from "../../runner-image/src/sandbox/local.ts";
import type { StageDeps } from "../../runner-image/src/stages/common.ts";
import { review } from "../../runner-image/src/stages/review.ts";
import { CALC_FILES, ticketFor } from "./harness.ts";

/** A forge that serves one PR and records the review; the model must not be called for a low-tier PR. */
function deps(files: string[], policy: string | undefined) {
  const posted: { body: string; comments: unknown[] }[] = [];
  const forge = {
    pull: async () => ({
      number: 5,
      url: "u",
      headSha: "abc",
      branch: "agent/5-x",
      body: "",
      base: "main",
      title: "t",
    }),
    pullFiles: async () => files,
    fileAt: async (p: string, ref: string) => (p === "risk-policy.json" && ref === "main" ? policy : undefined),
    reviewOnce: async (_pr: number, marker: string, r: { body: string; comments: unknown[] }) => {
      posted.push({ body: `${marker}\n${r.body}`, comments: r.comments });
      return { id: 1, reused: false };
    },
  } as unknown as Forge;
  const config = loadConfig({
    AGENTFACTORY_STAGE: "review",
    AGENTFACTORY_RUN: "calc-5-x",
    AGENTFACTORY_TICKET: JSON.stringify(ticketFor("acme/calc", 5, "Docs", "")),
    AGENTFACTORY_CONTEXT: JSON.stringify({ pullRequest: { number: 5, url: "u", branch: "agent/5-x", headSha: "abc" } }),
    AGENTFACTORY_WORKSPACE: "/nonexistent-workspace",
  });
  const d: StageDeps = {
    config,
    client: { create: () => Promise.reject(new Error("the model must not be called")) },
    forge,
    redact: createRedactor([]),
    log: () => {},
    baseEnv: { PATH: process.env.PATH },
    executor: new LocalExecutor(),
  };
  return { d, posted };
}

describe("review: the tier's requiredChecks decide what runs", () => {
  it("a low-tier PR (docs only) runs only the gate: no checkout, no tests, no model", async () => {
    const { d, posted } = deps(["README.md", "docs/a/b.md"], CALC_FILES["risk-policy.json"]);
    const r = await review(d);
    expect(r).toMatchObject({
      outcome: "succeeded",
      turns: 0,
      review: {
        riskTier: "low",
        checks: {
          "risk-policy-gate": "success",
          tests: "skipped",
          "claude-review": "skipped",
          "spec-audit": "skipped",
        },
      },
    });
    expect(posted[0]?.body).toMatch(/🟢 \*\*Risk tier: `low`\*\*/);
  });

  it("a blocked path fails the gate, skips everything else and is a blocking finding", async () => {
    const { d, posted } = deps(["secrets/prod.env", "README.md"], CALC_FILES["risk-policy.json"]);
    const r = await review(d);
    expect(r.review).toMatchObject({
      checks: { "risk-policy-gate": "failure", tests: "skipped" },
      findings: { total: 1, blocking: 1 },
    });
    expect(posted[0]?.body).toMatch(/blocked by policy/);
  });

  it("reports human approval for tiers that require it", async () => {
    const policy = JSON.stringify({
      version: "1",
      riskTierRules: { high: ["docs/**"] },
      mergePolicy: {
        high: { requiredChecks: ["risk-policy-gate"], humanApprovalRequired: true },
        low: { requiredChecks: ["risk-policy-gate"] },
      },
    });
    const { d, posted } = deps(["docs/x.md"], policy);
    expect((await review(d)).review?.riskTier).toBe("high");
    expect(posted[0]?.body).toMatch(/Human approval is required/);
  });
});
