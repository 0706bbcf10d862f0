import { Counter, Histogram, Registry } from "prom-client";

/** Traffic kinds: a bounded set, safe as a label. */
export type Kind = "model" | "git" | "api" | "connect" | "other";

export interface EgressMetrics {
  registry: Registry;
  requests: Counter<"kind" | "decision">;
  refused: Counter<"kind" | "reason">;
  bytes: Counter<"kind" | "direction">;
  upstreamDuration: Histogram<"kind">;
  modelCost: Counter<"model" | "stage">;
  modelTokens: Counter<"model" | "stage" | "type">;
  ledgerConflicts: Counter;
  holdShortfall: Counter;
}

/**
 * The egress gateway's metrics on their own registry. Runs are not a label (unbounded): per-run
 * spend and refusals live in the ledger and are read through the admin API.
 */
export function egressMetrics(registry = new Registry()): EgressMetrics {
  const registers = [registry];
  return {
    registry,
    requests: new Counter({
      name: "agentfactory_egress_requests_total",
      help: "Requests from runner pods by kind (model, git, api, connect, other) and decision (allowed, refused).",
      labelNames: ["kind", "decision"],
      registers,
    }),
    refused: new Counter({
      name: "agentfactory_egress_refused_total",
      help: "Refused runner requests by kind and reason.",
      labelNames: ["kind", "reason"],
      registers,
    }),
    bytes: new Counter({
      name: "agentfactory_egress_bytes_total",
      help: "Bytes proxied by kind and direction (up: from the runner, down: to the runner).",
      labelNames: ["kind", "direction"],
      registers,
    }),
    upstreamDuration: new Histogram({
      name: "agentfactory_egress_upstream_duration_seconds",
      help: "Time from forwarding a request to the end of the upstream response, by kind.",
      labelNames: ["kind"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    }),
    modelCost: new Counter({
      name: "agentfactory_egress_model_cost_usd_total",
      help: "Model spend charged to runs by the egress gateway (core/pricing.ts), by model and stage.",
      labelNames: ["model", "stage"],
      registers,
    }),
    modelTokens: new Counter({
      name: "agentfactory_egress_model_tokens_total",
      help: "Model tokens charged by model, stage and type (input, output, cache_read, cache_write).",
      labelNames: ["model", "stage", "type"],
      registers,
    }),
    ledgerConflicts: new Counter({
      name: "agentfactory_egress_ledger_conflicts_total",
      help: "Budget ledger writes retried because another writer changed the entry first (compare-and-swap).",
      registers,
    }),
    holdShortfall: new Counter({
      name: "agentfactory_egress_hold_shortfall_total",
      help: "Model requests whose actual cost exceeded the worst-case estimate held for them.",
      registers,
    }),
  };
}
