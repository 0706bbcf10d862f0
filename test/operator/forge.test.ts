import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRunStatus } from "../../core/agentrun.ts";
import { embedFindings } from "../../core/findings.ts";
import { OutcomeRecord as OutcomeRecordSchema } from "../../core/outcome.ts";
import { StageResult } from "../../core/result.ts";
import { Finalizer } from "../../operator/finalize.ts";
import { MARKERS } from "../../operator/finalize-text.ts";
import { Forge, STAGE_PERMISSIONS } from "../../operator/forge.ts";
import type { OutcomeRecord } from "../../operator/outcome.ts";
import { agentRun } from "../../operator/testing.ts";
import { type ClickUpSim, startClickUpSim } from "../world/clickup/index.ts";
import { type GitHubSim, startGitHubSim } from "../world/github/index.ts";
import { type SlackSim, startSlackSim } from "../world/slack/index.ts";

let gh: GitHubSim;
let slack: SlackSim;
let clickup: ClickUpSim;
let forge: Forge;
let dir: string;
const REPO = "acme/web";
const run = promisify(execFile);

async function draftPr(branch: string): Promise<number> {
  const token = gh.mintToken(REPO);
  const work = join(dir, branch.replace(/\W/g, "-"));
  // Asynchronous: the simulator serves git from this same process.
  const git = (...args: string[]) => run("git", args, { cwd: work });
  await run("git", ["clone", "-q", gh.cloneUrl(REPO, token), work]);
  await git("checkout", "-q", "-b", branch);
  await writeFile(join(work, "health.ts"), "export const ok = true;\n");
  await git("add", ".");
  await git("-c", "user.name=bot", "-c", "user.email=bot@example.com", "commit", "-q", "-m", "feat: health");
  await git("push", "-q", "origin", branch);
  const o = new Octokit({ baseUrl: gh.apiUrl, auth: token });
  const { data } = await o.rest.pulls.create({
    owner: "acme",
    repo: "web",
    head: branch,
    base: "main",
    title: "Health",
    body: "## Agent-Written PR\n\nCloses #7",
    draft: true,
  });
  return data.number;
}

function status(phase: AgentRunStatus["phase"], pr: number, over: Partial<AgentRunStatus> = {}): AgentRunStatus {
  const tokens = { input: 10, output: 5, cacheRead: 0, cacheWrite: 0 };
  return {
    phase,
    round: 0,
    questions: 0,
    costUsd: 0.3,
    riskTier: "low",
    conditions: [
      {
        type: "Succeeded",
        status: phase === "Ready" ? "True" : "False",
        reason: phase === "Ready" ? "Clean" : "RemediationLimit",
        message: "",
        lastTransitionTime: "2026-01-01T00:00:00Z",
      },
    ],
    pullRequest: { number: pr, url: `${gh.serverUrl}/${REPO}/pull/${pr}`, branch: "agent/7-x", headSha: "abc" },
    stages: [
      {
        name: "triage",
        attempt: 1,
        jobName: "t",
        outcome: "Succeeded",
        model: "m",
        costUsd: 0.1,
        tokens,
        turns: 2,
        durationSeconds: 3,
        message: "",
      },
      {
        name: "write",
        attempt: 1,
        jobName: "w",
        outcome: "Succeeded",
        model: "m",
        costUsd: 0.2,
        tokens,
        turns: 5,
        durationSeconds: 9,
        message: "",
      },
    ],
    startTime: "2026-01-01T00:00:00Z",
    completionTime: "2026-01-01T00:10:00Z",
    message: "1 blocking finding(s) remain after 2 round(s)",
    ...over,
  };
}

