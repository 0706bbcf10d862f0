import { Counter, Histogram, Registry } from "prom-client";

/** Why a request ended as it did; a bounded set, so it is safe as a label. */
export type WebhookResult =
  | "accepted"
  | "duplicate"
  | "ignored"
  | "refused"
  | "unauthorized"
  | "bad_request"
  | "too_large"
  | "stale"
  | "unavailable"
  | "error";

export interface GatewayMetrics {
  registry: Registry;
  webhooks: Counter<"source" | "event" | "result">;
  webhookDuration: Histogram<"source" | "result">;
  publishDuration: Histogram<"source" | "outcome">;
  clickupRefused: Counter<"reason">;
}

/**
 * The gateway's metrics on their own registry (one per process; tests make one per app).
 * `event` is only filled in after the signature was verified, so callers cannot invent label values.
 *
 * @example
 * const metrics = gatewayMetrics();
 * await metrics.registry.metrics(); // Prometheus text format
 */
export function gatewayMetrics(registry = new Registry()): GatewayMetrics {
  const registers = [registry];
  return {
    registry,
    webhooks: new Counter({
      name: "agentfactory_webhooks_total",
      help: "Trigger requests by source, event and result.",
      labelNames: ["source", "event", "result"],
      registers,
    }),
    webhookDuration: new Histogram({
      name: "agentfactory_webhook_duration_seconds",
      help: "Time from request to response for trigger requests.",
      labelNames: ["source", "result"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7],
      registers,
    }),
    publishDuration: new Histogram({
      name: "agentfactory_nats_publish_duration_seconds",
      help: "NATS JetStream publish latency of tickets: from publish to ack (or failure), by outcome (ok, duplicate, error).",
      labelNames: ["source", "outcome"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2],
      registers,
    }),
    clickupRefused: new Counter({
      name: "agentfactory_clickup_refused_total",
      help: "ClickUp tasks refused by reason (unmapped_list, repository_not_allowed, no_repository); nothing is published.",
      labelNames: ["reason"],
      registers,
    }),
  };
}
