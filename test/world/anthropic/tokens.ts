import { createHash } from "node:crypto";
import type { MessagesRequest } from "./script.ts";

/** Usage as the Messages API reports it. */
export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
  service_tier: "standard";
}

/** The simulator's tokenizer: about four characters per token. */
export const estimateTokens = (value: unknown): number =>
  Math.ceil((typeof value === "string" ? value : JSON.stringify(value)).length / 4);

type Ttl = "5m" | "1h";
interface Segment {
  key: string;
  tokens: number;
  ttl?: Ttl;
}

const TTL_MS: Record<Ttl, number> = { "5m": 5 * 60_000, "1h": 60 * 60_000 };
/** The API looks for earlier cache hits up to this many blocks before each breakpoint. */
const LOOKBACK = 20;

function withoutCacheControl(block: unknown): unknown {
  if (!block || typeof block !== "object") return block;
  const { cache_control: _, ...rest } = block as Record<string, unknown>;
  return rest;
}

function ttlOf(block: unknown): Ttl | undefined {
  const cc = (block as { cache_control?: { type?: string; ttl?: string } } | null)?.cache_control;
  if (cc?.type !== "ephemeral") return undefined;
  return cc.ttl === "1h" ? "1h" : "5m";
}

/** The prompt in cache order (tools, system, messages), one segment per block. */
export function segments(req: MessagesRequest): Segment[] {
  const out: Segment[] = [];
  const push = (prefix: string, block: unknown) => {
    const plain = withoutCacheControl(block);
    const ttl = ttlOf(block);
    out.push({ key: `${prefix}${JSON.stringify(plain)}`, tokens: estimateTokens(plain), ...(ttl ? { ttl } : {}) });
  };
  for (const tool of req.tools ?? []) push("tool:", tool);
  if (typeof req.system === "string") push("system:", { type: "text", text: req.system });
  else for (const block of req.system ?? []) push("system:", block);
  req.messages.forEach((m, i) => {
    if (typeof m.content === "string") push(`${m.role}#${i}:`, { type: "text", text: m.content });
    else for (const block of m.content) push(`${m.role}#${i}:`, block);
  });
  // Request-level `cache_control` (automatic caching) puts a breakpoint on the last block.
  const auto = ttlOf(req);
  const last = out[out.length - 1];
  if (auto && last && !last.ttl) last.ttl = auto;
  return out;
}

export const countBreakpoints = (req: MessagesRequest): number => segments(req).filter((s) => s.ttl).length;

/**
 * Prompt cache with the API's billing rules: a prefix up to a breakpoint that was written before (same
 * model, same bytes, within its TTL; hits are looked for up to 20 blocks before each breakpoint) is read;
 * the new part up to the last breakpoint is written (split by TTL); the rest is plain input. Prefixes
 * shorter than `minTokens` are never cached.
 */
export class PromptCache {
  private entries = new Map<string, { expiresAt: number; ttl: Ttl }>();

  constructor(readonly minTokens = 1024) {}

  account(req: MessagesRequest, now = Date.now()): Omit<Usage, "output_tokens"> {
    const segs = segments(req);
    const hashes: string[] = [];
    const prefixTokens: number[] = [];
    let hash = createHash("sha256").update(`model:${req.model}`).digest("hex");
    let total = 0;
    for (const s of segs) {
      hash = createHash("sha256").update(hash).update(s.key).digest("hex");
      total += s.tokens;
      hashes.push(hash);
      prefixTokens.push(total);
    }
    const breakpoints = segs.flatMap((s, i) => (s.ttl ? [i] : []));
    const live = (i: number) => {
      const e = this.entries.get(hashes[i] ?? "");
      return !!e && e.expiresAt > now;
    };
    let readAt = -1;
    for (const b of breakpoints) {
      for (let j = b; j >= Math.max(0, b - LOOKBACK + 1); j--) {
        if (live(j)) {
          readAt = Math.max(readAt, j);
          break;
        }
      }
    }
    if (readAt >= 0) {
      const e = this.entries.get(hashes[readAt] ?? "")!;
      e.expiresAt = now + TTL_MS[e.ttl]; // a hit refreshes the entry
    }
    const read = readAt >= 0 ? (prefixTokens[readAt] ?? 0) : 0;
    const created = { "5m": 0, "1h": 0 };
    let covered = read;
    for (const b of breakpoints) {
      const upTo = prefixTokens[b] ?? 0;
      if (b <= readAt || upTo < this.minTokens) continue;
      const ttl = segs[b]?.ttl ?? "5m";
      created[ttl] += upTo - covered;
      covered = upTo;
      this.entries.set(hashes[b] ?? "", { expiresAt: now + TTL_MS[ttl], ttl });
    }
    const creation = created["5m"] + created["1h"];
    return {
      input_tokens: total - read - creation,
      cache_creation_input_tokens: creation,
      cache_read_input_tokens: read,
      cache_creation: { ephemeral_5m_input_tokens: created["5m"], ephemeral_1h_input_tokens: created["1h"] },
      service_tier: "standard",
    };
  }

  /** Total input tokens without touching the cache (count_tokens). */
  static count(req: MessagesRequest): number {
    return segments(req).reduce((n, s) => n + s.tokens, 0);
  }
}
