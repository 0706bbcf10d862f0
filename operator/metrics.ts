import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { isTerminal, Phase, type StageStatus } from "../core/agentrun.ts";
import { RiskTier, StageName } from "../core/result.ts";
import { TicketSource } from "../core/ticket.ts";
import type { Tokens } from "../core/usage.ts";
import type { WorkQueueMetrics } from "./kube/workqueue.ts";

/** `agentfactory_runs_total{outcome}`: lower-case, the words of the outcome records. */
export const RUN_OUTCOMES = ["clean", "escalated", "failed", "cancelled"] as const;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];
const RUN_OUTCOME_OF: Record<string, RunOutcome> = {
  Ready: "clean",
  Escalated: "escalated",
  Failed: "failed",
  Cancelled: "cancelled",
};
/** The outcome label of a terminal phase. */
export const runOutcome = (phase: Phase): RunOutcome => RUN_OUTCOME_OF[phase] ?? "failed";

/** `agentfactory_runs_active{phase}`: the AgentRun phases of runs not yet finished, as in the CRD. */
export const ACTIVE_PHASES: readonly Phase[] = Phase.options.filter((p) => !isTerminal(p));

/** `agentfactory_stage_duration_seconds{outcome}`: a finished stage attempt, lower-case. */
export const STAGE_OUTCOMES = ["succeeded", "failed", "error"] as const;
export type StageOutcome = (typeof STAGE_OUTCOMES)[number];

/**
 * `agentfactory_stage_failures_total{reason}`: why a stage attempt did not move the run forward.
 * agent_failed: the agent reported failure; infrastructure: the pod ended without a result;
 * timeout: the stage deadline passed; blocking_findings: review found blocking findings.
 */
export const FAILURE_REASONS = ["agent_failed", "infrastructure", "timeout", "blocking_findings"] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** `agentfactory_tokens_total{kind}`, snake_case as Prometheus label values go. */
export const TOKEN_KINDS = {
  input: "input",
  output: "output",
  cacheRead: "cache_read",
  cacheWrite: "cache_write",
} as const;

/**
 * The operator's metrics, on their own registry. Label sets are bounded: stage, model, outcome,
 * risk tier, phase, token kind, ticket source/kind/result, failure reason; never run names.
 * Series with known label values start at zero (`models`: the models whose cost and tokens are
 * pre-created per stage), so rate() and increase() see the first event.
 */
export function createMetrics(options: { defaultMetrics?: boolean; models?: readonly string[] } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const controller = "agentrun";
  const m = {
    registry,
    runsTotal: new Counter({
      name: "agentfactory_runs_total",
      help: "AgentRuns that reached a terminal phase",
      labelNames: ["outcome", "risk_tier"] as const,
      registers,
    }),
    timeToPr: new Histogram({
      name: "agentfactory_time_to_pr_seconds",
      help: "Time from ticket receipt (or run start) to the run's pull request being opened",
      buckets: [30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400],
      registers,
    }),
    timeToReady: new Histogram({
      name: "agentfactory_time_to_ready_seconds",
      help: "Time from ticket receipt (or run start) to the run becoming Ready",
      buckets: [60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800],
      registers,
    }),
    stageFailures: new Counter({
      name: "agentfactory_stage_failures_total",
      help: "Stage attempts that did not move the run forward, by stage and reason",
      labelNames: ["stage", "reason"] as const,
      registers,
    }),
    stageDuration: new Histogram({
      name: "agentfactory_stage_duration_seconds",
      help: "Duration of stage attempts",
      labelNames: ["stage", "outcome"] as const,
      buckets: [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600],
      registers,
    }),
    costUsd: new Counter({
      name: "agentfactory_cost_usd_total",
      help: "Model cost in USD",
      labelNames: ["stage", "model"] as const,
      registers,
    }),
    tokens: new Counter({
      name: "agentfactory_tokens_total",
      help: "Model tokens",
      labelNames: ["stage", "model", "kind"] as const,
      registers,
    }),
    turns: new Counter({
      name: "agentfactory_turns_total",
      help: "Agent turns",
      labelNames: ["stage"] as const,
      registers,
    }),
    runsActive: new Gauge({
      name: "agentfactory_runs_active",
      help: "AgentRuns by phase, non-terminal",
      labelNames: ["phase"] as const,
      registers,
    }),
    remediationRounds: new Histogram({
      name: "agentfactory_remediation_rounds",
      help: "Remediation rounds a finished run took",
      buckets: [0, 1, 2, 3, 4, 5],
      registers,
    }),
    ticketToJob: new Histogram({
      name: "agentfactory_ticket_to_job_seconds",
      help: "Time from ticket receipt to the first stage Job's creation",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    ticketsTotal: new Counter({
      name: "agentfactory_tickets_total",
      help: "Tickets consumed by source, kind and result",
      labelNames: ["source", "kind", "result"] as const,
      registers,
    }),
    informerRestarts: new Counter({
      name: "agentfactory_informer_restarts_total",
      help: "Informer restarts by informer and reason",
      labelNames: ["informer"] as const,
      registers,
    }),
    reconcileTotal: new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller",
      labelNames: ["controller", "result"] as const,
      registers,
    }),
    reconcileErrors: new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller",
      labelNames: ["controller"] as const,
      registers,
    }),
    reconcileTime: new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller",
      labelNames: ["controller"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    activeWorkers: new Gauge({
      name: "controller_runtime_active_workers",
      help: "Number of currently used workers per controller",
      labelNames: ["controller"] as const,
      registers,
    }),
    queueDepth: new Gauge({
      name: "workqueue_depth",
      help: "Current depth of workqueue",
      labelNames: ["name"] as const,
      registers,
    }),
    queueAdds: new Counter({
      name: "workqueue_adds_total",
      help: "Total number of adds handled by workqueue",
      labelNames: ["name"] as const,
      registers,
    }),
    queueRetries: new Counter({
      name: "workqueue_retries_total",
      help: "Total number of retries handled by workqueue",
      labelNames: ["name"] as const,
      registers,
    }),
    queueLatency: new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "How long in seconds an item stays in workqueue before being requested",
      labelNames: ["name"] as const,
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
      registers,
    }),
    workDuration: new Histogram({
      name: "workqueue_work_duration_seconds",
      help: "How long in seconds processing an item from workqueue takes",
      labelNames: ["name"] as const,
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
      registers,
    }),
    controller,
  };
  const c = { controller };
  const q = { name: controller };
  m.reconcileErrors.inc(c, 0);
  m.reconcileTime.zero(c);
  m.activeWorkers.set(c, 0);
  m.queueDepth.set(q, 0);
  for (const phase of ACTIVE_PHASES) m.runsActive.set({ phase }, 0);
  m.queueAdds.inc(q, 0);
  m.queueRetries.inc(q, 0);
  m.queueLatency.zero(q);
  m.workDuration.zero(q);
  for (const outcome of RUN_OUTCOMES)
    for (const risk_tier of [...RiskTier.options, "unknown"]) m.runsTotal.inc({ outcome, risk_tier }, 0);
  for (const stage of StageName.options) {
    m.turns.inc({ stage }, 0);
    for (const outcome of STAGE_OUTCOMES) m.stageDuration.zero({ stage, outcome });
    for (const reason of FAILURE_REASONS) m.stageFailures.inc({ stage, reason }, 0);
    for (const model of options.models ?? []) zeroUsage(m, stage, model);
  }
  for (const source of TicketSource.options) m.ticketsTotal.inc({ source, kind: "new", result: "created" }, 0);
  return m;
}

