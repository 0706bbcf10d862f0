import type { AgentRunStatus, AgentRunTicket } from "./agentrun.ts";
import {
  extractFindings,
  extractVerdict,
  isAppLogin,
  type SourcedFinding,
  stageMarker,
  type Verdict,
} from "./findings.ts";
import { branchName } from "./names.ts";
import type { RiskTier, StageName, StageResult } from "./result.ts";

/**
 * A stage pod is not trusted: whatever it writes to its termination message, the operator decides on
 * what the forge shows. Before a write, remediate or review result moves a run, its claims are checked
 * here against the forge: the pull request exists, its head is the run's repository and the branch the
 * operator derives itself (`branchName`), the App opened it; the verdict and findings are read from the
 * review the App posted for exactly this stage attempt, on the head the pull request has now. Pure: the
 * operator fetches the pull request and its reviews and passes them in.
 */

/** Stages whose results move a run and are therefore checked on the forge. */
export const VERIFIED_STAGES: ReadonlySet<StageName> = new Set(["write", "remediate", "review"]);

/** The reason (Kubernetes Event, the Succeeded condition) of a run failed by an unverified result. */
export const UNVERIFIED_REASON = "ResultUnverified";

/** A pull request as the forge reports it (`GET /repos/{owner}/{repo}/pulls/{n}`). */
export interface ForgePull {
  number: number;
  url: string;
  state: string;
  /** `head.repo.full_name`; absent when the head repository is gone. */
  headRepo?: string;
  headRef: string;
  headSha: string;
  /** `user.login`. */
  author?: string;
}

/** A pull request review as the forge lists it. */
export interface ForgeReview {
  body: string;
  author?: string;
  commitId?: string;
}

export interface PullRequestRef {
  number: number;
  url: string;
  branch: string;
  headSha: string;
}

/** What the App's own review says. */
export interface VerifiedReview {
  riskTier: RiskTier;
  checks: Record<string, "success" | "failure" | "skipped">;
  blocking: number;
  total: number;
}

export type Verification =
  | { ok: true; pullRequest?: PullRequestRef; review?: VerifiedReview }
  | { ok: false; reason: string };

const fail = (reason: string): Verification => ({ ok: false, reason });

/** The pull request is the run's: head repository, the derived agent branch, opened by the App, open. */
export function checkPull(
  ticket: AgentRunTicket,
  pull: ForgePull | undefined,
  appLogin: string | undefined,
  number: number,
): { ok: true; pullRequest: PullRequestRef } | { ok: false; reason: string } {
  if (!pull) return { ok: false, reason: `pull request #${number} does not exist on ${ticket.repo}` };
  const branch = branchName(ticket);
  if (pull.headRepo?.toLowerCase() !== ticket.repo.toLowerCase())
    return { ok: false, reason: `pull request #${number} comes from ${pull.headRepo ?? "a deleted repository"}` };
  if (pull.headRef !== branch)
    return { ok: false, reason: `pull request #${number} is on ${pull.headRef}, not the run's branch ${branch}` };
  if (!isAppLogin(pull.author, appLogin))
    return { ok: false, reason: `pull request #${number} was opened by ${pull.author ?? "nobody"}, not the App` };
  if (pull.state !== "open") return { ok: false, reason: `pull request #${number} is ${pull.state}` };
  return { ok: true, pullRequest: { number, url: pull.url, branch, headSha: pull.headSha } };
}

/** A write result: its pull request, checked. The head SHA is the forge's, not the pod's. */
export function verifyWrite(
  ticket: AgentRunTicket,
  result: StageResult,
  pull: ForgePull | undefined,
  appLogin: string | undefined,
): Verification {
  if (!result.write) return fail("the write stage reported no pull request");
  const branch = branchName(ticket);
  if (result.write.branch !== branch)
    return fail(`the write stage reported branch ${result.write.branch}, the run's branch is ${branch}`);
  const checked = checkPull(ticket, pull, appLogin, result.write.prNumber);
  return checked.ok ? { ok: true, pullRequest: checked.pullRequest } : fail(checked.reason);
}

