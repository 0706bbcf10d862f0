import { describe, expect, it } from "vitest";
import type { AgentRunStatus } from "../core/agentrun.ts";
import { escalationComment, MARKERS, replaceStats, slackEscalation, statsTable } from "./finalize-text.ts";
import { agentRun } from "./testing.ts";

const tokens = { input: 100, output: 20, cacheRead: 5, cacheWrite: 1 };
const status: AgentRunStatus = {
  phase: "Escalated",
  round: 2,
  questions: 0,
  costUsd: 0.75,
  message: "1 blocking finding(s) remain after 2 round(s)",
  conditions: [
    { type: "Succeeded", status: "False", reason: "RemediationLimit", message: "", lastTransitionTime: "t" },
  ],
  pullRequest: { number: 4, url: "http://forge/acme/web/pull/4", branch: "agent/7-x", headSha: "abc" },
  stages: [
    {
      name: "triage",
      attempt: 1,
      jobName: "a",
      outcome: "Succeeded",
      model: "m1",
      costUsd: 0.25,
      tokens,
      turns: 3,
      durationSeconds: 12.5,
      message: "",
    },
    {
      name: "write",
      attempt: 1,
      jobName: "b",
      outcome: "Succeeded",
      model: "m2",
      costUsd: 0.5,
      tokens,
      turns: 9,
      durationSeconds: 60,
      message: "",
    },
  ],
};

describe("stats table", () => {
  it("has one row per stage with cost, tokens, turns and duration", () => {
    const t = statsTable(status);
    expect(t).toContain("total: $0.7500");
    expect(t).toContain("| Triage | 1 | `m1` | $0.2500 | 100 / 20 / 5 / 1 | 3 | 12.5s | Succeeded |");
    expect(t).toContain("| Write | 1 | `m2` | $0.5000 | 100 / 20 / 5 / 1 | 9 | 60.0s | Succeeded |");
  });

  it("replaces the marked section in place, or appends it once", () => {
    const appended = replaceStats("## Agent PR\n\nCloses #7", "TABLE");
    expect(appended).toBe("## Agent PR\n\nCloses #7\n\n---\nTABLE\n");
    const body = `intro\n${MARKERS.statsStart}\nold\n${MARKERS.statsEnd}\noutro`;
    const t = statsTable(status);
    const once = replaceStats(body, t);
    expect(once).toBe(`intro\n${t}\noutro`);
    expect(replaceStats(once, t)).toBe(once);
  });
});

describe("escalation texts", () => {
  it("comment carries the hidden marker, rounds and next steps", () => {
    const c = escalationComment(agentRun(), status);
    expect(c.startsWith(MARKERS.escalation(agentRun().metadata.name))).toBe(true);
    expect(c).toContain("Auto-remediation limit reached (2 rounds)");
    expect(c).toContain("**Next steps:**");
  });

  it("budget exhaustion reads differently", () => {
    const s = { ...status, conditions: [{ ...status.conditions[0]!, reason: "BudgetExhausted" }] };
    expect(escalationComment(agentRun(), s)).toContain("Budget exhausted");
    expect(slackEscalation(agentRun(), s)).toContain("budget exhausted");
  });

  it("Slack message links the PR", () => {
    expect(slackEscalation(agentRun(), status)).toContain("<http://forge/acme/web/pull/4|#4>");
  });
});
