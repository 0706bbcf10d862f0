/**
 * Crash safety with the real runner: while two runs go through the whole lifecycle (one remediated
 * to Ready, one asking a question that is answered), the operator is SIGKILLed at random moments and
 * started again. Every run still reaches its terminal phase with exactly one Job per stage attempt,
 * one PR, and one question comment per question.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTerminal } from "../../core/agentrun.ts";
import { issueCommentCreated, issuesLabeled } from "../world/github/index.ts";
import { CALC_FILES, storyScenario } from "./scenario.ts";
import { NAMESPACE, startWorld, type World } from "./world.ts";

const FIXES = "acme/crash-fixes";
const VAGUE = "acme/crash-vague";
const KILLS = 20;
// A fixed seed, so a failure can be replayed with the same kill moments.
let seed = 20261124;
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};

let world: World;

beforeAll(async () => {
  world = await startWorld({
    kubeletMode: "process",
    scenario: storyScenario({ [FIXES]: "fixes", [VAGUE]: "vague" }),
    // One operator at a time here; a killed leader's lease would otherwise hold the next one for 15 s.
    operatorEnv: { LEADER_ELECTION: "false", REPLY_WAIT_SECONDS: "600" },
  });
  for (const repo of [FIXES, VAGUE]) {
    await world.github.createRepo(repo, CALC_FILES);
    const issue = world.github.createIssue(repo, {
      title: repo === VAGUE ? "Make it faster" : "add() returns the wrong result",
      body: repo === VAGUE ? "Improve performance." : "add(2, 3) gives -1.",
      user: "alice",
      labels: ["ai-agent"],
    });
    expect((await world.deliver("issues", issuesLabeled(world.scope(repo), issue, "ai-agent"))).status).toBe(202);
  }
}, 120_000);

afterAll(async () => {
  await world?.stop();
});

describe("the operator SIGKILLed 20 times during two runs", () => {
  it("still finishes both runs without duplicating a Job, a PR or a question", async () => {
    const runOf = (repo: string) => world.runs().find((r) => r.spec.ticket.repo === repo);
    let kills = 0;
    let killsInFlight = 0;
    let replied = false;
    const deadline = Date.now() + 300_000;
    while (Date.now() < deadline) {
      const runs = [runOf(FIXES), runOf(VAGUE)];
      if (runs.every((r) => r && isTerminal(r.status?.phase)) && kills >= KILLS) break;
      const vague = runOf(VAGUE);
      if (!replied && vague?.status?.phase === "AwaitingReply") {
        const reply = world.github.addComment(VAGUE, 1, { body: "It's add(): fix that.", user: "alice" });
        const payload = issueCommentCreated(world.scope(VAGUE), world.github.issue(VAGUE, 1), reply);
        expect((await world.deliver("issue_comment", payload)).status).toBe(202);
        replied = true;
      }
      if (kills < KILLS) {
        await new Promise((r) => setTimeout(r, 100 + random() * 900));
        const inFlight = [runOf(FIXES), runOf(VAGUE)].some((r) => !r || !isTerminal(r.status?.phase));
        await world.crashOperator();
        kills += 1;
        if (inFlight) killsInFlight += 1;
      } else await new Promise((r) => setTimeout(r, 200));
    }
    expect(kills).toBe(KILLS);
    // The kills must land while the runs are under way, not after they ended.
    expect(killsInFlight).toBeGreaterThanOrEqual(10);

    const fixes = runOf(FIXES);
    const vague = runOf(VAGUE);
    expect(fixes?.status?.phase, fixes?.status?.message).toBe("Ready");
    expect(vague?.status?.phase, vague?.status?.message).toBe("Ready");
    expect(world.runs()).toHaveLength(2);

    const jobs = (world.kube.list("jobs", NAMESPACE) as Array<{ metadata: { name: string } }>).map(
      (j) => j.metadata.name,
    );
    for (const run of [fixes!, vague!]) {
      const stageJobs = run.status?.stages.map((s) => s.jobName) ?? [];
      // One Job per stage attempt, and no Job that status does not account for.
      expect(new Set(stageJobs).size).toBe(stageJobs.length);
      expect(jobs.filter((j) => j.startsWith(`${run.metadata.name}-`)).sort()).toEqual([...stageJobs].sort());
    }
    // One pod per Job: no stage ran twice.
    const pods = world.kubelet.pods().map((p) => p.job);
    expect(new Set(pods).size).toBe(pods.length);

    expect(await world.github.pulls(FIXES)).toHaveLength(1);
    expect(await world.github.pulls(VAGUE)).toHaveLength(1);
    const questions = world.github.comments(VAGUE, 1).filter((c) => c.body.includes("**Question:**"));
    expect(questions).toHaveLength(vague?.status?.questions ?? -1);
    expect(questions).toHaveLength(1);
  }, 360_000);
});
