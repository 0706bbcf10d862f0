import { describe, expect, it } from "vitest";
import { AgentRunSpec, AgentRunStatus, API_VERSION, isTerminal, Phase, TERMINAL_PHASES } from "./agentrun.ts";

const ticket = {
  source: "github",
  id: "github:d-1",
  workItem: "gh-7",
  url: "https://github.com/acme/demo/issues/7",
  repo: "acme/demo",
  number: 7,
  title: "t",
  body: "b",
  author: "alice",
};

describe("AgentRun schemas", () => {
  it("names the API", () => {
    expect(API_VERSION).toBe("agentfactory.dev/v1alpha1");
  });

  it("fills the spec defaults of the design (2 rounds, anthropic, not suspended)", () => {
    expect(AgentRunSpec.parse({ ticket, model: { name: "m" } })).toEqual({
      ticket: { ...ticket, labels: [] },
      model: { provider: "anthropic", name: "m" },
      budgetUsd: 5,
      maxRemediationRounds: 2,
      stageTimeoutSeconds: 1800,
      suspend: false,
      clarifications: [],
    });
  });

  it.each([
    ["no budget", { budgetUsd: 0 }],
    ["too many rounds", { maxRemediationRounds: 6 }],
    ["a zero timeout", { stageTimeoutSeconds: 0 }],
    ["a clarification without author", { clarifications: [{ body: "b", at: "now" }] }],
  ])("rejects a spec with %s", (_, patch) => {
    expect(AgentRunSpec.safeParse({ ticket, model: { name: "m" }, ...patch }).success).toBe(false);
  });

  it("an empty status parses to Pending with nothing done", () => {
    expect(AgentRunStatus.parse({})).toEqual({
      phase: "Pending",
      conditions: [],
      round: 0,
      questions: 0,
      stages: [],
      costUsd: 0,
    });
  });

  it("stage entries default to Running with zero usage", () => {
    const s = AgentRunStatus.parse({ stages: [{ name: "write", attempt: 1, jobName: "j" }] });
    expect(s.stages[0]).toMatchObject({ outcome: "Running", costUsd: 0, turns: 0, tokens: { input: 0 } });
  });
});

describe("isTerminal", () => {
  it.each(Phase.options)("%s", (phase) => {
    expect(isTerminal(phase)).toBe(["Ready", "Escalated", "Failed", "Cancelled"].includes(phase));
  });
  it("treats a missing phase as not terminal", () => {
    expect(isTerminal(undefined)).toBe(false);
    expect(TERMINAL_PHASES).toHaveLength(4);
  });
});
