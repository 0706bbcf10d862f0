import { describe, expect, it } from "vitest";
import type { AgentRunStatus } from "../core/agentrun.ts";
import { embedFindings } from "../core/findings.ts";
import { OutcomeRecord } from "../core/outcome.ts";
import { extractPatterns } from "../core/patterns.ts";
import type { ObservedJob } from "../core/plan.ts";
import { StageResult } from "../core/result.ts";
import { blockingFindingTitles, outcomeRecord, reviewChecks } from "./outcome.ts";
import { agentRun } from "./testing.ts";

const reviewJob = (attempt: number, checks: Record<string, "success" | "failure" | "skipped">): ObservedJob => ({
  name: `r-review-${attempt}`,
  stage: "review",
  attempt,
  state: "Succeeded",
  result: StageResult.parse({
    stage: "review",
    outcome: "succeeded",
    review: { riskTier: "high", checks, findings: { total: 1, blocking: 1 } },
  }),
});

const status = (phase: AgentRunStatus["phase"], over: Partial<AgentRunStatus> = {}): AgentRunStatus => ({
  phase,
  conditions: [],
  round: 2,
  questions: 1,
  riskTier: "high",
  pullRequest: { number: 9, url: "https://github.com/acme/web/pull/9", branch: "agent/7-x", headSha: "abc" },
  stages: [
    {
      name: "write",
      attempt: 1,
      jobName: "w",
      outcome: "Succeeded",
      model: "claude-sonnet",
      costUsd: 0.4,
      tokens: { input: 10, output: 5, cacheRead: 2, cacheWrite: 1 },
      turns: 4,
      durationSeconds: 1.5,
      message: "",
    },
  ],
  costUsd: 0.4,
  startTime: "2026-01-01T00:00:00.000Z",
  ...over,
});

describe("reviewChecks", () => {
  it("maps the last review's runner check names to the record's keys", () => {
    const jobs = [
      reviewJob(1, { "risk-policy-gate": "success", tests: "failure" }),
      reviewJob(2, {
        "risk-policy-gate": "success",
        tests: "success",
        "claude-review": "failure",
        "spec-audit": "skipped",
      }),
      { name: "t", stage: "triage", attempt: 3, state: "Succeeded" } as ObservedJob,
    ];
    expect(reviewChecks(jobs)).toEqual({ gate: "success", tests: "success", review: "failure", spec_audit: "skipped" });
    expect(reviewChecks([])).toEqual({});
  });
});

describe("blockingFindingTitles", () => {
  it("titles of the latest AgentFactory review's blocking findings only", () => {
    const f = (title: string, blocking: boolean) => ({
      source: "claude-review",
      severity: "high" as const,
      title,
      detail: "d",
      blocking,
    });
    const body = (n: number, fs: ReturnType<typeof f>[]) =>
      `<!-- agentfactory:run=r stage=review attempt=${n} kind=review -->\n${embedFindings(fs)}`;
    const titles = blockingFindingTitles([
      { body: body(1, [f("old", true)]), byApp: true },
      { body: body(2, [f("Unvalidated request input", true), f("nit", false)]), byApp: true },
    ]);
    expect(titles).toEqual(["Unvalidated request input"]);
  });
});

describe("outcomeRecord", () => {
  it("is core's record: valid, snake_case tokens, lowercase stage outcomes, findings and checks filled", () => {
    const record = outcomeRecord(
      agentRun(),
      status("Escalated"),
      [reviewJob(1, { tests: "failure", "claude-review": "failure" })],
      { filesChanged: ["a.ts", "b/c.ts"], findings: ["Unvalidated request input"] },
      new Date("2026-01-01T00:05:00.250Z"),
    );
    expect(OutcomeRecord.safeParse(record).success).toBe(true);
    expect(record).toMatchObject({
      outcome: "escalated",
      phase: "Escalated",
      pr_number: 9,
      risk_tier: "high",
      checks: { gate: "skipped", tests: "failure", review: "failure", spec_audit: "skipped" },
      files_changed: ["a.ts", "b/c.ts"],
      review_findings: ["Unvalidated request input"],
      provider: "anthropic",
      timestamp: "2026-01-01T00:05:00Z",
      completed_at: "2026-01-01T00:05:00.250Z",
      duration_ms: 300_250,
      tokens: { input: 10, output: 5, cache_read: 2, cache_write: 1 },
      remediation_rounds: 2,
    });
    expect(record.stages).toEqual([
      { name: "write", attempt: 1, outcome: "succeeded", cost_usd: 0.4, turns: 4, duration_ms: 1500 },
    ]);
  });

  it("keeps the run's completion time when it has one", () => {
    const record = outcomeRecord(
      agentRun(),
      status("Ready", { completionTime: "2026-01-01T00:01:00Z" }),
      [],
      { filesChanged: [], findings: [] },
      new Date("2027-01-01T00:00:00Z"),
    );
    expect(record.timestamp).toBe("2026-01-01T00:01:00Z");
  });

  it("records with findings feed anti-patterns", () => {
    const records = [9, 10].map((n) =>
      outcomeRecord(
        agentRun({ deliveryId: `d-${n}` }),
        status("Escalated", {
          pullRequest: { number: n, url: `https://github.com/acme/web/pull/${n}`, branch: "b", headSha: "h" },
        }),
        [],
        { filesChanged: [], findings: ["Unvalidated request input"] },
        new Date("2026-01-02T00:00:00Z"),
      ),
    );
    const report = extractPatterns(records, { now: new Date("2026-01-03T00:00:00Z") });
    expect(report.antiPatterns).toEqual([
      expect.objectContaining({ kind: "review-finding", subject: "Unvalidated request input", prs: [9, 10] }),
    ]);
  });
});