beforeAll(async () => {
  gh = await startGitHubSim();
  slack = await startSlackSim();
  clickup = await startClickUpSim({ token: "pk_test", tasks: [{ id: "86abc", name: "Health endpoint" }] });
  dir = await mkdtemp(join(tmpdir(), "forge-test-"));
  await gh.createRepo(REPO, { "README.md": "# web\n" });
  await gh.createRepo("acme/other", { "README.md": "# other\n" });
  forge = new Forge({
    appId: gh.appId,
    privateKey: gh.privateKeyPem,
    apiUrl: gh.apiUrl,
    defaultInstallationId: gh.installationId,
  });
});
afterAll(async () => {
  await gh?.stop();
  await slack?.stop();
  await clickup?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("Forge tokens", () => {
  it("mints per-stage tokens limited to one repository and the stage's permissions", async () => {
    const pr = await draftPr("agent/1-scope");
    const triage = new Octokit({ baseUrl: gh.apiUrl, auth: await forge.mintToken(REPO, STAGE_PERMISSIONS.triage) });
    const write = new Octokit({ baseUrl: gh.apiUrl, auth: await forge.mintToken(REPO, STAGE_PERMISSIONS.write) });
    const issue = gh.createIssue(REPO, { title: "t", user: "alice" });
    // triage: read + comment
    await triage.rest.issues.createComment({
      owner: "acme",
      repo: "web",
      issue_number: issue.number,
      body: "question?",
    });
    await expect(
      triage.rest.pulls.update({ owner: "acme", repo: "web", pull_number: pr, title: "x" }),
    ).rejects.toMatchObject({ status: 403 });
    await expect(
      triage.rest.issues.createComment({ owner: "acme", repo: "other", issue_number: 1, body: "no" }),
    ).rejects.toMatchObject({
      status: expect.any(Number),
    });
    // write: pull requests
    await write.rest.pulls.update({ owner: "acme", repo: "web", pull_number: pr, title: "renamed" });
    expect((await gh.pull(REPO, pr)).title).toBe("renamed");
  });
});

describe("Finalizer", () => {
  it("Ready: marks the PR ready, rewrites its stats table, records the outcome; idempotent", async () => {
    const pr = await draftPr("agent/7-ready");
    const issue = gh.createIssue(REPO, { title: "Health", user: "alice", labels: ["ai-agent", "needs-clarification"] });
    const records: OutcomeRecord[] = [];
    const f = new Finalizer({ forge, slackWebhookUrl: slack.url, publishOutcome: async (r) => void records.push(r) });
    const run = agentRun({ number: issue.number });
    const s = status("Ready", pr);
    await f.finalize(run, s, [], new Date("2026-01-01T00:10:00Z"));
    const after = await gh.pull(REPO, pr);
    expect(after.draft).toBe(false);
    expect(after.body).toContain("## Agent-Written PR");
    expect(after.body).toContain(MARKERS.statsStart);
    expect(after.body).toContain("| Write | 1 | `m` | $0.2000 | 10 / 5 / 0 / 0 | 5 | 9.0s | Succeeded |");
    expect(gh.labels(REPO, issue.number)).toEqual(["ai-agent"]);
    expect(records[0]).toMatchObject({
      outcome: "clean",
      pr_number: pr,
      risk_tier: "low",
      files_changed: ["health.ts"],
      cost_usd: 0.3,
      turns_total: 7,
      timestamp: "2026-01-01T00:10:00Z",
    });
    await f.finalize(run, s, [], new Date("2026-01-01T00:10:00Z"));
    expect((await gh.pull(REPO, pr)).body).toBe(after.body);
    expect(slack.messages).toHaveLength(0);
  });

  it("Escalated: one escalation comment, one Slack message, round labels, PR stays draft", async () => {
    const pr = await draftPr("agent/8-escalate");
    const records: OutcomeRecord[] = [];
    const f = new Finalizer({ forge, slackWebhookUrl: slack.url, publishOutcome: async (r) => void records.push(r) });
    const run = agentRun({ number: 8, workItem: "gh-8" });
    const s = status("Escalated", pr, { round: 2 });
    // Reviews as the runner posts them (bot, stage marker, embedded findings), and a human pasting one.
    const bot = new Octokit({ baseUrl: gh.apiUrl, auth: gh.mintToken(REPO) });
    const finding = (title: string, blocking: boolean) => ({
      source: "claude-review",
      severity: "high" as const,
      title,
      detail: "d",
      blocking,
    });
    const review = (attempt: number, findings: ReturnType<typeof finding>[]) =>
      `<!-- agentfactory:run=${run.metadata.name} stage=review attempt=${attempt} kind=review -->\nReview\n${embedFindings(findings)}`;
    for (const [attempt, findings] of [
      [1, [finding("Old finding", true)]],
      [2, [finding("Missing input validation", true), finding("Style nit", false)]],
    ] as const)
      await bot.rest.pulls.createReview({
        owner: "acme",
        repo: "web",
        pull_number: pr,
        event: "COMMENT",
        body: review(attempt, [...findings]),
      });
    gh.submitReview(REPO, pr, { user: "mallory", event: "COMMENT", body: review(3, [finding("Human text", true)]) });
    const reviewJob = {
      name: "r",
      stage: "review" as const,
      attempt: 2,
      state: "Succeeded" as const,
      result: StageResult.parse({
        stage: "review",
        outcome: "succeeded",
        review: {
          riskTier: "low",
          checks: { "risk-policy-gate": "success", tests: "success", "claude-review": "failure" },
          findings: { total: 2, blocking: 1 },
        },
      }),
    };
    await f.finalize(run, s, [reviewJob], new Date());
    await f.finalize(run, s, [reviewJob], new Date());
    expect(records).toHaveLength(2);
    expect(OutcomeRecordSchema.safeParse(records[0]).success).toBe(true);
    expect(records[0]).toMatchObject({
      outcome: "escalated",
      files_changed: ["health.ts"],
      review_findings: ["Missing input validation"],
      checks: { gate: "success", tests: "success", review: "failure", spec_audit: "skipped" },
      provider: "anthropic",
    });
    const marker = MARKERS.escalation(run.metadata.name);
    expect(gh.comments(REPO, pr).filter((c) => c.body?.includes(marker))).toHaveLength(1);
    expect(slack.messages).toHaveLength(1);
    expect(slack.messages[0]!.text).toContain("needs human review");
    expect(gh.labels(REPO, pr).sort()).toEqual(["remediation-round-1", "remediation-round-2"]);
    expect((await gh.pull(REPO, pr)).draft).toBe(true);
  });

  it("texts built from a pod's report are redacted before the forge, Slack and ClickUp see them", async () => {
    const pr = await draftPr("agent/86abc-leak");
    const f = new Finalizer({
      forge,
      slackWebhookUrl: slack.url,
      clickup: { apiUrl: clickup.apiUrl, token: "pk_test" },
    });
    const run = agentRun({ source: "clickup", id: "clickup:w-2", deliveryId: "w-2", number: 0, workItem: "86abc" });
    const leaks = [`xoxe-1-${"A1".repeat(73)}`, `npm_${"b2C3".repeat(9)}`, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"];
    const message = `review kept failing: ${leaks[0]} ${leaks[1]} {"aws_secret_access_key": "${leaks[2]}"}`;
    const before = slack.messages.length;
    await f.finalize(run, status("Escalated", pr, { round: 2, message }), [], new Date());
    const sent = [
      ...gh.comments(REPO, pr).map((c) => c.body ?? ""),
      ...slack.messages.slice(before).map((m) => m.text ?? ""),
      ...clickup.comments.map((c) => c.comment_text),
    ];
    expect(sent.filter((t) => t.includes("review kept failing"))).toHaveLength(3);
    for (const text of sent) for (const leak of leaks) expect(text).not.toContain(leak);
    expect(sent.join("\n")).toContain("[REDACTED]");
    clickup.comments.length = 0;
  });

  it("ClickUp ticket: the PR is still finalized on the forge, and the task gets a comment", async () => {
    const pr = await draftPr("agent/86abc-health");
    const f = new Finalizer({ forge, clickup: { apiUrl: clickup.apiUrl, token: "pk_test" } });
    const run = agentRun({ source: "clickup", id: "clickup:w-1", deliveryId: "w-1", number: 0, workItem: "86abc" });
    await f.finalize(run, status("Ready", pr), [], new Date());
    expect((await gh.pull(REPO, pr)).draft).toBe(false);
    expect(clickup.comments).toEqual([
      expect.objectContaining({
        taskId: "86abc",
        comment_text: expect.stringContaining(`PR ready for review: ${gh.serverUrl}/${REPO}/pull/${pr}`),
      }),
    ]);
  });
});
