import { describe, expect, it } from "vitest";
import { AgentRunTicket } from "./agentrun.ts";
import { embedFindings, embedVerdict, type SourcedFinding, stageMarker } from "./findings.ts";
import { StageResult } from "./result.ts";
import {
  type ForgePull,
  type ForgeReview,
  reportedVerification,
  verifyRemediate,
  verifyReview,
  verifyWrite,
} from "./verify.ts";

const APP = "agentfactory[bot]";
const ticket = AgentRunTicket.parse({
  source: "github",
  id: "github:x",
  workItem: "gh-7",
  url: "u",
  repo: "acme/web",
  number: 7,
  title: "Add a health endpoint",
  body: "b",
  author: "alice",
});
const BRANCH = "agent/7-add-a-health-endpoint";
const pull = (over: Partial<ForgePull> = {}): ForgePull => ({
  number: 4,
  url: "https://forge/acme/web/pull/4",
  state: "open",
  headRepo: "acme/web",
  headRef: BRANCH,
  headSha: "h1",
  author: APP,
  ...over,
});
const write = (over: object = {}) =>
  StageResult.parse({
    stage: "write",
    outcome: "succeeded",
    write: { prNumber: 4, prUrl: "pod-url", branch: BRANCH, headSha: "pod-sha", ...over },
  });
const finding = (blocking: boolean): SourcedFinding => ({
  source: "claude-review",
  severity: "high",
  title: "t",
  detail: "d",
  blocking,
});
const reviewBody = (attempt: number, findings: SourcedFinding[], tier: "low" | "high" = "low") =>
  [
    stageMarker("run-1", "review", attempt, "review"),
    embedFindings(findings),
    embedVerdict({ riskTier: tier, checks: { tests: "success" } }),
  ].join("\n");
const claim = (blocking: number, total = blocking, tier: "low" | "high" = "low") =>
  StageResult.parse({
    stage: "review",
    outcome: "succeeded",
    review: { riskTier: tier, checks: { tests: "success" }, findings: { total, blocking } },
  });
const status = { pullRequest: { number: 4, url: "u", branch: BRANCH, headSha: "h0" } } as never;
const run = { name: "run-1", ticket, status };
const appReview = (body: string, over: Partial<ForgeReview> = {}): ForgeReview => ({
  body,
  author: APP,
  commitId: "h1",
  ...over,
});

describe("verifyWrite", () => {
  it("takes the pull request from the forge: URL and head are the forge's, the branch the derived one", () => {
    expect(verifyWrite(ticket, write(), pull(), APP)).toEqual({
      ok: true,
      pullRequest: { number: 4, url: "https://forge/acme/web/pull/4", branch: BRANCH, headSha: "h1" },
    });
  });

  it.each([
    ["a branch other than the derived one", write({ branch: "release/1.2" }), pull(), "reported branch release/1.2"],
    ["a missing pull request", write(), undefined, "does not exist"],
    ["a PR from a fork", write(), pull({ headRepo: "mallory/web" }), "comes from mallory/web"],
    ["a PR from a deleted fork", write(), pull({ headRepo: undefined }), "deleted repository"],
    ["a PR on another branch", write(), pull({ headRef: "main" }), "is on main"],
    ["a PR a person opened", write(), pull({ author: "mallory" }), "opened by mallory"],
    ["a PR another App opened", write(), pull({ author: "other[bot]" }), "opened by other[bot]"],
    ["a closed PR", write(), pull({ state: "closed" }), "is closed"],
    ["no pull request at all", StageResult.parse({ stage: "write", outcome: "succeeded" }), pull(), "no pull request"],
  ])("refuses %s", (_name, result, forgePull, reason) => {
    const v = verifyWrite(ticket, result, forgePull, APP);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toContain(reason);
  });

  it("refuses everything when the App's login is unknown", () => {
    expect(verifyWrite(ticket, write(), pull(), undefined).ok).toBe(false);
  });
});

describe("verifyRemediate", () => {
  it("re-checks the run's pull request and takes its new head from the forge", () => {
    expect(verifyRemediate(ticket, status, pull({ headSha: "h2" }), APP)).toMatchObject({
      ok: true,
      pullRequest: { number: 4, headSha: "h2" },
    });
    expect(verifyRemediate(ticket, undefined, pull(), APP).ok).toBe(false);
    expect(verifyRemediate(ticket, status, pull({ headRef: "main" }), APP).ok).toBe(false);
  });
});

describe("verifyReview", () => {
  it("takes tier, checks and counts from the App's review of this attempt, on the current head", () => {
    const reviews = [
      appReview(reviewBody(1, [finding(true)])),
      appReview(reviewBody(2, [finding(true), finding(false)])),
    ];
    expect(verifyReview(run, 2, claim(1, 2), pull(), reviews, APP)).toMatchObject({
      ok: true,
      review: { riskTier: "low", checks: { tests: "success" }, blocking: 1, total: 2 },
    });
  });

  it.each([
    ["no review at all", [], claim(0), "posted no review"],
    ["only another attempt's review", [appReview(reviewBody(1, []))], claim(0), "posted no review"],
    [
      "a person's review with the marker",
      [appReview(reviewBody(2, []), { author: "mallory" })],
      claim(0),
      "posted no review",
    ],
    [
      "another App's review with the marker",
      [appReview(reviewBody(2, []), { author: "x[bot]" })],
      claim(0),
      "posted no review",
    ],
    ["a review without a verdict", [appReview(stageMarker("run-1", "review", 2, "review"))], claim(0), "no verdict"],
    ["a review of an older head", [appReview(reviewBody(2, []), { commitId: "h0" })], claim(0), "judged h0"],
    ["a claim of fewer blocking findings", [appReview(reviewBody(2, [finding(true)]))], claim(0, 1), "0 blocking of 1"],
    ["a claim of a lower tier", [appReview(reviewBody(2, [], "high"))], claim(0, 0, "low"), "risk low"],
    [
      "a result without a verdict",
      [appReview(reviewBody(2, []))],
      StageResult.parse({ stage: "review", outcome: "succeeded" }),
      "reported no verdict",
    ],
  ])("refuses %s", (_name, reviews, result, reason) => {
    const v = verifyReview(run, 2, result, pull(), reviews, APP);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toContain(reason);
  });

  it("refuses a review of a pull request that is no longer the run's", () => {
    const reviews = [appReview(reviewBody(2, []))];
    expect(verifyReview(run, 2, claim(0), pull({ headRef: "main" }), reviews, APP).ok).toBe(false);
    expect(verifyReview({ ...run, status: undefined }, 2, claim(0), pull(), reviews, APP).ok).toBe(false);
  });
});

describe("reportedVerification (no App configured)", () => {
  it("takes the pod's figures, except a branch other than the derived one", () => {
    expect(reportedVerification(ticket, write(), undefined)).toMatchObject({
      ok: true,
      pullRequest: { branch: BRANCH },
    });
    expect(reportedVerification(ticket, write({ branch: "main" }), undefined).ok).toBe(false);
    expect(reportedVerification(ticket, claim(2), status)).toMatchObject({ ok: true, review: { blocking: 2 } });
  });
});
