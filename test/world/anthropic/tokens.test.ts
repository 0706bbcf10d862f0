import { describe, expect, it } from "vitest";
import type { MessagesRequest } from "./script.ts";
import { PromptCache } from "./tokens.ts";
import { validateRequest } from "./validate.ts";

const big = "x".repeat(8000); // 2000 tokens
const req = (messages: MessagesRequest["messages"], cc = true): MessagesRequest => ({
  model: "m",
  max_tokens: 10,
  system: [{ type: "text", text: big, ...(cc ? { cache_control: { type: "ephemeral" } } : {}) }],
  messages,
});

describe("PromptCache", () => {
  it("reads a prefix cached at an earlier breakpoint position (lookback) and expires it after its TTL", () => {
    const cache = new PromptCache();
    const t0 = 1_000_000;
    const first = cache.account(
      req([{ role: "user", content: [{ type: "text", text: "hi", cache_control: { type: "ephemeral" } }] }]),
      t0,
    );
    expect(first.cache_read_input_tokens).toBe(0);
    expect(first.cache_creation_input_tokens).toBeGreaterThanOrEqual(2000);
    const grown = req([
      { role: "user", content: [{ type: "text", text: "hi" }] },
      { role: "assistant", content: "ok" },
      { role: "user", content: [{ type: "text", text: "more", cache_control: { type: "ephemeral" } }] },
    ]);
    const second = cache.account(grown, t0 + 60_000);
    expect(second.cache_read_input_tokens).toBe(first.cache_creation_input_tokens);
    expect(second.input_tokens).toBe(0);
    const later = cache.account(grown, t0 + 60_000 + 6 * 60_000);
    expect(later.cache_read_input_tokens).toBe(0);
  });

  it("bills everything as input without breakpoints", () => {
    const usage = new PromptCache().account(req([{ role: "user", content: "hi" }], false));
    expect(usage.cache_creation_input_tokens + usage.cache_read_input_tokens).toBe(0);
    expect(usage.input_tokens).toBeGreaterThanOrEqual(2000);
  });
});

describe("validateRequest", () => {
  it("refuses non-alternating roles, stray tool results and too many breakpoints", () => {
    expect(() =>
      validateRequest({
        model: "m",
        max_tokens: 1,
        messages: [
          { role: "user", content: "a" },
          { role: "user", content: "b" },
        ],
      }),
    ).toThrow(/alternate/);
    expect(() =>
      validateRequest({
        model: "m",
        max_tokens: 1,
        messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_x", content: "r" }] }],
      }),
    ).toThrow(/unexpected `tool_use_id`/);
    const cc = { type: "text", text: "t", cache_control: { type: "ephemeral" } };
    expect(() =>
      validateRequest({
        model: "m",
        max_tokens: 1,
        system: [cc, cc, cc, cc, cc],
        messages: [{ role: "user", content: "a" }],
      }),
    ).toThrow(/maximum of 4 blocks/);
    expect(() =>
      validateRequest({
        model: "m",
        max_tokens: 1,
        messages: [{ role: "user", content: [{ type: "text", text: "" }] }],
      }),
    ).toThrow(/non-empty/);
  });
});
