/**
 * Crash safety with the real runner: while runs go through the whole lifecycle (one remediated to
 * Ready, one asking a question that is answered, per batch), the operator is SIGKILLed 20 times at
 * random moments — always while a run is under way — and started again. Every run still reaches
 * Ready with exactly one Job per stage attempt, one pod per Job, one PR, and one question comment
 * per question.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTerminal } from "../../core/agentrun.ts";
import { issueCommentCreated, issuesLabeled } from "../world/github/index.ts";
import { CALC_FILES, type Story, storyScenario } from "./scenario.ts";
import { NAMESPACE, startWorld, type World } from "./world.ts";

const KILLS = 20;
const MAX_BATCHES = 6;
const batch = (i: number) => ({ fixes: `acme/crash-b${i}-fixes`, vague: `acme/crash-b${i}-vague` });
const stories: Record<string, Story> = {};
for (let i = 1; i <= MAX_BATCHES; i++) {
  stories[batch(i).fixes] = "fixes";
  stories[batch(i).vague] = "vague";
}
// A fixed seed, so a failure can be replayed with the same kill moments.
let seed = 20261124;
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};

let world: World;
const repos: string[] = [];

async function startBatch(i: number): Promise<void> {
  for (const repo of Object.values(batch(i))) {
    await world.github.createRepo(repo, CALC_FILES);
    const vague = stories[repo] === "vague";
    const issue = world.github.createIssue(repo, {
      title: vague ? "Make it faster" : "add() returns the wrong result",
      body: vague ? "Improve performance." : "add(2, 3) gives -1.",
      user: "alice",
      labels: ["ai-agent"],
    });
    expect((await world.deliver("issues", issuesLabeled(world.scope(repo), issue, "ai-agent"))).status).toBe(202);
    repos.push(repo);
  }
}

beforeAll(async () => {
  world = await startWorld({
    kubeletMode: "process",
    scenario: storyScenario(stories),
    // One operator at a time here; a killed leader's lease would otherwise hold the next one for 15 s.
    operatorEnv: { LEADER_ELECTION: "false", REPLY_WAIT_SECONDS: "600" },
  });
}, 120_000);

afterAll(async () => {
  await world?.stop();
});

describe("the operator SIGKILLed 20 times while runs are under way", () => {
  it("finishes every run without duplicating a Job, a PR or a question", async () => {
    const runOf = (repo: string) => world.runs().find((r) => r.spec.ticket.repo === repo);
    const done = (repo: string) => {
      const r = runOf(repo);
      return !!r && isTerminal(r.status?.phase);
    };
    const replied = new Set<string>();
    let kills = 0;
    let batches = 0;
    const deadline = Date.now() + 300_000;
    while (Date.now() < deadline) {
      const underWay = repos.some((repo) => !done(repo));
      if (!underWay && kills >= KILLS) break;
      if (!underWay) {
        batches += 1;
        expect(batches).toBeLessThanOrEqual(MAX_BATCHES);
        await startBatch(batches);
        continue;
      }
      for (const repo of repos.filter((r) => stories[r] === "vague" && !replied.has(r))) {
        if (runOf(repo)?.status?.phase !== "AwaitingReply") continue;
        const reply = world.github.addComment(repo, 1, { body: "It's add(): fix that.", user: "alice" });
        const payload = issueCommentCreated(world.scope(repo), world.github.issue(repo, 1), reply);
        expect((await world.deliver("issue_comment", payload)).status).toBe(202);
        replied.add(repo);
      }
      if (kills < KILLS) {
        await new Promise((r) => setTimeout(r, 100 + random() * 900));
        if (repos.some((repo) => !done(repo))) {
          await world.crashOperator();
          kills += 1;
        }
      } else await new Promise((r) => setTimeout(r, 200));
    }
    expect(kills).toBe(KILLS);

    const jobs = (world.kube.list("jobs", NAMESPACE) as Array<{ metadata: { name: string } }>).map(
      (j) => j.metadata.name,
    );
    const pods = world.kubelet.pods().map((p) => p.job);
    expect(new Set(pods).size, "one pod per Job").toBe(pods.length);
    expect(world.runs()).toHaveLength(repos.length);
    for (const repo of repos) {
      const run = runOf(repo)!;
      expect(run.status?.phase, `${repo}: ${run.status?.message}`).toBe("Ready");
      const stageJobs = run.status?.stages.map((s) => s.jobName) ?? [];
      // One Job per stage attempt, and no Job that status does not account for.
      expect(new Set(stageJobs).size).toBe(stageJobs.length);
      expect(jobs.filter((j) => j.startsWith(`${run.metadata.name}-`)).sort()).toEqual([...stageJobs].sort());
      expect(await world.github.pulls(repo), repo).toHaveLength(1);
      if (stories[repo] === "vague") {
        const questions = world.github.comments(repo, 1).filter((c) => c.body.includes("**Question:**"));
        expect(questions, repo).toHaveLength(1);
        expect(run.status?.questions).toBe(1);
      }
    }
  }, 360_000);
});
