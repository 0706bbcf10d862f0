import { describe, expect, it } from "vitest";
import { embedFindings, extractFindings, latestReviewFindings, type SourcedFinding } from "./findings.ts";

const finding = (title: string, blocking = true): SourcedFinding => ({
  source: "claude-review",
  severity: "high",
  title,
  detail: "details -->",
  blocking,
});
const marker = (attempt: number) => `<!-- agentfactory:run=r-1 stage=review attempt=${attempt} kind=review -->`;
const review = (attempt: number, findings: SourcedFinding[], bot = true) => ({
  body: `${marker(attempt)}\nReview\n${embedFindings(findings)}`,
  bot,
});

describe("embedded findings", () => {
  it("round-trip through a review body", () => {
    const f = { ...finding("SQL injection"), file: "src/a.ts", line: 3 };
    expect(extractFindings(`text\n${embedFindings([f])}\nmore`)).toEqual([f]);
  });

  it("a body without or with malformed findings has none", () => {
    expect(extractFindings("🚫 BLOCKING ISSUES FOUND")).toBeUndefined();
    expect(extractFindings("<!-- agentfactory:findings bm90IGpzb24= -->")).toBeUndefined();
    const wrongShape = Buffer.from(JSON.stringify([{ title: "x" }])).toString("base64");
    expect(extractFindings(`<!-- agentfactory:findings ${wrongShape} -->`)).toBeUndefined();
  });
});

describe("latestReviewFindings", () => {
  it("takes the newest AgentFactory bot review", () => {
    const reviews = [review(1, [finding("old")]), review(2, [finding("new"), finding("minor", false)])];
    expect(latestReviewFindings(reviews).map((f) => f.title)).toEqual(["new", "minor"]);
  });

  it("ignores human reviews carrying the markers, bot reviews of others, and reviews without findings", () => {
    const reviews = [
      review(1, [finding("ours")]),
      review(2, [finding("pasted by a human")], false),
      { body: `someone else's bot\n${embedFindings([finding("foreign")])}`, bot: true },
      { body: `${marker(3)}\nno findings embedded`, bot: true },
    ];
    expect(latestReviewFindings(reviews).map((f) => f.title)).toEqual(["ours"]);
    expect(latestReviewFindings([])).toEqual([]);
  });
});
