import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runName } from "../../core/names.ts";
import { MARKERS } from "../../operator/finalize-text.ts";
import { type GitHubSim, startGitHubSim } from "../world/github/index.ts";
import { type SlackSim, startSlackSim } from "../world/slack/index.ts";
import { appPullRequest, appReview, branchOf, contextPr } from "./forge-world.ts";
import { cleanScript, type Harness, NS, ok, startHarness } from "./harness.ts";

/** The operator process wired to the GitHub and Slack simulators through its environment. */
let h: Harness;
let gh: GitHubSim;
let slack: SlackSim;
let dir: string;
const REPO = "acme/web";
const log = { debug() {}, info() {}, warn() {}, error() {} };

beforeAll(async () => {
  gh = await startGitHubSim();
  slack = await startSlackSim();
  dir = await mkdtemp(join(tmpdir(), "operator-forge-"));
  await gh.createRepo(REPO, { "README.md": "# web\n" });
  h = await startHarness();
  h.startOperator({
    GITHUB_APP_ID: String(gh.appId),
    GITHUB_APP_PRIVATE_KEY: gh.privateKeyPem,
    GITHUB_API_URL: gh.apiUrl,
    GITHUB_SERVER_URL: gh.serverUrl,
    SLACK_WEBHOOK_URL: slack.url,
  });
  await h.waitFor("operator", () => h.operator?.logs.some((l) => l.includes("ticket consumer started")));
});
afterAll(async () => {
  await h?.stop();
  await gh?.stop();
  await slack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const finalized = (name: string) => () => {
  const r = h.run(name);
  return r?.status?.conditions.some((c) => c.type === "Finalized" && c.status === "True") ? r : undefined;
};

describe("operator with the GitHub App and Slack", () => {
  it("mints a repo-scoped token per stage, escalates with one comment and one Slack message", async () => {
    const issue = gh.createIssue(REPO, { title: "Health endpoint", user: "alice", labels: ["ai-agent"] });
    let pr = 0;
    // An honest runner: the PR on the run's branch, opened by the App; one App review per review attempt.
    h.setScript(async (job) => {
      if (job.stage === "write") {
        const write = await appPullRequest(gh, REPO, branchOf(job.env));
        pr = write.prNumber;
        return ok("write", { write });
      }
      if (job.stage === "review")
        return ok("review", { review: await appReview(gh, REPO, contextPr(job.env), job, 1) });
      return cleanScript([1, 1, 1])(job);
    });
    const name = runName(
      await h.publish({ repo: REPO, number: issue.number, workItem: `gh-${issue.number}`, url: issue.html_url }),
    );
    const r = await h.waitFor("Escalated", finalized(name), 60_000);
    expect(r.status!.phase).toBe("Escalated");

    // The triage Secret holds a token that works on this repository only.
    const secret = h.sim.get("secrets", NS, `${name}-triage-1`) as { data: { GITHUB_TOKEN: string } };
    const token = Buffer.from(secret.data.GITHUB_TOKEN, "base64").toString();
    expect(token).toMatch(/^ghs_/);
    const asStage = new Octokit({ baseUrl: gh.apiUrl, auth: token, log });
    await asStage.rest.issues.createComment({
      owner: "acme",
      repo: "web",
      issue_number: issue.number,
      body: "stage comment",
    });
    await expect(
      asStage.rest.pulls.update({ owner: "acme", repo: "web", pull_number: pr, title: "x" }),
    ).rejects.toMatchObject({ status: 403 });

    const marker = MARKERS.escalation(name);
    expect(gh.comments(REPO, pr).filter((c) => c.body?.includes(marker))).toHaveLength(1);
    expect(slack.messages).toHaveLength(1);
    expect(gh.labels(REPO, pr).sort()).toEqual(["remediation-round-1", "remediation-round-2"]);
    const body = (await gh.pull(REPO, pr)).body ?? "";
    expect(body).toContain(MARKERS.statsStart);
    expect(body.match(/\| (Triage|Write|Review|Remediate) \|/g)).toHaveLength(7);
  });
});
