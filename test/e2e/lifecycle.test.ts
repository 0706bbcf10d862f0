/**
 * The AgentRun lifecycle end to end in the test world, with the real runner (kubelet in process mode
 * for speed; skeleton.test.ts runs the same path in Podman containers): findings → remediation →
 * Ready; findings twice → Escalated with a Slack message; an unclear ticket → question → reply →
 * Ready; a cancel while a stage runs. One world, one repository per story, all runs concurrent.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRun } from "../../core/agentrun.ts";
import { isTerminal } from "../../core/agentrun.ts";
import { issueCommentCreated, issuesLabeled, issuesUnlabeled } from "../world/github/index.ts";
import { CALC_FILES, storyScenario } from "./scenario.ts";
import { NAMESPACE, startWorld, type World } from "./world.ts";

const FIXES = "acme/fixes"; // a blocking finding in round 1, fixed by remediation
const STUBBORN = "acme/stubborn"; // blocking findings every round → escalation
const VAGUE = "acme/vague"; // unclear → question → reply
const SLOW = "acme/slow"; // cancelled while the write stage runs

const scenario = storyScenario({ [FIXES]: "fixes", [STUBBORN]: "stubborn", [VAGUE]: "vague", [SLOW]: "slow" });

let world: World;
const scopeOf = (repo: string) => world.scope(repo);
const deliver = async (event: string, payload: unknown) => (await world.deliver(event, payload)).status;
const runOf = (repo: string) => world.runs().find((r) => r.spec.ticket.repo === repo);
const finished = (repo: string, timeoutMs = 240_000) =>
  world.waitFor(
    `${repo} to finish`,
    () => {
      const r = runOf(repo);
      return r && isTerminal(r.status?.phase) ? r : undefined;
    },
    timeoutMs,
  );
const stagesOf = (r: AgentRun) => (r.status?.stages ?? []).map((s) => `${s.name}:${s.outcome}`);

beforeAll(async () => {
  world = await startWorld({ kubeletMode: "process", scenario, operatorEnv: { REPLY_WAIT_SECONDS: "600" } });
  for (const repo of [FIXES, STUBBORN, VAGUE, SLOW]) {
    await world.github.createRepo(repo, CALC_FILES);
    const issue = world.github.createIssue(repo, {
      title: repo === VAGUE ? "Make it faster" : "add() returns the wrong result",
      body: repo === VAGUE ? "Improve performance." : "add(2, 3) gives -1.",
      user: "alice",
      labels: ["ai-agent"],
    });
    expect(await deliver("issues", issuesLabeled(scopeOf(repo), issue, "ai-agent"))).toBe(202);
  }
}, 120_000);

afterAll(async () => {
  await world?.stop();
});

describe("AgentRun lifecycle with the real runner", () => {
  it("remediates a blocking finding and ends Ready", async () => {
    const r = await finished(FIXES);
    expect(r.status?.phase, r.status?.message).toBe("Ready");
    expect(r.status?.round).toBe(1);
    expect(stagesOf(r)).toEqual([
      "triage:Succeeded",
      "write:Succeeded",
      "review:Succeeded",
      "remediate:Succeeded",
      "review:Succeeded",
    ]);
    const pr = (await world.github.pulls(FIXES))[0]!;
    expect(await world.github.readFile(FIXES, pr.head.ref, "test/add.test.js")).toContain("add(-2, -3)");
    expect(world.github.reviews(FIXES, pr.number)).toHaveLength(2);
    await world.waitFor("PR ready", async () => (await world.github.pull(FIXES, pr.number)).draft === false, 30_000);
    expect(world.github.labels(FIXES, pr.number)).toContain("remediation-round-1");
  }, 300_000);

  it("escalates after two rounds that leave blocking findings, with a Slack message", async () => {
    const r = await finished(STUBBORN);
    expect(r.status?.phase, r.status?.message).toBe("Escalated");
    expect(r.status?.round).toBe(2);
    expect(stagesOf(r).filter((s) => s.startsWith("remediate"))).toHaveLength(2);
    const pr = (await world.github.pulls(STUBBORN))[0]!;
    expect(pr.draft).toBe(true);
    await world.waitFor(
      "the Slack message",
      () => world.slack.messages.find((m) => m.text?.includes(pr.html_url)),
      30_000,
    );
    const comments = world.github
      .comments(STUBBORN, pr.number)
      .filter((c) => c.body.includes("agentfactory:escalation"));
    expect(comments).toHaveLength(1);
  }, 300_000);

  it("asks one question on an unclear ticket, and a reply re-triages it to Ready", async () => {
    const asked = await world.waitFor(
      "the question",
      () => runOf(VAGUE)?.status?.phase === "AwaitingReply" && runOf(VAGUE),
      120_000,
    );
    expect(asked.status?.questions).toBe(1);
    const issue = world.github.issue(VAGUE, 1);
    const questions = world.github.comments(VAGUE, 1).filter((c) => c.body.includes("**Question:**"));
    expect(questions).toHaveLength(1);
    expect(world.github.labels(VAGUE, 1)).toContain("needs-clarification");
    const reply = world.github.addComment(VAGUE, 1, {
      body: "It's add(): the results are wrong, fix that.",
      user: "alice",
    });
    expect(await deliver("issue_comment", issueCommentCreated(scopeOf(VAGUE), issue, reply))).toBe(202);
    const r = await finished(VAGUE);
    expect(r.status?.phase, r.status?.message).toBe("Ready");
    expect(r.spec.clarifications.map((c) => c.body)).toEqual(["It's add(): the results are wrong, fix that."]);
    expect(stagesOf(r).slice(0, 2)).toEqual(["triage:Succeeded", "triage:Succeeded"]);
    expect(world.github.comments(VAGUE, 1).filter((c) => c.body.includes("**Question:**"))).toHaveLength(1);
  }, 300_000);

  it("cancels a run while its write stage runs: Job deleted, no PR", async () => {
    await world.waitFor(
      "the slow write stage to run",
      () => world.model.requests.some((q) => q.stage === "write" && JSON.stringify(q.body).includes(SLOW)),
      120_000,
    );
    const issue = world.github.issue(SLOW, 1);
    expect(await deliver("issues", issuesUnlabeled(scopeOf(SLOW), issue, "ai-agent"))).toBe(202);
    const r = await finished(SLOW, 60_000);
    expect(r.status?.phase).toBe("Cancelled");
    expect(r.spec.suspend).toBe(true);
    const jobs = (world.kube.list("jobs", NAMESPACE) as Array<{ metadata: { name: string } }>).map(
      (j) => j.metadata.name,
    );
    expect(jobs.filter((j) => j.startsWith(`${r.metadata.name}-write`))).toEqual([]);
    expect(await world.github.pulls(SLOW)).toEqual([]);
  }, 200_000);

  it("ran every NATS client as its own user without a permissions violation", () => {
    expect(world.nats.auth).toBe(true);
    expect(world.nats.violations()).toEqual([]);
  });
});
