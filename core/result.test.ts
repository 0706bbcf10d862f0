import { describe, expect, it } from "vitest";
import { decodeResult, encodeResult, StageResult, type StageResultInput, TERMINATION_MESSAGE_LIMIT } from "./result.ts";

const triage: StageResultInput = {
  stage: "triage",
  outcome: "succeeded",
  summary: "clear enough",
  triage: { verdict: "unclear", question: "Which endpoint?", defaultAssumption: "the public one" },
};

describe("StageResult", () => {
  it("fills defaults for usage, cost, turns and text", () => {
    expect(StageResult.parse({ stage: "write", outcome: "failed" })).toEqual({
      stage: "write",
      outcome: "failed",
      summary: "",
      model: "",
      usage: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
      costUsd: 0,
      turns: 0,
      durationMs: 0,
    });
  });

  it.each([
    { stage: "deploy", outcome: "succeeded" },
    { stage: "write", outcome: "ok" },
    { stage: "write", outcome: "succeeded", costUsd: -1 },
    { stage: "write", outcome: "succeeded", turns: 1.5 },
    {
      stage: "review",
      outcome: "succeeded",
      review: { riskTier: "extreme", checks: {}, findings: { total: 0, blocking: 0 } },
    },
    { stage: "write", outcome: "succeeded", write: { prNumber: 0, prUrl: "", branch: "b", headSha: "s" } },
  ])("rejects %j", (value) => {
    expect(StageResult.safeParse(value).success).toBe(false);
  });
});

describe("encodeResult / decodeResult", () => {
  it("round-trips a result", () => {
    const decoded = decodeResult(encodeResult(triage));
    expect(decoded).toEqual({ ok: true, result: StageResult.parse(triage) });
  });

  it("shortens free text so that the message fits 4 KiB", () => {
    const long = "é".repeat(5000);
    const json = encodeResult({
      ...triage,
      summary: long,
      triage: { verdict: "unclear", question: long, defaultAssumption: long },
    });
    expect(Buffer.byteLength(json)).toBeLessThanOrEqual(TERMINATION_MESSAGE_LIMIT);
    const decoded = decodeResult(json);
    if (!decoded.ok) throw new Error(decoded.error);
    expect(decoded.result.summary.endsWith("…")).toBe(true);
    expect(decoded.result.triage?.question?.endsWith("…")).toBe(true);
    expect(decoded.result.triage?.verdict).toBe("unclear");
  });

  it("keeps text that already fits untouched", () => {
    const summary = "x".repeat(3000);
    const decoded = decodeResult(encodeResult({ stage: "write", outcome: "succeeded", summary }));
    expect(decoded.ok && decoded.result.summary).toBe(summary);
  });

  it("throws when the result cannot fit even with empty text", () => {
    const checks = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`check-${i}`, "success" as const]));
    expect(() =>
      encodeResult({
        stage: "review",
        outcome: "succeeded",
        review: { riskTier: "low", checks, findings: { total: 0, blocking: 0 } },
      }),
    ).toThrow(/4 KiB/);
  });

  it("throws on an invalid result rather than writing it", () => {
    expect(() => encodeResult({ stage: "write", outcome: "maybe" } as unknown as StageResultInput)).toThrow();
  });

  it.each([
    [undefined, /empty/],
    ["", /empty/],
    ["  \n", /empty/],
    ['{"stage":"write","outc', /not JSON/],
    ['{"stage":"deploy","outcome":"succeeded"}', /invalid stage result/],
    ["[]", /invalid stage result/],
  ])("decodeResult(%j) reports an error instead of throwing", (message, error) => {
    const decoded = decodeResult(message);
    expect(decoded.ok).toBe(false);
    expect(!decoded.ok && decoded.error).toMatch(error);
  });

  it("clips an echoed non-JSON message in the error", () => {
    const decoded = decodeResult(`x${"y".repeat(5000)}`);
    expect(!decoded.ok && decoded.error.length).toBeLessThan(300);
  });
});
