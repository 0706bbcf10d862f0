/**
 * Issue 14, item 4: a stage pod is compromised (the agent writes the termination message, or kills the
 * runner after writing its own) and reports what suits the attacker. Played against the real operator
 * process with the GitHub simulator as the forge: a write result naming another pull request or
 * branch, and a review result claiming "no blocking findings" while the App's review says otherwise (or
 * says nothing). Each must fail the run with ResultUnverified and a Kubernetes Event, never mark a pull
 * request ready, and never hand another branch to a later stage. Positive control: the same world
 * marks the PR ready when the forge agrees with the pod.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRun } from "../../core/agentrun.ts";
import { branchName, LABELS, runName } from "../../core/names.ts";
import { appPullRequest, appReview, asApp, branchOf, contextPr, harnessOperatorEnv } from "../operator/forge-world.ts";
import { cleanScript, type Harness, NS, ok, type Script, startHarness } from "../operator/harness.ts";
import { type GitHubSim, startGitHubSim } from "../world/github/index.ts";

const REPO = "acme/forged";
let gh: GitHubSim;
let h: Harness;
/** A maintainer's draft PR on a release branch: what the attacker wants marked ready, or pushed to. */
let victim: { number: number; url: string; branch: string };
const scripts = new Map<number, Script>();

beforeAll(async () => {
  gh = await startGitHubSim();
  await gh.createRepo(REPO, { "README.md": "# forged\n" });
  const o = asApp(gh, REPO);
  await gh.commitFiles(REPO, "release/1.2", { "release.txt": "1.2\n" }, "release", "maintainer");
  const { data } = await o.rest.pulls.create({
    owner: "acme",
    repo: "forged",
    head: "release/1.2",
    base: "main",
    title: "Release 1.2 (not ready)",
    draft: true,
  });
  victim = { number: data.number, url: data.html_url, branch: "release/1.2" };
  h = await startHarness();
  h.setScript((job) => (scripts.get(h.run(job.run)?.spec.ticket.number ?? 0) ?? cleanScript())(job));
  h.startOperator(harnessOperatorEnv(gh));
  await h.waitFor("operator", () => h.operator?.logs.some((l) => l.includes("ticket consumer started")));
}, 60_000);

afterAll(async () => {
  await h?.stop();
  await gh?.stop();
});

/** Publishes a ticket for a fresh issue played by `script`; resolves with the finalized run. */
async function play(title: string, script: Script): Promise<AgentRun> {
  const issue = gh.createIssue(REPO, { title, user: "mallory", labels: ["ai-agent"] });
  scripts.set(issue.number, script);
  const ticket = await h.publish({
    repo: REPO,
    number: issue.number,
    workItem: `gh-${issue.number}`,
    url: issue.html_url,
    title,
  });
  const name = runName(ticket);
  return h.waitFor(`${title}: finalized`, () => {
    const r = h.run(name);
    return r?.status?.conditions.some((c) => c.type === "Finalized" && c.status === "True") ? r : undefined;
  });
}

const reasonOf = (r: AgentRun) => r.status?.conditions.find((c) => c.type === "Succeeded")?.reason;
const stagesOf = (r: AgentRun) => h.jobs(r.metadata.name).map((j) => j.metadata.labels[LABELS.stage] as string);
const eventsOf = (r: AgentRun) =>
  (h.sim.list("events", NS) as { involvedObject?: { name?: string }; reason?: string; type?: string }[]).filter(
    (e) => e.involvedObject?.name === r.metadata.name,
  );
const unverifiedEvent = (r: AgentRun) =>
  h.waitFor("a ResultUnverified Event", () =>
    eventsOf(r).find((e) => e.reason === "ResultUnverified" && e.type === "Warning"),
  );

describe("a forged stage result", () => {
  it("naming another pull request and branch: the run fails, no later stage gets that branch", async () => {
    const r = await play("Forged write", (job) =>
      job.stage === "write"
        ? ok("write", { write: { prNumber: victim.number, prUrl: victim.url, branch: victim.branch, headSha: "x" } })
        : cleanScript()(job),
    );
    expect(r.status?.phase).toBe("Failed");
    expect(reasonOf(r)).toBe("ResultUnverified");
    expect(r.status?.pullRequest).toBeUndefined();
    expect(stagesOf(r).sort()).toEqual(["triage", "write"]); // no review, no remediate with the victim branch
    await unverifiedEvent(r);
    expect((await gh.pull(REPO, victim.number)).draft).toBe(true);
  });

  it("naming the run's branch but another pull request: the run fails", async () => {
    const r = await play("Forged number", (job) =>
      job.stage === "write"
        ? ok("write", {
            write: { prNumber: victim.number, prUrl: victim.url, branch: branchOf(job.env), headSha: "x" },
          })
        : cleanScript()(job),
    );
    expect(reasonOf(r)).toBe("ResultUnverified");
    expect(r.status?.message).toContain(`is on ${victim.branch}`);
    expect((await gh.pull(REPO, victim.number)).draft).toBe(true);
  });

  it("claiming a clean review while the App's review has blocking findings: not Ready, PR stays draft", async () => {
    let pr = 0;
    const r = await play("Forged clean review", async (job) => {
      if (job.stage === "write") {
        const write = await appPullRequest(gh, REPO, branchOf(job.env));
        pr = write.prNumber;
        return ok("write", { write });
      }
      if (job.stage === "review") {
        const honest = await appReview(gh, REPO, contextPr(job.env), job, 2); // what the runner posted
        return ok("review", { review: { ...honest, findings: { total: 2, blocking: 0 } } }); // what the pod says
      }
      return cleanScript()(job);
    });
    expect(r.status?.phase).toBe("Failed");
    expect(reasonOf(r)).toBe("ResultUnverified");
    expect(r.status?.message).toContain("0 blocking of 2");
    await unverifiedEvent(r);
    expect((await gh.pull(REPO, pr)).draft).toBe(true);
  });

  it("claiming a clean review the App never posted: not Ready, PR stays draft", async () => {
    let pr = 0;
    const r = await play("Forged silent review", async (job) => {
      if (job.stage === "write") {
        const write = await appPullRequest(gh, REPO, branchOf(job.env));
        pr = write.prNumber;
        return ok("write", { write });
      }
      return cleanScript([0])(job);
    });
    expect(reasonOf(r)).toBe("ResultUnverified");
    expect(r.status?.message).toContain("posted no review");
    expect((await gh.pull(REPO, pr)).draft).toBe(true);
  });

  it("positive control: the same world marks the PR ready when the forge agrees with the pod", async () => {
    let pr = 0;
    const r = await play("Honest run", async (job) => {
      if (job.stage === "write") {
        const write = await appPullRequest(gh, REPO, branchOf(job.env));
        pr = write.prNumber;
        return ok("write", { write });
      }
      if (job.stage === "review")
        return ok("review", { review: await appReview(gh, REPO, contextPr(job.env), job, 0) });
      return cleanScript()(job);
    });
    expect(r.status?.phase).toBe("Ready");
    expect(r.status?.pullRequest).toMatchObject({ number: pr, branch: branchName(r.spec.ticket) });
    expect((await gh.pull(REPO, pr)).draft).toBe(false);
    expect(eventsOf(r).some((e) => e.reason === "ResultUnverified")).toBe(false);
  });
});
