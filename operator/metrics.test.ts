import { describe, expect, it } from "vitest";
import { createMetrics, failureReason, runOutcome, stageFinished } from "./metrics.ts";

const tokens = { input: 10, output: 5, cacheRead: 100, cacheWrite: 20 };

describe("operator metrics", () => {
  it("names run outcomes in lower case, with the outcome records' words", () => {
    expect(["Ready", "Escalated", "Failed", "Cancelled"].map((p) => runOutcome(p as never))).toEqual([
      "clean",
      "escalated",
      "failed",
      "cancelled",
    ]);
  });

  it("tells why a stage attempt failed", () => {
    expect(failureReason("Failed", "tests fail")).toBe("agent_failed");
    expect(failureReason("Error", "pod ended without a result")).toBe("infrastructure");
    expect(failureReason("Error", "timed out after 1800s")).toBe("timeout");
    expect(failureReason("Error", "cancelled")).toBeUndefined();
    expect(failureReason("Succeeded", "", 2)).toBe("blocking_findings");
    expect(failureReason("Succeeded", "", 0)).toBeUndefined();
  });

  it("records a finished stage with lower-case outcome, snake_case token kinds and its failure reason", async () => {
    const m = createMetrics({ models: ["m1"] });
    const stage = {
      name: "review",
      outcome: "Succeeded",
      message: "",
      durationSeconds: 12,
      costUsd: 0.5,
      turns: 3,
    } as const;
    stageFinished(m, { ...stage, tokens }, "m1", 1);
    const text = await m.registry.metrics();
    expect(text).toContain('agentfactory_stage_duration_seconds_count{stage="review",outcome="succeeded"} 1');
    expect(text).toContain('agentfactory_tokens_total{stage="review",model="m1",kind="cache_read"} 100');
    expect(text).toContain('agentfactory_cost_usd_total{stage="review",model="m1"} 0.5');
    expect(text).toContain('agentfactory_stage_failures_total{stage="review",reason="blocking_findings"} 1');
    expect(text).toContain('agentfactory_stage_failures_total{stage="write",reason="timeout"} 0');
  });

  it("starts known series at zero, so the first event shows in rate() and increase()", async () => {
    const text = await createMetrics().registry.metrics();
    expect(text).toContain('agentfactory_runs_total{outcome="escalated",risk_tier="unknown"} 0');
    expect(text).toContain('controller_runtime_reconcile_errors_total{controller="agentrun"} 0');
    expect(text).toContain('workqueue_retries_total{name="agentrun"} 0');
    expect(text).toContain('agentfactory_tickets_total{source="github",kind="new",result="created"} 0');
    expect(text).toContain("agentfactory_time_to_pr_seconds_count 0");
    expect(text).toContain("agentfactory_time_to_ready_seconds_count 0");
    expect(text).toContain('agentfactory_runs_active{phase="AwaitingReply"} 0');
    expect(text).not.toContain('agentfactory_runs_active{phase="Ready"}');
  });
});
