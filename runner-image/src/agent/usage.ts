import type { Usage } from "@anthropic-ai/sdk/resources/messages";
import type { BilledUsage } from "../../../core/pricing.ts";
import type { Tokens } from "../../../core/usage.ts";

/**
 * One response's usage in billing buckets. Cache writes are split by TTL from `cache_creation`;
 * gateways that report only the total have it attributed to the TTL the runner asked for.
 */
export function billedUsage(u: Partial<Usage> | undefined, requestedTtl: "5m" | "1h"): BilledUsage {
  const total = u?.cache_creation_input_tokens ?? 0;
  const w5 = u?.cache_creation?.ephemeral_5m_input_tokens ?? 0;
  const w1 = u?.cache_creation?.ephemeral_1h_input_tokens ?? 0;
  const split = w5 + w1 > 0;
  return {
    input: u?.input_tokens ?? 0,
    output: u?.output_tokens ?? 0,
    cacheRead: u?.cache_read_input_tokens ?? 0,
    cacheWrite5m: split ? w5 : requestedTtl === "5m" ? total : 0,
    cacheWrite1h: split ? w1 : requestedTtl === "1h" ? total : 0,
  };
}

/** The result's four buckets (the CRD's shape): both cache-write TTLs count as cacheWrite. */
export function toTokens(u: BilledUsage): Tokens {
  return { input: u.input, output: u.output, cacheRead: u.cacheRead, cacheWrite: u.cacheWrite5m + u.cacheWrite1h };
}
