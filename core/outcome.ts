import { z } from "zod";
import { type AgentRun, Phase, type StageStatus } from "./agentrun.ts";
import { addTokens, zeroTokens } from "./usage.ts";

/**
 * The outcome log: one JSON line per finished run. Field names are the seed's
 * (`data/agent-outcomes.jsonl`, snake_case) so its existing logs, dashboards and pattern extraction
 * keep working; the fields the seed's readers expected but nobody wrote (cost, duration, turns,
 * engine) are now filled, plus tokens, stages and the run's identity.
 */

/** Outcomes written now: one per terminal phase. */
export const OUTCOMES = ["clean", "escalated", "failed", "cancelled"] as const;
/** The seed's outcomes (one record per review run); still read from old logs, never written. */
export const LEGACY_OUTCOMES = ["tests-failed", "review-failed", "blocked"] as const;
export const Outcome = z.enum([...OUTCOMES, ...LEGACY_OUTCOMES]);
export type Outcome = z.infer<typeof Outcome>;

/** The outcome written for each terminal phase. */
export const OUTCOME_OF_PHASE = {
  Ready: "clean",
  Escalated: "escalated",
  Failed: "failed",
  Cancelled: "cancelled",
} as const satisfies Partial<Record<Phase, Outcome>>;

/** A check's result, in GitHub Actions' job-result words as the seed logged them. */
export const CheckStatus = z.enum(["success", "failure", "skipped", "cancelled"]);
export type CheckStatus = z.infer<typeof CheckStatus>;
export const CHECK_NAMES = ["gate", "tests", "review", "spec_audit"] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

const count = z.number().int().nonnegative();

export const OutcomeRecord = z.object({
  // The seed's required keys: a line without one of them is skipped when reading.
  outcome: Outcome,
  pr_url: z.string(),
  /** 0 when the run opened no pull request. */
  pr_number: count,
  branch: z.string(),
  /** The tier from the changed files; "unknown" when review never ran (or an old line had none). */
  risk_tier: z.enum(["low", "medium", "high", "unknown"]).catch("unknown"),
  checks: z.object({
    gate: CheckStatus.default("skipped"),
    tests: CheckStatus.default("skipped"),
    review: CheckStatus.default("skipped"),
    spec_audit: CheckStatus.default("skipped"),
  }),
  files_changed: z.array(z.string()),
  review_findings: z.array(z.string()),
  run_id: z.string(),
  /** ISO-8601 UTC without fractions (`2026-03-01T10:00:00Z`): when the run finished. */
  timestamp: z.string(),
  model: z.string().optional(),
  review_model: z.string().optional(),
  provider: z.string().optional(),
  // Optional: absent from the seed's lines.
  cost_usd: z.number().nonnegative().optional(),
  duration_ms: count.optional(),
  num_turns: count.optional(),
  turns_total: count.optional(),
  engine: z.string().optional(),
  tokens: z.object({ input: count, output: count, cache_read: count, cache_write: count }).optional(),
  remediation_rounds: count.optional(),
  task_id: z.string().optional(),
  issue_url: z.string().optional(),
  phase: Phase.optional(),
  stages: z
    .array(
      z.object({
        name: z.string(),
        attempt: count,
        outcome: z.enum(["running", "succeeded", "failed", "error"]),
        cost_usd: z.number().nonnegative(),
        turns: count,
        duration_ms: count,
      }),
    )
    .optional(),
  started_at: z.string().optional(),
  completed_at: z.string().optional(),
});
export type OutcomeRecord = z.infer<typeof OutcomeRecord>;
export type OutcomeRecordInput = z.input<typeof OutcomeRecord>;

/** What the operator learns from the forge at finalization; the rest comes from the AgentRun. */
export interface OutcomeExtras {
  /** Paths changed by the pull request (all pages). */
  filesChanged: string[];
  /** Review finding texts, one per finding. */
  findings: string[];
  /** Results of the tier's checks; a check that did not run is "skipped". */
  checks: Partial<Record<CheckName, CheckStatus>>;
  /** Defaults to `spec.model.provider`. */
  provider?: string;
}

/** The name the runner engine is logged under (the seed logged claude-code / opencode). */
export const ENGINE = "agentfactory";

/**
 * The outcome record of a finished run. Pure: the same run and extras give the same record.
 * Throws for a run that is not in a terminal phase.
 *
 * @example
 * const line = toJsonl([outcomeFromRun(run, { filesChanged, findings, checks: { gate: "success" } })]);
 */
