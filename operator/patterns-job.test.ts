import { describe, expect, it } from "vitest";
import type { OutcomeRecordInput } from "../core/outcome.ts";
import { extractPatterns } from "../core/patterns.ts";
import {
  changedPaths,
  commitMessage,
  decide,
  loadPatternsJobConfig,
  PATTERNS_BRANCH,
  prBody,
  prTitle,
  REDACTED,
  redactSecrets,
  rulesFiles,
  toOutcomeRecord,
} from "./patterns-job.ts";

const record = (over: Partial<OutcomeRecordInput> = {}): OutcomeRecordInput => ({
  outcome: "clean",
  pr_url: "https://github.com/acme/shop/pull/1",
  pr_number: 1,
  branch: "agent/1-x",
  risk_tier: "low",
  checks: { gate: "success", tests: "success", review: "success", spec_audit: "skipped" },
  files_changed: ["src/a.ts"],
  review_findings: [],
  run_id: "run-1",
  timestamp: "2026-11-01T10:00:00Z",
  ...over,
});

const report = (n: number) =>
  extractPatterns(
    Array.from({ length: n }, (_, i) =>
      toOutcomeRecord(record({ pr_number: i + 1, pr_url: `https://github.com/acme/shop/pull/${i + 1}` })),
    ).filter((r) => r !== undefined),
    { now: new Date("2026-11-24T23:00:00Z") },
  );

describe("texts", () => {
  it("titles the PR with the UTC date", () => {
    expect(prTitle(new Date("2026-11-29T23:30:00-05:00"))).toBe("Update learned patterns (2026-11-30)");
  });

  it("counts runs in the commit message", () => {
    expect(commitMessage(12)).toBe("chore: update learned patterns from 12 pipeline runs");
    expect(commitMessage(1)).toBe("chore: update learned patterns from 1 pipeline run");
  });

  it("writes run count, success rate and the review checklist into the body", () => {
    const body = prBody({ report: report(4), windowDays: 90, bad: 2, files: [".claude/rules/patterns.md"] });
    expect(body).toContain("**4** finished pipeline runs");
    expect(body).toContain("success rate **100%**");
    expect(body).toContain("the last 90 days");
    expect(body).toContain("2 unreadable message(s) skipped");
    expect(body).toContain("- `.claude/rules/patterns.md`");
    expect(body).toContain(PATTERNS_BRANCH);
    expect(body.match(/^- \[ \] /gm)).toHaveLength(3);
    expect(body).toMatch(/accurate/);
    expect(body).toMatch(/rather than noise/);
    expect(body).toMatch(/Nothing confidential/);
    expect(prBody({ report: report(1), windowDays: 0, bad: 0, files: [] })).toContain("(all recorded outcomes)");
  });
});

describe("redactSecrets", () => {
  it("removes token shapes and given values", () => {
    const text = [
      "token ghs_abcdefghijklmnopqrstuvwxyz0123",
      "key sk-ant-api03-abcdefghijklmnopqrstuv",
      "aws AKIAABCDEFGHIJKLMNOP",
      "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
      "clone https://x-access-token:secret123@github.com/a/b.git",
      "custom my-very-own-secret-value",
    ].join("\n");
    const out = redactSecrets(text, ["my-very-own-secret-value", "short"]);
    for (const leak of ["ghs_abc", "sk-ant-api03", "AKIAABCD", "MIIE", "secret123", "my-very-own"])
      expect(out).not.toContain(leak);
    expect(out.split(REDACTED).length - 1).toBe(6);
  });

  it("leaves ordinary rules text alone", () => {
    const text = "- File `src/api/token-store.ts` was changed in 3 clean PRs without trouble. (PRs: #1, #2, #3)\n";
    expect(redactSecrets(text)).toBe(text);
  });

  it("applies to the rendered files", () => {
    const r = extractPatterns(
      [1, 2].map(
        (n) =>
          toOutcomeRecord(
            record({
              outcome: "escalated",
              pr_number: n,
              pr_url: `https://github.com/acme/shop/pull/${n}`,
              review_findings: ["Hard-coded token ghp_abcdefghijklmnopqrstuvwxyz012345 in config"],
            }),
          )!,
      ),
      { now: new Date() },
    );
    const files = rulesFiles(r, ".claude/rules");
    expect(Object.keys(files)).toEqual([".claude/rules/patterns.md", ".claude/rules/anti-patterns.md"]);
    expect(files[".claude/rules/anti-patterns.md"]).toContain(`Hard-coded token ${REDACTED} in config`);
    expect(JSON.stringify(files)).not.toContain("ghp_");
  });
});

