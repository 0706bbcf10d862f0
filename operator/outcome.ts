import type { AgentRun, AgentRunStatus } from "../core/agentrun.ts";
import type { ObservedJob } from "../core/plan.ts";
import type { StageResult } from "../core/result.ts";
import { addTokens, zeroTokens } from "../core/usage.ts";

/**
 * The record of one finished run, published to the OUTCOMES stream and exported as JSONL. It keeps
 * the seed's `data/agent-outcomes.jsonl` fields (outcome, pr_url, pr_number, branch, risk_tier,
 * checks, files_changed, review_findings, run_id, timestamp, model, review_model, provider) and adds
 * what the seed never filled: cost, tokens, turns, durations, rounds, questions and every stage.
 */
export interface OutcomeRecord {
  outcome: "clean" | "blocked" | "failed" | "cancelled";
  phase: string;
  reason: string;
  pr_url: string;
  pr_number: number;
  branch: string;
  risk_tier: string;
  checks: Record<string, string>;
  files_changed: string[];
  review_findings: string[];
  findings: { total: number; blocking: number };
  run_id: string;
  ticket_id: string;
  task_id: string;
  issue_url: string;
  source: string;
  repo: string;
  timestamp: string;
  started_at: string;
  completed_at: string;
  model: string;
  review_model: string;
  provider: string;
  cost_usd: number;
  tokens: { input: number; output: number; cacheRead: number; cacheWrite: number };
  turns_total: number;
  duration_s: number;
  remediation_rounds: number;
  questions: number;
  stages: {
    name: string;
    attempt: number;
    outcome: string;
    model: string;
    cost_usd: number;
    tokens: { input: number; output: number; cacheRead: number; cacheWrite: number };
    turns: number;
    duration_s: number;
  }[];
}

const OUTCOME_OF: Record<string, OutcomeRecord["outcome"]> = {
  Ready: "clean",
  Escalated: "blocked",
  Failed: "failed",
  Cancelled: "cancelled",
};

/** `%Y-%m-%dT%H:%M:%SZ`, the seed's timestamp format. */
const seconds = (iso: string) => `${iso.slice(0, 19)}Z`;

/** Builds the outcome record of a terminal run. Pure. */
export function outcomeRecord(
  run: AgentRun,
  status: AgentRunStatus,
  jobs: readonly ObservedJob[],
  filesChanged: string[],
  now: Date,
): OutcomeRecord {
  const lastResult = (stage: string): StageResult | undefined =>
    [...jobs]
      .filter((j) => j.stage === stage && j.result)
      .sort((a, b) => a.attempt - b.attempt)
      .at(-1)?.result;
  const review = lastResult("review")?.review;
  const modelOf = (stage: string) =>
    status.stages.filter((s) => s.name === stage && s.model).at(-1)?.model ?? run.spec.model.name;
  const completed = status.completionTime ?? now.toISOString();
  const started = status.startTime ?? run.metadata.creationTimestamp ?? completed;
  const succeeded = status.conditions.find((c) => c.type === "Succeeded");
  return {
    outcome: OUTCOME_OF[status.phase] ?? "failed",
    phase: status.phase,
    reason: succeeded?.reason ?? "",
    pr_url: status.pullRequest?.url ?? "",
    pr_number: status.pullRequest?.number ?? 0,
    branch: status.pullRequest?.branch ?? "",
    risk_tier: status.riskTier ?? "unknown",
    checks: review?.checks ?? {},
    files_changed: filesChanged,
    review_findings: [],
    findings: review?.findings ?? { total: 0, blocking: 0 },
    run_id: run.metadata.name,
    ticket_id: run.spec.ticket.id,
    task_id: run.spec.ticket.workItem,
    issue_url: run.spec.ticket.url,
    source: run.spec.ticket.source,
    repo: run.spec.ticket.repo,
    timestamp: seconds(completed),
    started_at: started,
    completed_at: completed,
    model: modelOf("write"),
    review_model: modelOf("review"),
    provider: run.spec.model.provider,
    cost_usd: status.costUsd,
    tokens: status.stages.reduce((sum, s) => addTokens(sum, s.tokens), zeroTokens()),
    turns_total: status.stages.reduce((sum, s) => sum + s.turns, 0),
    duration_s: Math.max(0, Math.round((Date.parse(completed) - Date.parse(started)) / 1000)),
    remediation_rounds: status.round,
    questions: status.questions,
    stages: status.stages.map((s) => ({
      name: s.name,
      attempt: s.attempt,
      outcome: s.outcome,
      model: s.model ?? "",
      cost_usd: s.costUsd,
      tokens: s.tokens,
      turns: s.turns,
      duration_s: s.durationSeconds,
    })),
  };
}