export function outcomeFromRun(run: AgentRun, extras: OutcomeExtras): OutcomeRecord {
  const status = run.status;
  const phase = status?.phase;
  if (!status || !phase || !(phase in OUTCOME_OF_PHASE))
    throw new Error(`run ${run.metadata.name} is not finished (phase ${phase ?? "none"})`);
  const finishedAt = status.completionTime ?? status.startTime ?? run.metadata.creationTimestamp;
  if (!finishedAt) throw new Error(`run ${run.metadata.name} has no completion time`);
  const stages = status.stages;
  const lastModel = (name: StageStatus["name"]) => stages.findLast((s) => s.name === name && s.model)?.model;
  const tokens = stages.reduce((sum, s) => addTokens(sum, s.tokens), zeroTokens());
  const turns = stages.reduce((sum, s) => sum + s.turns, 0);
  const pr = status.pullRequest;
  const startedAt = status.startTime ?? run.metadata.creationTimestamp;
  const checks = Object.fromEntries(CHECK_NAMES.map((c) => [c, extras.checks[c] ?? "skipped"])) as Record<
    CheckName,
    CheckStatus
  >;
  return {
    outcome: OUTCOME_OF_PHASE[phase as keyof typeof OUTCOME_OF_PHASE],
    pr_url: pr?.url ?? "",
    pr_number: pr?.number ?? 0,
    branch: pr?.branch ?? "",
    risk_tier: status.riskTier ?? "unknown",
    checks,
    files_changed: unique(extras.filesChanged),
    review_findings: unique(extras.findings.map((f) => f.trim()).filter(Boolean)),
    run_id: run.metadata.name,
    timestamp: seedTimestamp(finishedAt),
    model: lastModel("write") ?? run.spec.model.name,
    review_model: lastModel("review") ?? run.spec.model.name,
    provider: extras.provider ?? run.spec.model.provider,
    cost_usd: status.costUsd,
    ...(startedAt ? { duration_ms: Math.max(0, Date.parse(finishedAt) - Date.parse(startedAt)) } : {}),
    num_turns: turns,
    turns_total: turns,
    engine: ENGINE,
    tokens: {
      input: tokens.input,
      output: tokens.output,
      cache_read: tokens.cacheRead,
      cache_write: tokens.cacheWrite,
    },
    remediation_rounds: status.round,
    task_id: run.spec.ticket.workItem,
    issue_url: run.spec.ticket.url,
    phase,
    stages: stages.map((s) => ({
      name: s.name,
      attempt: s.attempt,
      outcome: s.outcome.toLowerCase() as "running" | "succeeded" | "failed" | "error",
      cost_usd: s.costUsd,
      turns: s.turns,
      duration_ms: Math.round(s.durationSeconds * 1000),
    })),
    ...(startedAt ? { started_at: startedAt } : {}),
    completed_at: finishedAt,
  };
}

/** One compact JSON object per line, each line ending in a newline (appendable). */
export function toJsonl(records: readonly OutcomeRecord[]): string {
  return records.map((r) => `${JSON.stringify(r)}\n`).join("");
}

export interface ParsedJsonl {
  records: OutcomeRecord[];
  /** Lines that were not JSON or not an outcome record (blank lines are not counted). */
  skipped: number;
  /** Why each skipped line was skipped, by 1-based line number. */
  errors: { line: number; error: string }[];
}

/** Reads an outcome log, old (seed) lines included; bad lines are skipped and counted, never fatal. */
export function parseJsonl(text: string): ParsedJsonl {
  const out: ParsedJsonl = { records: [], skipped: 0, errors: [] };
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      out.errors.push({ line: i + 1, error: "not JSON" });
      return;
    }
    const parsed = OutcomeRecord.safeParse(raw);
    if (parsed.success) out.records.push(parsed.data);
    else {
      const issue = parsed.error.issues[0];
      out.errors.push({ line: i + 1, error: `${issue?.path.join(".") || "record"}: ${issue?.message ?? "invalid"}` });
    }
  });
  out.skipped = out.errors.length;
  return out;
}

/** `2026-03-01T10:00:00.123Z` → `2026-03-01T10:00:00Z`, the seed's timestamp format. */
function seedTimestamp(iso: string): string {
  return new Date(iso).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}
