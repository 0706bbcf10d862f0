import { z } from "zod";

/**
 * Model prices in USD per million tokens. Cache prices default to the Messages API's multipliers of
 * the input price: a 5-minute cache write costs 1.25×, a 1-hour write 2×, a cache read 0.1×.
 */
export const ModelPrice = z.object({
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
  cacheWrite5m: z.number().nonnegative().optional(),
  cacheWrite1h: z.number().nonnegative().optional(),
  cacheRead: z.number().nonnegative().optional(),
});
export type ModelPrice = z.infer<typeof ModelPrice>;
export type FullPrice = Required<ModelPrice>;

/** Overrides from configuration, keyed by normalized model name; the key `default` prices unknown models. */
export const PriceTable = z.record(z.string(), ModelPrice);
export type PriceTable = z.infer<typeof PriceTable>;

/** Token counts as billed: cache writes split by TTL because they are priced apart. */
export interface BilledUsage {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
}

/** Public list prices (per MTok). Keys are prefixes of normalized model names; the longest match wins. */
export const DEFAULT_PRICES: PriceTable = {
  "claude-opus-4-6": { input: 5, output: 25 },
  "claude-opus-4-5": { input: 5, output: 25 },
  "claude-opus-4-1": { input: 15, output: 75 },
  "claude-opus-4": { input: 15, output: 75 },
  "claude-sonnet-4": { input: 3, output: 15 },
  "claude-3-7-sonnet": { input: 3, output: 15 },
  "claude-3-5-sonnet": { input: 3, output: 15 },
  "claude-haiku-4-5": { input: 1, output: 5 },
  "claude-3-5-haiku": { input: 0.8, output: 4 },
  "claude-3-haiku": { input: 0.25, output: 1.25 },
  // Unknown models are priced like the dearest current model, so a budget cap never treats them as free.
  default: { input: 15, output: 75 },
};

/**
 * Reduces provider-specific spellings to one name: `anthropic/claude-sonnet-4-6` (OpenRouter),
 * `us.anthropic.claude-sonnet-4-6-v1:0` (Bedrock), `claude-sonnet-4-6@20260101` (Vertex) and dated
 * ids all become `claude-sonnet-4-6…`; OpenRouter's dots (`claude-sonnet-4.6`) become dashes.
 */
export function normalizeModel(model: string): string {
  let name = model.trim().toLowerCase();
  name = name.slice(name.lastIndexOf("/") + 1);
  name = name.replace(/^(?:[a-z]{2,4}\.)?anthropic\./, "");
  name = name.replace(/@.*$/, "").replace(/-v\d+(?::\d+)?$/, "");
  return name.replace(/(\d)\.(\d)/g, "$1-$2");
}

/** The price of a model: overrides first, then the defaults; longest prefix wins; `default` otherwise. */
export function priceFor(model: string, overrides: PriceTable = {}): FullPrice & { known: boolean } {
  const name = normalizeModel(model);
  const table = { ...DEFAULT_PRICES, ...overrides };
  let best: string | undefined;
  for (const key of Object.keys(table)) {
    if (key !== "default" && name.startsWith(key) && (!best || key.length > best.length)) best = key;
  }
  const price = table[best ?? "default"] ?? { input: 15, output: 75 };
  return {
    input: price.input,
    output: price.output,
    cacheWrite5m: price.cacheWrite5m ?? price.input * 1.25,
    cacheWrite1h: price.cacheWrite1h ?? price.input * 2,
    cacheRead: price.cacheRead ?? price.input * 0.1,
    known: best !== undefined,
  };
}

/** Cost of the input side only (uncached input, cache reads and writes). */
export function inputCostUsd(model: string, usage: BilledUsage, overrides?: PriceTable): number {
  const p = priceFor(model, overrides);
  return (
    (usage.input * p.input +
      usage.cacheRead * p.cacheRead +
      usage.cacheWrite5m * p.cacheWrite5m +
      usage.cacheWrite1h * p.cacheWrite1h) /
    1e6
  );
}

/**
 * Cost of one request or a whole stage.
 *
 * @example costUsd("claude-sonnet-4-6", { input: 1000, output: 500, cacheRead: 0, cacheWrite5m: 0, cacheWrite1h: 0 }) // 0.0105
 */
export function costUsd(model: string, usage: BilledUsage, overrides?: PriceTable): number {
  return inputCostUsd(model, usage, overrides) + (usage.output * priceFor(model, overrides).output) / 1e6;
}

/** Parses `AGENTFACTORY_PRICES`-style JSON; throws with the zod message when malformed. */
export function parsePriceTable(json: string | undefined): PriceTable {
  if (!json?.trim()) return {};
  return PriceTable.parse(JSON.parse(json));
}

export const zeroBilled = (): BilledUsage => ({ input: 0, output: 0, cacheRead: 0, cacheWrite5m: 0, cacheWrite1h: 0 });

export function addBilled(a: BilledUsage, b: BilledUsage): BilledUsage {
  return {
    input: a.input + b.input,
    output: a.output + b.output,
    cacheRead: a.cacheRead + b.cacheRead,
    cacheWrite5m: a.cacheWrite5m + b.cacheWrite5m,
    cacheWrite1h: a.cacheWrite1h + b.cacheWrite1h,
  };
}
