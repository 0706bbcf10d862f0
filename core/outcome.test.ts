import { describe, expect, it } from "vitest";
import { type AgentRun, AgentRunSpec, type AgentRunStatus, type Phase } from "./agentrun.ts";
import { OUTCOMES, OutcomeRecord, outcomeFromRun, parseJsonl, toJsonl } from "./outcome.ts";

const spec = AgentRunSpec.parse({
  ticket: {
    source: "clickup",
    id: "clickup:e-1",
    workItem: "86c2abc",
    url: "https://app.clickup.com/t/86c2abc",
    repo: "acme/demo",
    number: 0,
    title: "Add a health endpoint",
    body: "",
    author: "alice",
  },
  model: { provider: "bedrock", name: "claude-sonnet-4-6" },
});

const stage = (name: "triage" | "write" | "review" | "remediate", attempt: number, over = {}) => ({
  name,
  attempt,
  jobName: `run-${name}-${attempt}`,
  outcome: "Succeeded" as const,
  costUsd: 0.5,
  tokens: { input: 100, output: 10, cacheRead: 1000, cacheWrite: 5 },
  turns: 10,
  durationSeconds: 61.5,
  message: "",
  ...over,
});

const finished = (phase: Phase, over: Partial<AgentRunStatus> = {}): AgentRun => ({
  apiVersion: "agentfactory.dev/v1alpha1",
  kind: "AgentRun",
  metadata: { name: "demo-86c2abc-0123abcd", creationTimestamp: "2026-03-01T09:59:59Z" },
  spec,
  status: {
    phase,
    conditions: [],
    round: 1,
    questions: 0,
    riskTier: "medium",
    pullRequest: { number: 42, url: "https://github.com/acme/demo/pull/42", branch: "agent/86c2abc-add", headSha: "b" },
    stages: [
      stage("triage", 1, { costUsd: 0.1, model: "claude-haiku-4-5" }),
      stage("write", 1, { outcome: "Error", costUsd: 0, turns: 0 }),
      stage("write", 2, { model: "claude-sonnet-4-6" }),
      stage("review", 1, { model: "claude-opus-4-6" }),
      stage("remediate", 1),
      stage("review", 2, { model: "claude-opus-4-6" }),
    ],
    costUsd: 2.1,
    startTime: "2026-03-01T10:00:00.000Z",
    completionTime: "2026-03-01T10:42:30.500Z",
    ...over,
  },
});

const extras = {
  filesChanged: ["src/health.ts", "src/health.test.ts", "src/health.ts"],
  findings: ["  missing null check in handler ", "missing null check in handler", "", "no test for 503"],
  checks: { gate: "success", tests: "success", review: "failure" } as const,
};

describe("outcomeFromRun", () => {
  it("builds the seed's fields and the measured ones from a finished run", () => {
    const record = outcomeFromRun(finished("Ready"), extras);
    expect(record).toEqual({
      outcome: "clean",
      pr_url: "https://github.com/acme/demo/pull/42",
      pr_number: 42,
      branch: "agent/86c2abc-add",
      risk_tier: "medium",
      checks: { gate: "success", tests: "success", review: "failure", spec_audit: "skipped" },
      files_changed: ["src/health.ts", "src/health.test.ts"],
      review_findings: ["missing null check in handler", "no test for 503"],
      run_id: "demo-86c2abc-0123abcd",
      timestamp: "2026-03-01T10:42:30Z",
      model: "claude-sonnet-4-6",
      review_model: "claude-opus-4-6",
      provider: "bedrock",
      cost_usd: 2.1,
      duration_ms: 2_550_500,
      num_turns: 50,
      turns_total: 50,
      engine: "agentfactory",
      tokens: { input: 600, output: 60, cache_read: 6000, cache_write: 30 },
      remediation_rounds: 1,
      task_id: "86c2abc",
      issue_url: "https://app.clickup.com/t/86c2abc",
      phase: "Ready",
      stages: [
        { name: "triage", attempt: 1, outcome: "succeeded", cost_usd: 0.1, turns: 10, duration_ms: 61_500 },
        { name: "write", attempt: 1, outcome: "error", cost_usd: 0, turns: 0, duration_ms: 61_500 },
        { name: "write", attempt: 2, outcome: "succeeded", cost_usd: 0.5, turns: 10, duration_ms: 61_500 },
        { name: "review", attempt: 1, outcome: "succeeded", cost_usd: 0.5, turns: 10, duration_ms: 61_500 },
        { name: "remediate", attempt: 1, outcome: "succeeded", cost_usd: 0.5, turns: 10, duration_ms: 61_500 },
        { name: "review", attempt: 2, outcome: "succeeded", cost_usd: 0.5, turns: 10, duration_ms: 61_500 },
      ],
      started_at: "2026-03-01T10:00:00.000Z",
      completed_at: "2026-03-01T10:42:30.500Z",
    });
    expect(OutcomeRecord.parse(record)).toEqual(record);
  });

  it.each([
    ["Ready", "clean"],
    ["Escalated", "escalated"],
    ["Failed", "failed"],
    ["Cancelled", "cancelled"],
  ] as const)("maps %s to %s", (phase, outcome) => {
    expect(outcomeFromRun(finished(phase), extras).outcome).toBe(outcome);
    expect(OUTCOMES).toContain(outcome);
  });

  it("records a run that never opened a PR with pr_number 0 and an unknown tier", () => {
    const run = finished("Failed", { pullRequest: undefined, riskTier: undefined, stages: [stage("triage", 1)] });
    const record = outcomeFromRun(run, { filesChanged: [], findings: [], checks: {} });
    expect(record).toMatchObject({ pr_number: 0, pr_url: "", branch: "", risk_tier: "unknown" });
    expect(record.checks).toEqual({ gate: "skipped", tests: "skipped", review: "skipped", spec_audit: "skipped" });
    expect(record.model).toBe("claude-sonnet-4-6");
    expect(OutcomeRecord.safeParse(record).success).toBe(true);
  });

  it("takes the provider from extras when given", () => {
    expect(outcomeFromRun(finished("Ready"), { ...extras, provider: "vertex" }).provider).toBe("vertex");
  });

  it.each(["Pending", "Triaging", "AwaitingReply", "Writing", "Reviewing", "Remediating"] as const)(
    "refuses a run still %s",
    (phase) => {
      expect(() => outcomeFromRun(finished(phase), extras)).toThrow(/not finished/);
    },
  );

  it("refuses a run without status", () => {
    expect(() => outcomeFromRun({ ...finished("Ready"), status: undefined }, extras)).toThrow(/not finished/);
  });
});

