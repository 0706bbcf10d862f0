import { APIConnectionError, APIError } from "@anthropic-ai/sdk";
import { describe, expect, it } from "vitest";
import { isBudgetExhausted, isRetryable, ModelUnavailableError, withRetry } from "./retry.ts";
import { billedUsage, toTokens } from "./usage.ts";

const apiError = (status: number, headers: Record<string, string> = {}) =>
  APIError.generate(status, { type: "error", error: { type: "x", message: "m" } }, "m", new Headers(headers));

describe("withRetry", () => {
  it("classifies errors", () => {
    expect([408, 409, 429, 500, 502, 529].every((s) => isRetryable(apiError(s)))).toBe(true);
    expect([400, 401, 403, 404, 413].some((s) => isRetryable(apiError(s)))).toBe(false);
    expect(isRetryable(new APIConnectionError({ message: "reset" }))).toBe(true);
    expect(isRetryable(new Error("bug"))).toBe(false);
  });
  it("tells the egress gateway's budget refusal from other errors, and does not retry it", () => {
    const refusal = APIError.generate(
      402,
      { type: "error", error: { type: "budget_exhausted", message: "budget" } },
      "budget",
      new Headers({ "x-should-retry": "false" }),
    );
    expect(isBudgetExhausted(refusal)).toBe(true);
    expect(isRetryable(refusal)).toBe(false);
    expect(isBudgetExhausted(apiError(402))).toBe(false);
    expect(isBudgetExhausted(apiError(429))).toBe(false);
    expect(isBudgetExhausted(new Error("budget_exhausted"))).toBe(false);
  });
  it("honours retry-after and backs off exponentially otherwise", async () => {
    const sleeps: number[] = [];
    let calls = 0;
    const value = await withRetry(
      async () => {
        calls++;
        if (calls === 1) throw apiError(429, { "retry-after": "2" });
        if (calls === 2) throw apiError(529);
        return "ok";
      },
      { maxRetries: 3, baseMs: 100, sleep: async (ms) => void sleeps.push(ms) },
    );
    expect(value).toBe("ok");
    expect(sleeps[0]).toBe(2000);
    expect(sleeps[1]).toBeLessThanOrEqual(200);
  });
  it("caps the server's hint", async () => {
    const sleeps: number[] = [];
    await expect(
      withRetry(() => Promise.reject(apiError(503, { "retry-after": "3600" })), {
        maxRetries: 1,
        baseMs: 1,
        maxMs: 5000,
        sleep: async (ms) => void sleeps.push(ms),
      }),
    ).rejects.toBeInstanceOf(ModelUnavailableError);
    expect(sleeps).toEqual([5000]);
  });
  it("passes non-retryable errors through at once", async () => {
    let calls = 0;
    await expect(
      withRetry(
        () => {
          calls++;
          return Promise.reject(apiError(400));
        },
        { maxRetries: 5, baseMs: 1 },
      ),
    ).rejects.toBeInstanceOf(APIError);
    expect(calls).toBe(1);
  });
});

describe("usage", () => {
  it("splits cache writes by TTL", () => {
    const u = billedUsage(
      {
        input_tokens: 5,
        output_tokens: 6,
        cache_read_input_tokens: 7,
        cache_creation_input_tokens: 30,
        cache_creation: { ephemeral_5m_input_tokens: 10, ephemeral_1h_input_tokens: 20 },
      },
      "5m",
    );
    expect(u).toEqual({ input: 5, output: 6, cacheRead: 7, cacheWrite5m: 10, cacheWrite1h: 20 });
    expect(toTokens(u)).toEqual({ input: 5, output: 6, cacheRead: 7, cacheWrite: 30 });
  });
  it("attributes an unsplit total to the requested TTL (gateways)", () => {
    expect(
      billedUsage({ input_tokens: 1, output_tokens: 1, cache_creation_input_tokens: 9, cache_creation: null }, "1h")
        .cacheWrite1h,
    ).toBe(9);
  });
});
