import { describe, expect, it } from "vitest";
import { addBilled, costUsd, inputCostUsd, normalizeModel, parsePriceTable, priceFor, zeroBilled } from "./pricing.ts";

const usage = (u: Partial<ReturnType<typeof zeroBilled>>) => ({ ...zeroBilled(), ...u });

describe("normalizeModel", () => {
  it.each([
    ["claude-sonnet-4-6", "claude-sonnet-4-6"],
    ["anthropic/claude-sonnet-4.6", "claude-sonnet-4-6"],
    ["us.anthropic.claude-sonnet-4-6-v1:0", "claude-sonnet-4-6"],
    ["anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5-20251001"],
    ["claude-opus-4-6@20260101", "claude-opus-4-6"],
    ["Claude-Haiku-4-5", "claude-haiku-4-5"],
  ])("%s -> %s", (input, expected) => expect(normalizeModel(input)).toBe(expected));
});

describe("priceFor", () => {
  it("picks the longest matching prefix", () => {
    expect(priceFor("claude-opus-4-6").input).toBe(5);
    expect(priceFor("claude-opus-4-20250514").input).toBe(15);
    expect(priceFor("claude-sonnet-4-5-20250929").output).toBe(15);
  });
  it("derives cache prices from the input price", () => {
    const p = priceFor("claude-sonnet-4-6");
    expect(p.cacheWrite5m).toBeCloseTo(3.75);
    expect(p.cacheWrite1h).toBeCloseTo(6);
    expect(p.cacheRead).toBeCloseTo(0.3);
    expect(p.known).toBe(true);
  });
  it("prices unknown models conservatively, never as free", () => {
    const p = priceFor("some-local-model");
    expect(p.known).toBe(false);
    expect(p.input).toBeGreaterThan(0);
  });
  it("applies overrides, including for unknown models", () => {
    const overrides = parsePriceTable('{"my-model":{"input":0.5,"output":1,"cacheRead":0.01}}');
    const p = priceFor("my-model-v2", overrides);
    expect(p).toMatchObject({ input: 0.5, output: 1, cacheRead: 0.01, known: true });
    expect(priceFor("claude-haiku-4-5", { "claude-haiku-4-5": { input: 2, output: 4 } }).input).toBe(2);
  });
  it("rejects malformed overrides", () => {
    expect(() => parsePriceTable('{"x":{"input":-1,"output":1}}')).toThrow();
    expect(parsePriceTable(undefined)).toEqual({});
  });
});

describe("costUsd", () => {
  it("bills every bucket at its own rate", () => {
    const u = usage({ input: 1_000_000, output: 1_000_000, cacheRead: 1_000_000, cacheWrite5m: 1_000_000 });
    expect(costUsd("claude-sonnet-4-6", u)).toBeCloseTo(3 + 15 + 0.3 + 3.75);
    expect(costUsd("claude-sonnet-4-6", usage({ cacheWrite1h: 1_000_000 }))).toBeCloseTo(6);
  });
  it("input cost leaves output out", () => {
    expect(inputCostUsd("claude-haiku-4-5", usage({ input: 1000, output: 1000 }))).toBeCloseTo(0.001);
  });
  it("adds usage", () => {
    expect(addBilled(usage({ input: 1, cacheWrite1h: 2 }), usage({ input: 3, output: 4 }))).toEqual(
      usage({ input: 4, output: 4, cacheWrite1h: 2 }),
    );
  });
});
