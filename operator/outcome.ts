import type { AgentRun, AgentRunStatus } from "../core/agentrun.ts";
import { latestReviewFindings, type ReviewLike } from "../core/findings.ts";
import {
  type CheckName,
  type CheckStatus,
  type OutcomeExtras,
  OutcomeRecord,
  outcomeFromRun,
} from "../core/outcome.ts";
import type { ObservedJob } from "../core/plan.ts";

export type { OutcomeRecord } from "../core/outcome.ts";

/**
 * The operator's side of the outcome log: the record itself is core's (`outcomeFromRun`, validated
 * by `OutcomeRecord`); the operator supplies what only it can see — the jobs' results and the forge.
 */

/** The runner's check names (and the seed's) → the outcome record's check keys. */
const CHECK_OF: Record<string, CheckName> = {
  gate: "gate",
  "risk-policy-gate": "gate",
  tests: "tests",
  review: "review",
  "claude-review": "review",
  spec_audit: "spec_audit",
  "spec-audit": "spec_audit",
};

/** The checks of the last review stage that wrote a result; {} when review never finished. */
export function reviewChecks(jobs: readonly ObservedJob[]): Partial<Record<CheckName, CheckStatus>> {
  const last = jobs
    .filter((j) => j.stage === "review" && j.result?.review)
    .reduce<ObservedJob | undefined>((a, j) => (!a || j.attempt >= a.attempt ? j : a), undefined);
  const out: Partial<Record<CheckName, CheckStatus>> = {};
  for (const [name, state] of Object.entries(last?.result?.review?.checks ?? {})) {
    const key = CHECK_OF[name];
    if (key) out[key] = state;
  }
  return out;
}

/** The titles of the blocking findings of the latest AgentFactory review (reviews oldest first). */
export function blockingFindingTitles(reviews: readonly ReviewLike[]): string[] {
  return latestReviewFindings(reviews)
    .filter((f) => f.blocking)
    .map((f) => f.title);
}

/** What the finalizer read from the forge. */
export interface ForgeFacts {
  filesChanged: string[];
  findings: string[];
}

/**
 * The outcome record of a terminal run, built by core's `outcomeFromRun` and validated. `status` is
 * the run's new status (it may be newer than `run.status`); a missing completion time is `now`.
 */
export function outcomeRecord(
  run: AgentRun,
  status: AgentRunStatus,
  jobs: readonly ObservedJob[],
  forge: ForgeFacts,
  now: Date,
): OutcomeRecord {
  const extras: OutcomeExtras = {
    filesChanged: forge.filesChanged,
    findings: forge.findings,
    checks: reviewChecks(jobs),
    provider: run.spec.model.provider,
  };
  const finished = { ...run, status: { ...status, completionTime: status.completionTime ?? now.toISOString() } };
  return OutcomeRecord.parse(outcomeFromRun(finished, extras));
}