/** A remediate result: the run's pull request is still the run's; its head is the forge's. */
export function verifyRemediate(
  ticket: AgentRunTicket,
  status: AgentRunStatus | undefined,
  pull: ForgePull | undefined,
  appLogin: string | undefined,
): Verification {
  const pr = status?.pullRequest;
  if (!pr) return fail("the run has no pull request to remediate");
  const checked = checkPull(ticket, pull, appLogin, pr.number);
  return checked.ok ? { ok: true, pullRequest: checked.pullRequest } : fail(checked.reason);
}

/**
 * A review result: the verdict and findings of the review the App posted for this stage attempt
 * (its stage marker, embedded verdict and findings), on the pull request's current head. The pod's
 * own figures must agree with it; any disagreement is a forged or broken result.
 */
export function verifyReview(
  run: { name: string; ticket: AgentRunTicket; status?: AgentRunStatus },
  attempt: number,
  result: StageResult,
  pull: ForgePull | undefined,
  reviews: readonly ForgeReview[],
  appLogin: string | undefined,
): Verification {
  const pr = run.status?.pullRequest;
  if (!pr) return fail("the run has no pull request to review");
  const checked = checkPull(run.ticket, pull, appLogin, pr.number);
  if (!checked.ok) return fail(checked.reason);
  const marker = stageMarker(run.name, "review", attempt, "review");
  const posted = [...reviews].reverse().find((r) => isAppLogin(r.author, appLogin) && r.body.includes(marker));
  if (!posted) return fail(`the App posted no review for review attempt ${attempt} on pull request #${pr.number}`);
  const findings = extractFindings(posted.body);
  const verdict = extractVerdict(posted.body);
  if (!findings || !verdict) return fail(`the App's review on pull request #${pr.number} carries no verdict`);
  if (posted.commitId !== checked.pullRequest.headSha)
    return fail(
      `the review judged ${posted.commitId ?? "no commit"}, pull request #${pr.number} is at ${checked.pullRequest.headSha}`,
    );
  const review = summarize(verdict, findings);
  const claim = result.review;
  if (!claim) return fail("the review stage reported no verdict");
  if (claim.findings.blocking !== review.blocking || claim.findings.total !== review.total)
    return fail(
      `the review stage reported ${claim.findings.blocking} blocking of ${claim.findings.total} findings, its review on the forge ${review.blocking} of ${review.total}`,
    );
  if (claim.riskTier !== review.riskTier)
    return fail(`the review stage reported risk ${claim.riskTier}, its review on the forge ${review.riskTier}`);
  return { ok: true, pullRequest: checked.pullRequest, review };
}

function summarize(verdict: Verdict, findings: SourcedFinding[]): VerifiedReview {
  return {
    riskTier: verdict.riskTier,
    checks: verdict.checks,
    blocking: findings.filter((f) => f.blocking).length,
    total: findings.length,
  };
}

/**
 * Without the App there is no forge to check against, nor any forge action a result could cause (no
 * token is minted, nothing is marked ready): the pod's figures are taken as reported, except the branch,
 * which is always the one the operator derives (a result naming another fails).
 */
export function reportedVerification(
  ticket: AgentRunTicket,
  result: StageResult,
  status: AgentRunStatus | undefined,
): Verification {
  const branch = branchName(ticket);
  switch (result.stage) {
    case "write": {
      const w = result.write;
      if (!w) return fail("the write stage reported no pull request");
      if (w.branch !== branch)
        return fail(`the write stage reported branch ${w.branch}, the run's branch is ${branch}`);
      return { ok: true, pullRequest: { number: w.prNumber, url: w.prUrl, branch, headSha: w.headSha } };
    }
    case "remediate": {
      const pr = status?.pullRequest;
      if (!pr) return fail("the run has no pull request to remediate");
      return { ok: true, pullRequest: { ...pr, branch, headSha: result.remediate?.headSha ?? pr.headSha } };
    }
    case "review": {
      const r = result.review;
      if (!r) return fail("the review stage reported no verdict");
      return {
        ok: true,
        review: { riskTier: r.riskTier, checks: r.checks, blocking: r.findings.blocking, total: r.findings.total },
      };
    }
    default:
      return { ok: true };
  }
}
