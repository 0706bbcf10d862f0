import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRun } from "../../core/agentrun.ts";
import { branchName, LABELS, runName } from "../../core/names.ts";
import { OutcomeRecord } from "../../core/outcome.ts";
import { MARKERS } from "../../operator/finalize-text.ts";
import { exportOutcomes } from "../../operator/outcomes-cli.ts";
import { type GitHubSim, startGitHubSim } from "../world/github/index.ts";
import { cleanScript, type Harness, ok, type Script, startHarness } from "./harness.ts";

/**
 * The operator process with a $1 default budget (DEFAULT_BUDGET_USD) and the GitHub App simulator:
 * a run whose stages spent it escalates with BudgetExhausted instead of starting the next stage.
 */
let h: Harness;
let gh: GitHubSim;
let dir: string;
const REPO = "acme/web";
const run = promisify(execFile);
const log = { debug() {}, info() {}, warn() {}, error() {} };

async function draftPr(branch: string): Promise<number> {
  const token = gh.mintToken(REPO);
  const work = join(dir, branch.replace(/\W/g, "-"));
  await run("git", ["clone", "-q", gh.cloneUrl(REPO, token), work]);
  const git = (...args: string[]) => run("git", args, { cwd: work });
  await git("checkout", "-q", "-b", branch);
  await writeFile(join(work, "health.ts"), "export const ok = true;\n");
  await git("add", ".");
  await git("-c", "user.name=bot", "-c", "user.email=bot@example.com", "commit", "-q", "-m", "feat: health");
  await git("push", "-q", "origin", branch);
  const o = new Octokit({ baseUrl: gh.apiUrl, auth: token, log });
  const { data } = await o.rest.pulls.create({
    owner: "acme",
    repo: "web",
    head: branch,
    base: "main",
    title: "Health",
    body: "## Agent-Written PR",
    draft: true,
  });
  return data.number;
}

/** Per-issue scripts: the tests share one operator. */
const scripts = new Map<number, Script>();

beforeAll(async () => {
  gh = await startGitHubSim();
  dir = await mkdtemp(join(tmpdir(), "operator-budget-"));
  await gh.createRepo(REPO, { "README.md": "# web\n" });
  h = await startHarness();
  h.setScript((job) => (scripts.get(h.run(job.run)?.spec.ticket.number ?? 0) ?? cleanScript())(job));
  h.startOperator({
    DEFAULT_BUDGET_USD: "1",
    MIN_STAGE_BUDGET_USD: "0.05",
    GITHUB_APP_ID: String(gh.appId),
    GITHUB_APP_PRIVATE_KEY: gh.privateKeyPem,
    GITHUB_API_URL: gh.apiUrl,
    GITHUB_SERVER_URL: gh.serverUrl,
  });
  await h.waitFor("operator", () => h.operator?.logs.some((l) => l.includes("ticket consumer started")));
});
afterAll(async () => {
  await h?.stop();
  await gh?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const finalized = (name: string) => () => {
  const r = h.run(name);
  return r?.status?.conditions.some((c) => c.type === "Finalized" && c.status === "True") ? r : undefined;
};
const reason = (r: AgentRun) => r.status?.conditions.find((c) => c.type === "Succeeded")?.reason;
const stagesOf = (r: AgentRun) => r.status!.stages.map((s) => `${s.name}-${s.attempt}:${s.outcome}`);
const jobStages = (name: string) => h.jobs(name).map((j) => j.metadata.labels[LABELS.stage] as string);

describe("budget", () => {
  it("a write that spends the budget escalates before review, with one escalation comment on the PR", async () => {
    const issue = gh.createIssue(REPO, { title: "Health endpoint", user: "alice", labels: ["ai-agent"] });
    // The run's branch (the published ticket's title is the harness default): the only one the operator accepts.
    const branch = branchName({ number: issue.number, workItem: `gh-${issue.number}`, title: "Add a health endpoint" });
    const pr = await draftPr(branch);
    scripts.set(issue.number, (job) =>
      job.stage === "write"
        ? ok("write", {
            costUsd: 0.97,
            write: {
              prNumber: pr,
              prUrl: `${gh.serverUrl}/${REPO}/pull/${pr}`,
              branch,
              headSha: "a",
            },
          })
        : cleanScript()(job),
    );
    const name = runName(
      await h.publish({ repo: REPO, number: issue.number, workItem: `gh-${issue.number}`, url: issue.html_url }),
    );
    const r = await h.waitFor("escalated run", finalized(name), 60_000);
    expect(r.spec.budgetUsd).toBe(1);
    expect(r.status!.phase).toBe("Escalated");
    expect(reason(r)).toBe("BudgetExhausted");
    expect(r.status!.costUsd).toBeCloseTo(0.98);
    expect(stagesOf(r)).toEqual(["triage-1:Succeeded", "write-1:Succeeded"]);
    expect(jobStages(name).sort()).toEqual(["triage", "write"]); // review was never started

    const escalations = gh.comments(REPO, pr).filter((c) => c.body?.includes(MARKERS.escalation(name)));
    expect(escalations).toHaveLength(1);
    expect(escalations[0]!.body).toContain("Budget exhausted");
    expect(escalations[0]!.body).toContain("of $1");
    expect((await gh.pull(REPO, pr)).draft).toBe(true);

    const lines: string[] = [];
    await exportOutcomes({
      natsUrl: h.nats.url,
      auth: h.nats.clientAuth("patterns"),
      outcome: "escalated",
      write: (l) => void lines.push(l),
    });
    const record = lines.map((l) => OutcomeRecord.parse(JSON.parse(l))).find((x) => x.run_id === name);
    expect(record).toMatchObject({
      outcome: "escalated",
      phase: "Escalated",
      pr_number: pr,
      files_changed: ["health.ts"],
    });
  });

  it("a triage that spends the budget escalates before write, commenting on the issue", async () => {
    const issue = gh.createIssue(REPO, { title: "Expensive", user: "alice", labels: ["ai-agent"] });
    scripts.set(issue.number, (job) =>
      job.stage === "triage"
        ? ok("triage", { costUsd: 0.99, triage: { verdict: "clear", riskTier: "low" } })
        : cleanScript()(job),
    );
    const name = runName(
      await h.publish({ repo: REPO, number: issue.number, workItem: `gh-${issue.number}`, url: issue.html_url }),
    );
    const r = await h.waitFor("escalated run", finalized(name), 60_000);
    expect(r.status!.phase).toBe("Escalated");
    expect(reason(r)).toBe("BudgetExhausted");
    expect(r.status!.pullRequest).toBeUndefined();
    expect(stagesOf(r)).toEqual(["triage-1:Succeeded"]);
    expect(jobStages(name)).toEqual(["triage"]);
    const escalations = gh.comments(REPO, issue.number).filter((c) => c.body?.includes(MARKERS.escalation(name)));
    expect(escalations).toHaveLength(1);
    expect(escalations[0]!.body).toContain("Budget exhausted");
  });
});