describe("toOutcomeRecord", () => {
  it("accepts a core record", () => {
    expect(toOutcomeRecord(record())?.run_id).toBe("run-1");
  });

  it("keeps a record whose extra fields have another shape, reduced to the seed's fields", () => {
    // The operator's own record shape (operator/outcome.ts): camelCase tokens, stage durations in seconds.
    const r = toOutcomeRecord({
      ...record({ outcome: "blocked" }),
      tokens: { input: 1, output: 2, cacheRead: 0, cacheWrite: 0 },
      stages: [{ name: "write", attempt: 1, outcome: "Succeeded", duration_s: 3 }],
      cost_usd: 1.5,
    });
    expect(r?.outcome).toBe("blocked");
    expect(r?.cost_usd).toBe(1.5);
    expect(r?.tokens).toBeUndefined();
  });

  it("rejects what is not an outcome record", () => {
    expect(toOutcomeRecord({ hello: "world" })).toBeUndefined();
    expect(toOutcomeRecord("clean")).toBeUndefined();
    expect(toOutcomeRecord(null)).toBeUndefined();
    expect(toOutcomeRecord(record({ outcome: "merged" as never }))).toBeUndefined();
  });
});

describe("decide", () => {
  it("does nothing without runs", () => {
    expect(decide({ runs: 0, changedFromBase: ["a"] })).toEqual({ action: "noop", reason: "no-outcomes" });
  });
  it("does nothing when the base already holds the files", () => {
    expect(decide({ runs: 3, changedFromBase: [], openPull: { number: 7, changedFromHead: ["a"] } })).toEqual({
      action: "noop",
      reason: "base-current",
    });
  });
  it("does nothing when the open PR already proposes the files", () => {
    expect(decide({ runs: 3, changedFromBase: ["a"], openPull: { number: 7, changedFromHead: [] } })).toEqual({
      action: "noop",
      reason: "pr-current",
    });
  });
  it("updates the open PR instead of opening another", () => {
    expect(decide({ runs: 3, changedFromBase: ["a"], openPull: { number: 7, changedFromHead: ["a"] } })).toEqual({
      action: "update-pr",
      pull: 7,
    });
  });
  it("opens a PR when none is open", () => {
    expect(decide({ runs: 3, changedFromBase: ["a"] })).toEqual({ action: "open-pr" });
  });
});

describe("changedPaths", () => {
  it("lists missing and different files", () => {
    expect(changedPaths({ a: "1", b: "2", c: "3" }, { a: "1", b: "x" })).toEqual(["b", "c"]);
  });
});

describe("loadPatternsJobConfig", () => {
  const env = { RULES_REPO: "acme/rules", GITHUB_APP_ID: "12", GITHUB_APP_PRIVATE_KEY: "line1\\nline2" };
  it("applies defaults and unescapes the key", () => {
    const c = loadPatternsJobConfig(env);
    expect(c).toMatchObject({
      RULES_BASE_BRANCH: "main",
      RULES_DIR: ".claude/rules",
      WINDOW_DAYS: 90,
      GITHUB_API_URL: "https://api.github.com",
      privateKey: "line1\nline2",
    });
    expect(c.GITHUB_INSTALLATION_ID).toBeUndefined();
    expect(loadPatternsJobConfig({ ...env, RULES_DIR: "/rules/", WINDOW_DAYS: "0" })).toMatchObject({
      RULES_DIR: "rules",
      WINDOW_DAYS: 0,
    });
  });
  it("refuses a bad repository name or a missing key", () => {
    expect(() => loadPatternsJobConfig({ ...env, RULES_REPO: "rules" })).toThrow(/owner\/name/);
    expect(() => loadPatternsJobConfig({ ...env, GITHUB_APP_PRIVATE_KEY: "" })).toThrow(/PRIVATE_KEY/);
  });
});
