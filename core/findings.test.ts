import { describe, expect, it } from "vitest";
import { embedFindings, extractFindings, isAppLogin, latestReviewFindings, type SourcedFinding } from "./findings.ts";

const finding = (title: string, blocking = true): SourcedFinding => ({
  source: "claude-review",
  severity: "high",
  title,
  detail: "details -->",
  blocking,
});
const marker = (attempt: number) => `<!-- agentfactory:run=r-1 stage=review attempt=${attempt} kind=review -->`;
const review = (attempt: number, findings: SourcedFinding[], byApp = true) => ({
  body: `${marker(attempt)}\nReview\n${embedFindings(findings)}`,
  byApp,
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
  it("takes the newest review the App posted", () => {
    const reviews = [review(1, [finding("old")]), review(2, [finding("new"), finding("minor", false)])];
    expect(latestReviewFindings(reviews).map((f) => f.title)).toEqual(["new", "minor"]);
  });

  it("ignores reviews by anyone but the App carrying the markers, unmarked reviews, and reviews without findings", () => {
    const reviews = [
      review(1, [finding("ours")]),
      review(2, [finding("pasted by a human or posted by another bot")], false),
      { body: `unmarked\n${embedFindings([finding("foreign")])}`, byApp: true },
      { body: `${marker(3)}\nno findings embedded`, byApp: true },
    ];
    expect(latestReviewFindings(reviews).map((f) => f.title)).toEqual(["ours"]);
    expect(latestReviewFindings([])).toEqual([]);
  });
});

describe("isAppLogin", () => {
  it("is the App's exact login only, and nothing when the App's login is unknown", () => {
    expect(isAppLogin("agentfactory[bot]", "agentfactory[bot]")).toBe(true);
    expect(isAppLogin("mallory", "agentfactory[bot]")).toBe(false);
    expect(isAppLogin("other-app[bot]", "agentfactory[bot]")).toBe(false);
    expect(isAppLogin("agentfactory[bot]", undefined)).toBe(false);
    expect(isAppLogin(undefined, "agentfactory[bot]")).toBe(false);
  });
});
