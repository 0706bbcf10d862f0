/**
 * Realistic `/metrics` expositions of the operator and the gateway, made with their own metric
 * modules (operator/metrics.ts, gateway/metrics.ts), so names and labels are those the processes
 * expose. Each `advance()` plays a little more of a factory's day (tickets in, stages run, runs
 * finish), so counters and histograms keep moving between Prometheus scrapes and every rate() has
 * something to show. test/e2e/observability.test.ts does the same with the real processes.
 */
import { collectDefaultMetrics, type Registry } from "prom-client";
import { gatewayMetrics } from "../../gateway/metrics.ts";
import { createMetrics, runOutcome, stageFinished } from "../../operator/metrics.ts";

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
  const m = createMetrics({ defaultMetrics: true, models: MODELS });
  let step = 0;
  const advance = () => {
    step += 1;
    const c = m.controller;
    m.ticketsTotal.inc({ source: "github", kind: "new", result: "created" });
    if (step % 2 === 0) m.ticketsTotal.inc({ source: "clickup", kind: "new", result: "created" });
    m.ticketToJob.observe(0.4 + (step % 5) * 0.3);
    for (const [i, phase] of PHASES.entries()) m.runsActive.set({ phase }, (step + i) % 4);
    STAGES.forEach((stage, i) => {
      const tokens = { input: 1200 + i * 300, output: 400 + i * 80, cacheRead: 5000 + i * 900, cacheWrite: 800 };
      const attempt = { name: stage, outcome: "Succeeded", message: "", turns: 3 + i, tokens } as const;
      stageFinished(
        m,
        { ...attempt, durationSeconds: 40 + i * 90 + (step % 7) * 10, costUsd: 0.05 + i * 0.11 },
        MODELS[i % 2]!,
        stage === "review" && step % 2 ? 1 : 0,
      );
    });
    if (step % 3 === 0) {
      const failed = { name: "write", outcome: "Failed", message: "tests fail", durationSeconds: 900 } as const;
      stageFinished(
        m,
        { ...failed, costUsd: 0.3, turns: 12, tokens: { input: 1, output: 1, cacheRead: 0, cacheWrite: 0 } },
        MODELS[0],
      );
    }
    m.runsTotal.inc({ outcome: runOutcome("Ready"), risk_tier: step % 2 ? "low" : "medium" });
    if (step % 2 === 0) m.runsTotal.inc({ outcome: runOutcome("Escalated"), risk_tier: "high" });
    if (step % 4 === 0) m.runsTotal.inc({ outcome: runOutcome("Failed"), risk_tier: "low" });
    m.remediationRounds.observe(step % 3);
    m.timeToPr.observe(400 + (step % 6) * 150);
    m.timeToReady.observe(1200 + (step % 6) * 300);
    m.reconcileTotal.inc({ controller: c, result: "success" }, 5);
    m.reconcileTotal.inc({ controller: c, result: "requeue_after" }, 2);
    m.reconcileTotal.inc({ controller: c, result: "error" });
    m.reconcileErrors.inc({ controller: c });
    m.reconcileTime.observe({ controller: c }, 0.02 + (step % 4) * 0.03);
    m.queueDepth.set({ name: c }, step % 3);
    m.queueAdds.inc({ name: c }, 8);
    m.queueRetries.inc({ name: c });
    m.queueLatency.observe({ name: c }, 0.005 * (1 + (step % 3)));
    m.workDuration.observe({ name: c }, 0.03 * (1 + (step % 3)));
  };
  advance();
  return { registry: m.registry, advance };
}

/** The gateway's registry: webhooks by source/event/result, webhook and NATS publish latency. */
export function gatewayExposition(): Exposition {
  const m = gatewayMetrics();
  collectDefaultMetrics({ register: m.registry });
  let step = 0;
  const advance = () => {
    step += 1;
    m.webhooks.inc({ source: "github", event: "issues", result: "accepted" }, 3);
    m.webhooks.inc({ source: "github", event: "issue_comment", result: "ignored" });
    m.webhooks.inc({ source: "clickup", event: "taskTagUpdated", result: "accepted" });
    if (step % 2 === 0) m.webhooks.inc({ source: "github", event: "issues", result: "unauthorized" });
    if (step % 3 === 0) m.webhooks.inc({ source: "github", event: "issue_comment", result: "refused" });
    m.webhookDuration.observe({ source: "github", result: "accepted" }, 0.012 + (step % 4) * 0.01);
    m.webhookDuration.observe({ source: "clickup", result: "accepted" }, 0.02);
    m.publishDuration.observe({ source: "github", outcome: "ok" }, 0.002 + (step % 3) * 0.002);
  };
  advance();
  return { registry: m.registry, advance };
}
