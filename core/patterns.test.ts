import { describe, expect, it } from "vitest";
import { type OutcomeRecord, type OutcomeRecordInput, OutcomeRecord as OutcomeRecordSchema } from "./outcome.ts";
import {
  cleanFinding,
  extractPatterns,
  latestPerPr,
  prList,
  renderAntiPatternsMarkdown,
  renderPatternsMarkdown,
} from "./patterns.ts";

const now = new Date("2026-03-08T23:00:00Z");
let seq = 0;

interface R {
  pr: number;
  outcome?: OutcomeRecordInput["outcome"];
  files?: string[];
  findings?: string[];
  checks?: OutcomeRecordInput["checks"];
  day?: number;
  model?: string;
  tier?: OutcomeRecordInput["risk_tier"];
  cost?: number;
  repo?: string;
}

function rec({ pr, outcome = "clean", files = [], findings = [], checks = {}, day = 1, model, tier, cost, repo }: R) {
  seq += 1;
  return OutcomeRecordSchema.parse({
    outcome,
    pr_url: pr > 0 ? `https://github.com/${repo ?? "acme/demo"}/pull/${pr}` : "",
    pr_number: pr,
    branch: `agent/${pr}-x`,
    risk_tier: tier ?? "low",
    checks,
    files_changed: files,
    review_findings: findings,
    run_id: `run-${seq}`,
    timestamp: `2026-03-0${day}T10:00:00Z`,
    ...(model ? { model } : {}),
    ...(cost !== undefined ? { cost_usd: cost } : {}),
  });
}

const clean = (pr: number, files: string[], extra: Partial<R> = {}) => rec({ pr, files, ...extra });
const failed = (pr: number, files: string[], extra: Partial<R> = {}) => rec({ pr, files, outcome: "failed", ...extra });
const report = (records: OutcomeRecord[]) => extractPatterns(records, { now });

describe("extractPatterns: thresholds and de-duplication", () => {
  it("makes a file a pattern at 3 clean PRs, not at 2", () => {
    const two = report([clean(1, ["src/a.ts"]), clean(2, ["src/a.ts"])]);
    expect(two.patterns.filter((p) => p.kind === "file")).toEqual([]);
    const three = report([clean(1, ["src/a.ts"]), clean(2, ["src/a.ts"]), clean(3, ["src/a.ts"])]);
    expect(three.patterns.find((p) => p.kind === "file")).toMatchObject({
      subject: "src/a.ts",
      count: 3,
      prs: [1, 2, 3],
      confidence: 1,
    });
  });

  it("makes a file an anti-pattern at 2 failed PRs, not at 1", () => {
    expect(report([failed(1, ["src/a.ts"])]).antiPatterns).toEqual([]);
    const two = report([failed(1, ["src/a.ts"]), failed(2, ["src/a.ts"]), clean(3, ["src/a.ts"])]);
    expect(two.antiPatterns).toEqual([
      expect.objectContaining({ kind: "file", subject: "src/a.ts", count: 2, prs: [1, 2], confidence: 1 }),
    ]);
  });

  it("honours other thresholds when asked", () => {
    const r = extractPatterns([clean(1, ["a.ts"])], { now, minCleanEvidence: 1 });
    expect(r.patterns.map((p) => p.subject)).toEqual(["a.ts", "."]);
  });

  it("counts a PR logged several times once (the seed counted every review run)", () => {
    const r = report([
      clean(7, ["src/a.ts"], { day: 1 }),
      clean(7, ["src/a.ts"], { day: 2 }),
      clean(7, ["src/a.ts"], { day: 3 }),
    ]);
    expect(r.patterns).toEqual([]);
    expect(r).toMatchObject({ runs: 1, clean: 1, duplicates: 2 });
  });

  it("keeps the latest record of a PR by timestamp, not by position", () => {
    const records = [failed(7, ["a.ts"], { day: 3 }), clean(7, ["a.ts"], { day: 1 }), failed(8, ["a.ts"], { day: 2 })];
    const r = report(records);
    expect(r).toMatchObject({ runs: 2, clean: 0, failed: 2 });
    expect(latestPerPr(records).map((x) => x.pr_number)).toEqual([8, 7]);
    const fixed = report([failed(7, ["a.ts"], { day: 1 }), clean(7, ["a.ts"], { day: 2 })]);
    expect(fixed).toMatchObject({ clean: 1, failed: 0 });
  });

  it("tells PRs of different repositories apart, and runs without a PR apart", () => {
    const r = report([
      failed(5, ["a.ts"], { repo: "acme/one" }),
      failed(5, ["a.ts"], { repo: "acme/two" }),
      failed(0, []),
      failed(0, []),
    ]);
    expect(r).toMatchObject({ runs: 4, failed: 4, duplicates: 0 });
    expect(r.antiPatterns[0]).toMatchObject({ subject: "a.ts", count: 2, prs: [5] });
  });

  it("counts a file once per PR even if listed twice", () => {
    const r = report([clean(1, ["a.ts", "a.ts"]), clean(2, ["a.ts"])]);
    expect(r.patterns).toEqual([]);
  });

  it("leaves cancelled runs out of rates and rules but reports them", () => {
    const r = report([
      rec({ pr: 1, outcome: "cancelled", files: ["a.ts"] }),
      rec({ pr: 2, outcome: "cancelled", files: ["a.ts"] }),
      clean(3, ["b.ts"]),
    ]);
    expect(r).toMatchObject({ runs: 1, clean: 1, failed: 0, cancelled: 2, successRate: 1, antiPatterns: [] });
  });

  it("treats the seed's legacy outcomes and ours as failures", () => {
    const outcomes = ["tests-failed", "review-failed", "blocked", "escalated", "failed"] as const;
    const r = report(outcomes.map((outcome, i) => rec({ pr: i + 1, outcome, files: ["x.ts"] })));
    expect(r).toMatchObject({ runs: 5, failed: 5, successRate: 0 });
  });
});