function zeroUsage(
  m: { costUsd: Counter<"stage" | "model">; tokens: Counter<"stage" | "model" | "kind"> },
  stage: string,
  model: string,
) {
  m.costUsd.inc({ stage, model }, 0);
  for (const kind of Object.values(TOKEN_KINDS)) m.tokens.inc({ stage, model, kind }, 0);
}
export type Metrics = ReturnType<typeof createMetrics>;

/** Pre-creates a stage's cost and token series for a model at zero (when its Job is created). */
export function stageStarted(m: Metrics, stage: string, model: string): void {
  zeroUsage(m, stage, model);
}

/** Records a stage attempt that just finished: duration, cost, tokens, turns, failure reason. */
export function stageFinished(
  m: Metrics,
  s: Pick<StageStatus, "name" | "outcome" | "durationSeconds" | "costUsd" | "turns" | "message"> & { tokens: Tokens },
  model: string,
  blockingFindings = 0,
): void {
  const outcome = s.outcome.toLowerCase() as StageOutcome;
  m.stageDuration.observe({ stage: s.name, outcome }, s.durationSeconds);
  m.costUsd.inc({ stage: s.name, model }, s.costUsd);
  m.turns.inc({ stage: s.name }, s.turns);
  for (const [key, kind] of Object.entries(TOKEN_KINDS))
    m.tokens.inc({ stage: s.name, model, kind }, s.tokens[key as keyof Tokens]);
  const reason = failureReason(s.outcome, s.message, blockingFindings);
  if (reason) m.stageFailures.inc({ stage: s.name, reason });
}

/** Why a finished stage attempt failed, or undefined when it did not (a cancellation is no failure). */
export function failureReason(
  outcome: StageStatus["outcome"],
  message: string,
  blockingFindings = 0,
): FailureReason | undefined {
  if (outcome === "Failed") return "agent_failed";
  if (outcome === "Error") {
    if (message === "cancelled") return undefined;
    return message.startsWith("timed out") ? "timeout" : "infrastructure";
  }
  return outcome === "Succeeded" && blockingFindings > 0 ? "blocking_findings" : undefined;
}

export function workQueueMetrics(m: Metrics): WorkQueueMetrics {
  return {
    adds: (name) => m.queueAdds.inc({ name }),
    depth: (name, depth) => m.queueDepth.set({ name }, depth),
    retries: (name) => m.queueRetries.inc({ name }),
    queueLatency: (name, s) => m.queueLatency.observe({ name }, s),
    workDuration: (name, s) => m.workDuration.observe({ name }, s),
  };
}
