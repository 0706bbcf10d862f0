/**
 * What the operator tests need to point the real operator at the GitHub simulator, and to play, from a
 * scripted stage pod, what an honest runner does on the forge (as the App): open the draft pull request
 * on the run's branch, post the review with its stage marker, findings and verdict.
 */
import { Octokit } from "@octokit/rest";
import { embedFindings, embedVerdict, type SourcedFinding, stageMarker } from "../../core/findings.ts";
import { branchName } from "../../core/names.ts";
import type { RiskTier } from "../../core/result.ts";
import type { GitHubSim } from "../world/github/index.ts";

/** The operator's environment for the GitHub simulator's App. */
export function harnessOperatorEnv(gh: GitHubSim): Record<string, string> {
  return {
    GITHUB_APP_ID: String(gh.appId),
    GITHUB_APP_PRIVATE_KEY: gh.privateKeyPem,
    GITHUB_API_URL: gh.apiUrl,
    GITHUB_SERVER_URL: gh.serverUrl,
  };
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const split = (repo: string) => {
  const [owner = "", name = ""] = repo.split("/");
  return { owner, repo: name };
};

/** The App, acting on one repository (what a stage pod's token can do). */
export const asApp = (gh: GitHubSim, repo: string) =>
  new Octokit({ baseUrl: gh.apiUrl, auth: gh.mintToken(repo), log: quiet });

/** The branch the operator derives for a stage pod's ticket (AGENTFACTORY_TICKET). */
export const branchOf = (env: Record<string, string>): string =>
  branchName(JSON.parse(env.AGENTFACTORY_TICKET ?? "{}"));

/**
 * What the write stage does: a commit on `branch` (a real push) and a draft PR opened by the App, or
 * the open one. Returns the write result's `write` part.
 */
export async function appPullRequest(gh: GitHubSim, repo: string, branch: string) {
  const o = asApp(gh, repo);
  const open = (await o.rest.pulls.list({ ...split(repo), state: "open", head: `${split(repo).owner}:${branch}` }))
    .data[0];
  if (open) return { prNumber: open.number, prUrl: open.html_url, branch, headSha: open.head.sha };
  const headSha = await gh.commitFiles(repo, branch, {
    [`${branch.replace(/\W/g, "-")}.ts`]: "export const ok = true;\n",
  });
  const { data } = await o.rest.pulls.create({
    ...split(repo),
    head: branch,
    base: "main",
    title: "Agent PR",
    draft: true,
  });
  return { prNumber: data.number, prUrl: data.html_url, branch, headSha };
}

/** What the review stage does: one review by the App on the PR's head, with marker, findings and verdict. */
export async function appReview(
  gh: GitHubSim,
  repo: string,
  pr: number,
  job: { run: string; attempt: number },
  blocking: number,
  riskTier: RiskTier = "low",
) {
  const o = asApp(gh, repo);
  const head = (await o.rest.pulls.get({ ...split(repo), pull_number: pr })).data.head.sha;
  const findings: SourcedFinding[] = Array.from({ length: blocking }, (_, i) => ({
    source: "claude-review",
    severity: "high",
    title: `Blocking ${i + 1}`,
    detail: "Fix it.",
    blocking: true,
  }));
  const checks = { "risk-policy-gate": "success", tests: "success" } as const;
  await o.rest.pulls.createReview({
    ...split(repo),
    pull_number: pr,
    commit_id: head,
    event: "COMMENT",
    body: [
      stageMarker(job.run, "review", job.attempt, "review"),
      `Risk tier: ${riskTier}`,
      embedFindings(findings),
      embedVerdict({ riskTier, checks }),
    ].join("\n"),
  });
  return { riskTier, checks, findings: { total: blocking, blocking } };
}

/** The number of the run's pull request, from a later stage's AGENTFACTORY_CONTEXT. */
export const contextPr = (env: Record<string, string>): number =>
  (JSON.parse(env.AGENTFACTORY_CONTEXT ?? "{}") as { pullRequest?: { number: number } }).pullRequest?.number ?? 0;