describe("JSONL", () => {
  const a = outcomeFromRun(finished("Ready"), extras);
  const b = outcomeFromRun(finished("Escalated"), extras);

  it("writes one line per record, each ending in a newline, and reads them back", () => {
    const text = toJsonl([a, b]);
    expect(text.split("\n")).toHaveLength(3);
    expect(text.endsWith("\n")).toBe(true);
    expect(parseJsonl(text)).toEqual({ records: [a, b], skipped: 0, errors: [] });
    expect(toJsonl([])).toBe("");
  });

  it("reads the seed's lines, legacy outcomes included", () => {
    const seed = [
      '{"outcome":"tests-failed","pr_url":"https://github.com/o/r/pull/20","pr_number":20,"branch":"agent/gh-19","risk_tier":"unknown","checks":{"gate":"success","tests":"failure","review":"skipped","spec_audit":"cancelled"},"files_changed":["a.py"],"review_findings":[],"run_id":"123","timestamp":"2026-02-20T10:00:00Z"}',
      '{"outcome":"review-failed","pr_url":"u","pr_number":21,"branch":"b","risk_tier":"high","checks":{"gate":"success","tests":"success","review":"failure","spec_audit":"failure"},"files_changed":[],"review_findings":["x"],"run_id":"124","timestamp":"2026-02-21T10:00:00Z","model":"claude-sonnet-4-6","review_model":"claude-opus-4-6","provider":"anthropic"}',
      '{"outcome":"blocked","pr_url":"u","pr_number":22,"branch":"b","risk_tier":"","checks":{"gate":"failure","tests":"skipped","review":"skipped","spec_audit":"skipped"},"files_changed":[],"review_findings":[],"run_id":"125","timestamp":"2026-02-22T10:00:00Z","cost_usd":0,"turns_total":0,"complexity":"high"}',
    ].join("\n");
    const parsed = parseJsonl(seed);
    expect(parsed.skipped).toBe(0);
    expect(parsed.records.map((r) => r.outcome)).toEqual(["tests-failed", "review-failed", "blocked"]);
    expect(parsed.records[2]?.risk_tier).toBe("unknown");
    expect(parsed.records[2]).not.toHaveProperty("complexity");
  });

  it("skips blank and malformed lines and says which and why", () => {
    const { turns_total: _, ...withoutOptional } = a;
    const { run_id: __, ...withoutRunId } = a;
    const text = [
      JSON.stringify(a),
      "",
      "   ",
      "{not json",
      JSON.stringify(withoutRunId),
      JSON.stringify({ ...a, outcome: "merged" }),
      "[]",
      `${JSON.stringify(withoutOptional)}\r`,
      JSON.stringify(b),
      "",
    ].join("\n");
    const parsed = parseJsonl(text);
    expect(parsed.records).toEqual([a, withoutOptional, b]);
    expect(parsed.skipped).toBe(4);
    expect(parsed.errors.map((e) => e.line)).toEqual([4, 5, 6, 7]);
    expect(parsed.errors[0]?.error).toBe("not JSON");
    expect(parsed.errors[1]?.error).toMatch(/^run_id:/);
    expect(parsed.errors[2]?.error).toMatch(/^outcome:/);
  });
});
