import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRun } from "../../core/agentrun.ts";
import { runName } from "../../core/names.ts";
import { type Harness, startHarness } from "./harness.ts";

/**
 * The operator with the kubelet simulator in process mode: real Job controller semantics (pods,
 * conditions, deadlines), the runner replaced by test/operator/fixtures/runner.sh.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ kubelet: "process" });
  h.startOperator({ STAGE_TIMEOUT_SECONDS: "4" });
  await h.waitFor("operator", () => h.operator?.logs.some((l) => l.includes("ticket consumer started")));
});
afterAll(async () => {
  await h?.stop();
});

const finalized = (name: string) => () => {
  const r = h.run(name);
  return r?.status?.conditions.some((c) => c.type === "Finalized" && c.status === "True") ? r : undefined;
};
const stagesOf = (r: AgentRun) => r.status!.stages.map((s) => `${s.name}-${s.attempt}:${s.outcome}`);

describe("operator with the kubelet simulator (process mode)", () => {
  it("reads results from the pods' termination messages: clean run to Ready", async () => {
    const name = runName(await h.publish({ number: 31, workItem: "gh-31", body: "plain" }));
    const run = await h.waitFor("Ready", finalized(name), 60_000);
    expect(run.status!.phase).toBe("Ready");
    expect(stagesOf(run)).toEqual(["triage-1:Succeeded", "write-1:Succeeded", "review-1:Succeeded"]);
    expect(run.status!.stages[0]!).toMatchObject({
      costUsd: 0.01,
      turns: 2,
      model: "claude-test",
      message: "the spec",
    });
    expect(run.status!.costUsd).toBeCloseTo(0.03);
    expect(run.status!.riskTier).toBe("low");
  });

  it("findings twice escalate; the agent's own failure fails the run without retries", async () => {
    const a = runName(await h.publish({ number: 32, workItem: "gh-32", body: "fixture:blocking=1,1,1" }));
    const b = runName(await h.publish({ number: 33, workItem: "gh-33", body: "fixture:fail" }));
    const ra = await h.waitFor("Escalated", finalized(a), 60_000);
    expect(ra.status!.phase).toBe("Escalated");
    expect(ra.status!.round).toBe(2);
    const rb = await h.waitFor("Failed", finalized(b), 60_000);
    expect(rb.status!.phase).toBe("Failed");
    expect(stagesOf(rb)).toEqual(["triage-1:Succeeded", "write-1:Failed"]);
  });

  it("enforces the stage timeout: deletes the hung Job and retries the stage", async () => {
    const name = runName(await h.publish({ number: 34, workItem: "gh-34", body: "fixture:hang" }));
    const run = await h.waitFor("Ready after timeout", finalized(name), 90_000);
    expect(run.status!.phase).toBe("Ready");
    expect(stagesOf(run)).toEqual(["triage-1:Succeeded", "write-1:Error", "write-2:Succeeded", "review-1:Succeeded"]);
    expect(run.status!.stages[1]!.message).toMatch(/timed out after 4s/);
    expect(h.jobs(name).map((j) => j.metadata.name)).not.toContain(`${name}-write-1`);
  });
});