describe("extractPatterns: what is counted", () => {
  it("turns a review finding recurring in 2 failed PRs into an anti-pattern, whatever its wording details", () => {
    const r = report([
      failed(1, [], { findings: ["BLOCKING: Missing input validation in handler at src/api.ts:12"], day: 1 }),
      failed(2, [], {
        findings: ["[SPEC-AUDIT] BLOCKING: missing input validation in handler at src/api.ts:80."],
        day: 2,
      }),
      failed(3, [], { findings: ["No test for the 503 path"] }),
      clean(4, [], { findings: ["No test for the 503 path"] }),
    ]);
    expect(r.antiPatterns).toEqual([
      expect.objectContaining({
        kind: "review-finding",
        subject: "missing input validation in handler at src/api.ts:80.",
        count: 2,
        prs: [1, 2],
      }),
    ]);
    expect(renderAntiPatternsMarkdown(r)).toContain(
      "- Review raised this in 2 failed PRs: “missing input validation in handler at src/api.ts:80.” (PRs: #1, #2)",
    );
  });

  it("groups a finding with and without the BLOCKING: marker; a leading “Missing” is kept", () => {
    const r = report([
      failed(1, [], { findings: ["BLOCKING: Missing rate limit on /login"], day: 1 }),
      failed(2, [], { findings: ["Missing rate limit on /login"], day: 2 }),
      failed(3, [], { findings: ["[SPEC-AUDIT] MISSING: rate limit on /login"], day: 3 }),
    ]);
    expect(r.antiPatterns).toEqual([
      expect.objectContaining({
        kind: "review-finding",
        subject: "Missing rate limit on /login",
        count: 2,
        prs: [1, 2],
      }),
    ]);
  });

  it("makes a failing check an anti-pattern with its three most involved files", () => {
    const r = report([
      failed(1, ["z.ts", "b.ts", "c.ts"], { checks: { tests: "failure", gate: "success" } }),
      failed(2, ["b.ts", "a.ts", "d.ts"], { checks: { tests: "failure", review: "failure" } }),
      failed(3, ["b.ts"], { checks: { review: "cancelled" } }),
    ]);
    const check = r.antiPatterns.find((p) => p.kind === "check");
    expect(check).toMatchObject({ subject: "tests", count: 2, prs: [1, 2] });
    expect(check?.description).toBe(
      "The `tests` check failed in 2 PRs. Files most often involved: `b.ts`, `a.ts`, `c.ts`.",
    );
    expect(r.commonFailures).toEqual([
      { check: "tests", count: 2 },
      { check: "review", count: 1 },
    ]);
    expect(r.fileHotspots[0]).toEqual({ file: "b.ts", count: 3 });
  });

  it("counts directories once per PR and names the repository root sensibly", () => {
    const r = report([
      clean(1, ["README.md", "package.json"]),
      clean(2, ["README.md"]),
      clean(3, ["LICENSE", "src/x/a.ts"]),
    ]);
    const root = r.patterns.find((p) => p.kind === "directory");
    expect(root).toMatchObject({ subject: ".", count: 3 });
    const md = renderPatternsMarkdown(r);
    expect(md).toContain("- The repository's top-level files went through review cleanly in 3 PRs. (PRs: #1, #2, #3)");
    expect(md).not.toContain("`./`");
    expect(md).not.toContain("`.`");
  });

  it("names nested directories with a trailing slash", () => {
    const r = report([clean(1, ["src/api/a.ts"]), clean(2, ["src/api/b.ts"]), clean(3, ["src/api/c.ts"])]);
    expect(r.patterns).toEqual([
      expect.objectContaining({
        kind: "directory",
        subject: "src/api",
        description: "Directory `src/api/` went through review cleanly in 3 PRs.",
      }),
    ]);
  });

  it("computes success rates by tier (low, medium, high order) and by model (best first)", () => {
    const r = report([
      clean(1, [], { tier: "high", model: "m-b" }),
      failed(2, [], { tier: "high", model: "m-b" }),
      clean(3, [], { tier: "low", model: "m-a" }),
      failed(4, [], { tier: "unknown" }),
      clean(5, [], { tier: "medium", model: "m-c" }),
    ]);
    expect(r.successRate).toBe(0.6);
    expect(r.successRateByTier.map((t) => [t.key, t.rate])).toEqual([
      ["low", 1],
      ["medium", 1],
      ["high", 0.5],
      ["unknown", 0],
    ]);
    expect(r.successRateByModel.map((m) => [m.key, m.rate, m.runs])).toEqual([
      ["m-a", 1, 1],
      ["m-c", 1, 1],
      ["m-b", 0.5, 2],
    ]);
  });

  it("averages cost per outcome over records that logged one, clean first", () => {
    const r = report([
      clean(1, [], { cost: 0.5 }),
      clean(2, [], { cost: 1 }),
      clean(3, [], { cost: 0 }),
      failed(4, [], { cost: 2 }),
      rec({ pr: 5, outcome: "blocked" }),
      rec({ pr: 6, outcome: "cancelled", cost: 0.25 }),
    ]);
    expect(r.costByOutcome).toEqual([
      { outcome: "clean", runs: 2, averageUsd: 0.75 },
      { outcome: "cancelled", runs: 1, averageUsd: 0.25 },
      { outcome: "failed", runs: 1, averageUsd: 2 },
    ]);
  });

  it("reports the period covered and when it was made", () => {
    const r = report([clean(1, [], { day: 4 }), clean(2, [], { day: 2 }), clean(3, [], { day: 6 })]);
    expect(r).toMatchObject({
      generatedAt: "2026-03-08T23:00:00.000Z",
      periodStart: "2026-03-02T10:00:00Z",
      periodEnd: "2026-03-06T10:00:00Z",
    });
    expect(report([])).toMatchObject({ periodStart: null, periodEnd: null, runs: 0, successRate: 0 });
  });
});

