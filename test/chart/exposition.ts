/**
 * Realistic `/metrics` expositions of the operator and the gateway, written with prom-client and
 * registering exactly the metric names the dashboards and alerts use. Each `advance()` plays a
 * little more of a factory's day (tickets in, stages run, runs finish), so counters and histograms
 * keep moving between Prometheus scrapes and every rate() has something to show.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

const STAGES = ["triage", "write", "review", "remediate"] as const;
const MODELS = ["claude-sonnet-4-5", "claude-haiku-4-5"] as const;
const PHASES = ["Pending", "Triaging", "AwaitingReply", "Writing", "Reviewing", "Remediating"] as const;

export interface Exposition {
  registry: Registry;
  /** Plays one more step of activity. */
  advance(): void;
}

/** The operator's registry: run, stage, cost metrics plus controller-runtime's reconcile and workqueue. */
export function operatorExposition(): Exposition {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const runs = new Counter({
    name: "agentfactory_runs_total",
    help: "Finished AgentRuns by outcome and risk tier.",
    labelNames: ["outcome", "risk_tier"],
    registers,
  });
  const stageDuration = new Histogram({
    name: "agentfactory_stage_duration_seconds",
    help: "Duration of one stage attempt.",
    labelNames: ["stage", "outcome"],
    buckets: [10, 30, 60, 120, 300, 600, 1200, 1800, 3600],
    registers,
  });
  const cost = new Counter({
    name: "agentfactory_cost_usd_total",
    help: "Model cost in USD.",
    labelNames: ["stage", "model"],
    registers,
  });
  const tokens = new Counter({
    name: "agentfactory_tokens_total",
    help: "Model tokens by kind.",
    labelNames: ["stage", "model", "kind"],
    registers,
  });
  const active = new Gauge({
    name: "agentfactory_runs_active",
    help: "AgentRuns not yet finished, by phase.",
    labelNames: ["phase"],
    registers,
  });
  const rounds = new Histogram({
    name: "agentfactory_remediation_rounds",
    help: "Remediation rounds a finished run needed.",
    buckets: [0, 1, 2, 3, 4, 5],
    registers,
  });
  const ticketToJob = new Histogram({
    name: "agentfactory_ticket_to_job_seconds",
    help: "Ticket received to first Job created.",
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const tickets = new Counter({
    name: "agentfactory_tickets_total",
    help: "Tickets consumed from NATS.",
    labelNames: ["source", "kind"],
    registers,
  });
  const failures = new Counter({
    name: "agentfactory_stage_failures_total",
    help: "Failed stage attempts by reason.",
    labelNames: ["stage", "reason"],
    registers,
  });
  const timeToPr = new Histogram({
    name: "agentfactory_time_to_pr_seconds",
    help: "Ticket received to draft PR opened.",
    buckets: [60, 120, 300, 600, 900, 1800, 3600, 7200],
    registers,
  });
  const timeToReady = new Histogram({
    name: "agentfactory_time_to_ready_seconds",
    help: "Ticket received to PR marked ready.",
    buckets: [300, 600, 900, 1800, 3600, 7200, 14400],
    registers,
  });
  const reconciles = new Counter({
    name: "controller_runtime_reconcile_total",
    help: "Total number of reconciliations per controller.",
    labelNames: ["controller", "result"],
    registers,
  });
  const reconcileErrors = new Counter({
    name: "controller_runtime_reconcile_errors_total",
    help: "Total number of reconciliation errors per controller.",
    labelNames: ["controller"],
    registers,
  });
  const reconcileTime = new Histogram({
    name: "controller_runtime_reconcile_time_seconds",
    help: "Length of time per reconciliation per controller.",
    labelNames: ["controller"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const depth = new Gauge({
    name: "workqueue_depth",
    help: "Current depth of workqueue.",
    labelNames: ["name"],
    registers,
  });
  const adds = new Counter({
    name: "workqueue_adds_total",
    help: "Total number of adds handled by workqueue.",
    labelNames: ["name"],
    registers,
  });
  const queueDuration = new Histogram({
    name: "workqueue_queue_duration_seconds",
    help: "How long in seconds an item stays in workqueue before being requested.",
    labelNames: ["name"],
    buckets: [0.001, 0.01, 0.1, 1, 10],
    registers,
  });
  const workDuration = new Histogram({
    name: "workqueue_work_duration_seconds",
    help: "How long in seconds processing an item from workqueue takes.",
    labelNames: ["name"],
    buckets: [0.001, 0.01, 0.1, 1, 10],
    registers,
  });
  const retries = new Counter({
    name: "workqueue_retries_total",
    help: "Total number of retries handled by workqueue.",
    labelNames: ["name"],
    registers,
  });

  let step = 0;
  const advance = () => {
    step += 1;
    const c = "agentrun";
    tickets.inc({ source: "github", kind: "issue" });
    if (step % 2 === 0) tickets.inc({ source: "clickup", kind: "task" });
    ticketToJob.observe(0.4 + (step % 5) * 0.3);
    for (const [i, phase] of PHASES.entries()) active.set({ phase }, (step + i) % 4);
    STAGES.forEach((stage, i) => {
      const model = MODELS[i % 2]!;
      stageDuration.observe({ stage, outcome: "Succeeded" }, 40 + i * 90 + (step % 7) * 10);
      cost.inc({ stage, model }, 0.05 + i * 0.11);
      tokens.inc({ stage, model, kind: "input" }, 1200 + i * 300);
      tokens.inc({ stage, model, kind: "output" }, 400 + i * 80);
      tokens.inc({ stage, model, kind: "cache_read" }, 5000 + i * 900);
      tokens.inc({ stage, model, kind: "cache_write" }, 800);
    });
    if (step % 3 === 0) {
      stageDuration.observe({ stage: "write", outcome: "Failed" }, 900);
      failures.inc({ stage: "write", reason: "tests_failed" });
    }
    failures.inc({ stage: "review", reason: step % 2 ? "findings_blocking" : "budget_exceeded" });
    runs.inc({ outcome: "Ready", risk_tier: step % 2 ? "low" : "medium" });
    if (step % 2 === 0) runs.inc({ outcome: "Escalated", risk_tier: "high" });
    if (step % 4 === 0) runs.inc({ outcome: "Failed", risk_tier: "low" });
    rounds.observe(step % 3);
    timeToPr.observe(400 + (step % 6) * 150);
    timeToReady.observe(1200 + (step % 6) * 300);
    reconciles.inc({ controller: c, result: "success" }, 5);
    reconciles.inc({ controller: c, result: "requeue_after" }, 2);
    reconciles.inc({ controller: c, result: "error" });
    reconcileErrors.inc({ controller: c });
    reconcileTime.observe({ controller: c }, 0.02 + (step % 4) * 0.03);
    depth.set({ name: c }, step % 3);
    adds.inc({ name: c }, 8);
    retries.inc({ name: c });
    queueDuration.observe({ name: c }, 0.005 * (1 + (step % 3)));
    workDuration.observe({ name: c }, 0.03 * (1 + (step % 3)));
  };
  advance();
  return { registry, advance };
}

/** The gateway's registry: webhooks by source/event/result, webhook and NATS publish latency. */
export function gatewayExposition(): Exposition {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const webhooks = new Counter({
    name: "agentfactory_webhooks_total",
    help: "Webhooks received by source, event and result.",
    labelNames: ["source", "event", "result"],
    registers,
  });
  const webhookDuration = new Histogram({
    name: "agentfactory_webhook_duration_seconds",
    help: "Time to answer a webhook (after JetStream acknowledged).",
    labelNames: ["source"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  const publish = new Histogram({
    name: "agentfactory_nats_publish_duration_seconds",
    help: "JetStream publish latency.",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers,
  });
  let step = 0;
  const advance = () => {
    step += 1;
    webhooks.inc({ source: "github", event: "issues", result: "accepted" }, 3);
    webhooks.inc({ source: "github", event: "issue_comment", result: "ignored" });
    webhooks.inc({ source: "clickup", event: "taskTagUpdated", result: "accepted" });
    if (step % 2 === 0) webhooks.inc({ source: "github", event: "issues", result: "unauthorized" });
    if (step % 3 === 0) webhooks.inc({ source: "github", event: "issue_comment", result: "refused" });
    webhookDuration.observe({ source: "github" }, 0.012 + (step % 4) * 0.01);
    webhookDuration.observe({ source: "clickup" }, 0.02);
    publish.observe(0.002 + (step % 3) * 0.002);
  };
  advance();
  return { registry, advance };
}
