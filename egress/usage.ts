import { type BilledUsage, zeroBilled } from "../core/pricing.ts";
import type { Tokens } from "../core/usage.ts";

/** The Messages API's usage object, as far as billing goes. */
export interface WireUsage {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_creation?: { ephemeral_5m_input_tokens?: number | null; ephemeral_1h_input_tokens?: number | null } | null;
}

const n = (v: number | null | undefined) => (typeof v === "number" && Number.isFinite(v) && v > 0 ? v : 0);

/**
 * Usage in billing buckets. Cache writes are split by TTL from `cache_creation`; a provider reporting
 * only the total has it priced as 5-minute writes unless the request asked for 1 h only.
 */
export function billed(u: WireUsage | undefined, requestedTtl: "5m" | "1h" = "5m"): BilledUsage {
  if (!u) return zeroBilled();
  const total = n(u.cache_creation_input_tokens);
  const w5 = n(u.cache_creation?.ephemeral_5m_input_tokens);
  const w1 = n(u.cache_creation?.ephemeral_1h_input_tokens);
  const split = w5 + w1 > 0;
  return {
    input: n(u.input_tokens),
    output: n(u.output_tokens),
    cacheRead: n(u.cache_read_input_tokens),
    cacheWrite5m: split ? w5 : requestedTtl === "5m" ? total : 0,
    cacheWrite1h: split ? w1 : requestedTtl === "1h" ? total : 0,
  };
}

export function tokensOf(u: BilledUsage): Tokens {
  return { input: u.input, output: u.output, cacheRead: u.cacheRead, cacheWrite: u.cacheWrite5m + u.cacheWrite1h };
}

/** Later usage fields win over earlier ones (message_delta carries the final counts). */
function merge(into: WireUsage, from: WireUsage): WireUsage {
  const out: WireUsage = { ...into };
  for (const [k, v] of Object.entries(from) as [keyof WireUsage, unknown][]) {
    if (v === null || v === undefined) continue;
    if (k === "cache_creation") out.cache_creation = { ...into.cache_creation, ...(v as object) };
    else (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/**
 * Reads usage out of a Messages API server-sent event stream as it passes by, without changing it:
 * feed it every chunk; it parses only `message_start` and `message_delta` events (the ones carrying
 * usage) and the model name.
 */
export class SseUsageReader {
  private buffer = "";
  private readonly decoder = new TextDecoder();
  usage: WireUsage | undefined;
  model: string | undefined;
  /** A `message_delta` with usage was seen: the output count is final. */
  complete = false;

  push(chunk: Uint8Array): void {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    for (;;) {
      const m = /\r?\n\r?\n/.exec(this.buffer);
      if (!m) break;
      const event = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      this.event(event);
    }
    // An event is small unless it is text; never hold more than one huge event's worth.
    if (this.buffer.length > 4 << 20) this.buffer = "";
  }

  end(): void {
    this.buffer += this.decoder.decode();
    if (this.buffer.trim()) this.event(this.buffer);
    this.buffer = "";
  }

  private event(text: string): void {
    let name = "";
    let data = "";
    for (const line of text.split(/\r?\n/)) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data += (data ? "\n" : "") + line.slice(5).replace(/^ /, "");
    }
    // Skip the many content deltas without parsing them.
    if (name && name !== "message_start" && name !== "message_delta") return;
    if (!name && !/"type"\s*:\s*"message_(start|delta)"/.test(data)) return;
    let parsed: { type?: string; message?: { usage?: WireUsage; model?: string }; usage?: WireUsage };
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    if (parsed.type === "message_start" && parsed.message) {
      this.model = parsed.message.model ?? this.model;
      if (parsed.message.usage) this.usage = merge(this.usage ?? {}, parsed.message.usage);
    } else if (parsed.type === "message_delta" && parsed.usage) {
      this.usage = merge(this.usage ?? {}, parsed.usage);
      this.complete = true;
    }
  }
}

/** Usage and model of a non-streaming Messages API response body. */
export function jsonUsage(body: string): { usage?: WireUsage; model?: string } {
  try {
    const parsed = JSON.parse(body) as { usage?: WireUsage; model?: string; type?: string };
    return { ...(parsed.usage ? { usage: parsed.usage } : {}), ...(parsed.model ? { model: parsed.model } : {}) };
  } catch {
    return {};
  }
}