describe("extractPatterns: ordering", () => {
  const many = () => {
    const records: OutcomeRecord[] = [];
    // Files f1..f7 in 3..9 clean PRs; the same directory for all.
    for (let pr = 1; pr <= 9; pr++) {
      const files = Array.from({ length: 7 }, (_, i) => `lib/f${i + 1}.ts`).filter((_, i) => pr <= i + 3);
      records.push(clean(pr, files));
    }
    return records;
  };

  it("ranks by evidence, then kind, then name, and renders the top 5", () => {
    const r = report(many());
    expect(r.patterns.map((p) => `${p.subject}:${p.count}`)).toEqual([
      "lib/f7.ts:9",
      "lib:9",
      "lib/f6.ts:8",
      "lib/f5.ts:7",
      "lib/f4.ts:6",
      "lib/f3.ts:5",
      "lib/f2.ts:4",
      "lib/f1.ts:3",
    ]);
    const items = renderPatternsMarkdown(r)
      .split("\n")
      .filter((l) => l.includes("(PRs:"));
    expect(items).toHaveLength(5);
    expect(items[0]).toBe("- File `lib/f7.ts` was changed in 9 clean PRs without trouble. (PRs: #1, #2, #3 +6 more)");
  });

  it("gives the same report and files for any order of the same records", () => {
    const records = many();
    const shuffled = [...records].reverse();
    shuffled.push(shuffled.splice(3, 1)[0]!);
    expect(report(shuffled)).toEqual(report(records));
    expect(renderPatternsMarkdown(report(shuffled))).toBe(renderPatternsMarkdown(report(records)));
  });
});

