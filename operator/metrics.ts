import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { WorkQueueMetrics } from "./kube/workqueue.ts";

/**
 * The operator's metrics, on their own registry. Label sets are bounded: stage, model, outcome,
 * risk tier, phase, token kind; never run names.
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
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
      help: "Tickets consumed by kind and result",
      labelNames: ["kind", "result"] as const,
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
  return m;
}
export type Metrics = ReturnType<typeof createMetrics>;

export function workQueueMetrics(m: Metrics): WorkQueueMetrics {
  return {
    adds: (name) => m.queueAdds.inc({ name }),
    depth: (name, depth) => m.queueDepth.set({ name }, depth),
    retries: (name) => m.queueRetries.inc({ name }),
    queueLatency: (name, s) => m.queueLatency.observe({ name }, s),
    workDuration: (name, s) => m.workDuration.observe({ name }, s),
  };
}