describe("rendering", () => {
  it("with no outcomes, each file holds its heading and the zero-runs line", () => {
    expect(renderPatternsMarkdown(report([]))).toBe(
      "# Agent Patterns — What Works Well\n\nNo agent outcomes recorded yet.\n",
    );
    expect(renderAntiPatternsMarkdown(report([]))).toBe(
      "# Agent Anti-Patterns — Watch Out For\n\nNo agent outcomes recorded yet.\n",
    );
  });

  it("renders both files in the seed's layout, ending in exactly one newline", () => {
    const r = report([
      clean(1, ["src/api/a.ts"], { tier: "low", model: "claude-sonnet-4-6", cost: 0.42 }),
      clean(2, ["src/api/a.ts", "README.md"], { tier: "medium", model: "claude-sonnet-4-6", cost: 0.5 }),
      clean(3, ["src/api/a.ts"], { tier: "low", model: "claude-opus-4-6", cost: 1.1 }),
      failed(4, ["src/db.ts"], { tier: "high", model: "claude-sonnet-4-6", checks: { tests: "failure" }, cost: 2 }),
      failed(5, ["src/db.ts", "src/api/a.ts"], {
        tier: "high",
        checks: { tests: "failure", review: "failure" },
        findings: ["BLOCKING: no migration for the new column"],
      }),
      failed(6, ["src/db.ts"], { tier: "medium", findings: ["No migration for the new column."] }),
    ]);
    expect(renderPatternsMarkdown(r)).toBe(
      [
        "# Agent Patterns — What Works Well",
        "",
        "Based on 6 runs. Success rate: 50%.",
        "",
        "- **low** risk: 100% success rate (2 runs)",
        "- **medium** risk: 50% success rate (2 runs)",
        "- **high** risk: 0% success rate (2 runs)",
        "",
        "- File `src/api/a.ts` was changed in 3 clean PRs without trouble. (PRs: #1, #2, #3)",
        "- Directory `src/api/` went through review cleanly in 3 PRs. (PRs: #1, #2, #3)",
        "",
        "## Cost per Outcome",
        "",
        "- clean: $0.6733 (3 runs)",
        "- failed: $2.0000 (1 run)",
        "",
        "## Model Performance",
        "",
        "- `claude-opus-4-6`: 100% success rate (1 run)",
        "- `claude-sonnet-4-6`: 67% success rate (3 runs)",
        "",
      ].join("\n"),
    );
    expect(renderAntiPatternsMarkdown(r)).toBe(
      [
        "# Agent Anti-Patterns — Watch Out For",
        "",
        "- File `src/db.ts` was part of 3 failed PRs; change it with care. (PRs: #4, #5, #6)",
        "- Review raised this in 2 failed PRs: “No migration for the new column.” (PRs: #5, #6)",
        "- The `tests` check failed in 2 PRs. Files most often involved: `src/db.ts`, `src/api/a.ts`. (PRs: #4, #5)",
        "",
        "## Common Failure Checks",
        "",
        "- `tests`: failed in 2 PRs",
        "- `review`: failed in 1 PR",
        "",
        "## File Hotspots",
        "",
        "- `src/db.ts`: in 3 failed PRs; run its tests early when you touch it",
        "- `src/api/a.ts`: in 1 failed PR; run its tests early when you touch it",
        "",
      ].join("\n"),
    );
  });

  it("says so when nothing has enough evidence yet", () => {
    const r = report([clean(1, ["a.ts"]), failed(2, ["b.ts"])]);
    expect(renderPatternsMarkdown(r)).toContain("\nNo pattern has reached 3 clean PRs yet.\n");
    expect(renderAntiPatternsMarkdown(r)).toContain("\nNothing has gone wrong in 2 or more PRs yet.\n");
    expect(renderAntiPatternsMarkdown(r)).not.toContain("## Common Failure Checks");
  });

  it("leaves out tier lines for tiers it does not know", () => {
    const md = renderPatternsMarkdown(report([clean(1, [], { tier: "unknown" })]));
    expect(md).not.toContain("**unknown**");
    expect(md).toBe(
      "# Agent Patterns — What Works Well\n\nBased on 1 run. Success rate: 100%.\n\nNo pattern has reached 3 clean PRs yet.\n",
    );
  });
});

describe("helpers", () => {
  it.each([
    [[], ""],
    [[0], ""],
    [[3], " (PRs: #3)"],
    [[3, 1, 2], " (PRs: #1, #2, #3)"],
    [[5, 4, 3, 2, 1, 2], " (PRs: #1, #2, #3 +2 more)"],
  ])("prList(%j) = %j", (prs, text) => {
    expect(prList(prs)).toBe(text);
  });

  it.each([
    ["BLOCKING: use `rm -rf` nowhere", "use rm -rf nowhere"],
    ["[SPEC-AUDIT] MISSING: test for *retry*", "test for retry"],
    ["[SPEC-AUDIT] BLOCKING: tautological test", "tautological test"],
    ["- BLOCKING: listed", "listed"],
    ["Missing null check", "Missing null check"],
    ["BLOCKING: Missing null check", "Missing null check"],
    ["MISSING: not a seed marker alone", "MISSING: not a seed marker alone"],
    ["Blocking: lowercase is prose", "Blocking: lowercase is prose"],
    ["BLOCKING ISSUES FOUND", "BLOCKING ISSUES FOUND"],
    ["Uses BLOCKING: in the middle", "Uses BLOCKING: in the middle"],
    ["line one\nline two\u200b <script>", "line one line two script"],
    ["x".repeat(300), `${"x".repeat(159)}…`],
    ["   ", ""],
  ])("cleanFinding(%j) = %j", (input, output) => {
    expect(cleanFinding(input)).toBe(output);
  });
});
