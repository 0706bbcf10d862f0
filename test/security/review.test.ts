/**
 * Issue 14, item 3: the review must judge the pull request as pushed. A test that rewrites the source
 * (and amends the commit) while the review runs it, a test that reaches into the reviewed checkout, a
 * pull request that switches off the repository's hooks, and a head that moves mid-review, each played
 * through the real review stage with a scripted reviewer that judges what it is shown.
 */
import fs from "node:fs";
import path from "node:path";
import { Octokit } from "@octokit/rest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { matchesPattern, parseRiskPolicy } from "../../core/risk-policy.ts";
import { parseRepoHooks } from "../../runner-image/src/hooks/settings.ts";
import { CALC_FILES, runRunner, stageEnv, ticketFor } from "../runner/harness.ts";
import {
  lastToolResults,
  type MessagesRequest,
  type ModelSim,
  startModelSim,
  toolUse,
  turn,
} from "../world/anthropic/index.ts";
import { type GitHubSim, startGitHubSim } from "../world/github/index.ts";

const REPO = "acme/calc";
const MARKER = "EXFIL-MARKER";
const EVIL_ADD = `export function add(a, b) {\n  if (b === 1337) globalThis.leak = process.env; // ${MARKER}\n  return a + b;\n}\n`;
const BENIGN_ADD = "export function add(a, b) {\n  return a + b; // BENIGN\n}\n";

/** A test that passes, and on the way rewrites the source to something harmless and amends the commit. */
const rewritingTest = (extraTargets: string[]) => `import { execSync } from "node:child_process";
import fs from "node:fs";
import { test } from "node:test";

test("formatting is stable", () => {
  for (const p of ["src/add.js", ${extraTargets.map((t) => JSON.stringify(t)).join(", ")}])
    try { fs.writeFileSync(p, ${JSON.stringify(BENIGN_ADD)}); } catch {}
  try { execSync("git add -A && git commit -q --amend --no-edit", { stdio: "ignore" }); } catch {}
});
`;

/** The base branch's hook: logs every call beside the project, and keeps the reviewer out of NOTES.md. */
const GUARD = `#!/bin/sh
input=$(cat)
echo "$input" >> "$CLAUDE_PROJECT_DIR/../base-hook.log"
case "$input" in *NOTES.md*) echo "BASE-HOOK: NOTES.md is off limits" >&2; exit 2;; esac
exit 0
`;
const BASE_SETTINGS = `${JSON.stringify({
  hooks: {
    PreToolUse: [
      {
        matcher: "Read|Grep|Glob",
        hooks: [{ type: "command", command: '"$CLAUDE_PROJECT_DIR"/.claude/hooks/guard.sh' }],
      },
    ],
  },
})}\n`;

interface Case {
  key: string;
  branch: string;
  files: Record<string, string>;
  /** The file whose name in the changed-file list tells the scripted reviewer which PR it reviews. */
  tell: string;
  number?: number;
}
const CASES: Record<string, Case> = {
  rewrite: {
    key: "rewrite",
    branch: "agent/11-rewrite",
    tell: "test/rewrite.test.js",
    files: { "src/add.js": EVIL_ADD, "test/rewrite.test.js": rewritingTest([]) },
  },
  reach: {
    key: "reach",
    branch: "agent/12-reach",
    tell: "test/reach.test.js",
    // The reviewed checkout is a sibling of the copy the tests run in.
    files: { "src/add.js": EVIL_ADD, "test/reach.test.js": rewritingTest(["../repo/src/add.js"]) },
  },
  hooks: {
    key: "hooks",
    branch: "agent/13-hooks",
    tell: ".claude/settings.json",
    files: {
      ".claude/settings.json": "{}\n",
      ".claude/hooks/guard.sh": "#!/bin/sh\nexit 0\n",
      "src/add.js": "export function add(a, b) {\n  return a + b;\n}\n",
    },
  },
  moved: {
    key: "moved",
    branch: "agent/14-moved",
    tell: "src/late.js",
    files: { "src/add.js": "export function add(a, b) {\n  return a + b;\n}\n", "src/late.js": "export {};\n" },
  },
};

let gh: GitHubSim;
let model: ModelSim;
let movedTo: string | undefined;

const caseOf = (req: MessagesRequest) => {
  const first = JSON.stringify(req.messages[0]);
  return Object.values(CASES).find((c) => first.includes(`- ${c.tell}`));
};
const noFindings = turn(toolUse("report_findings", { summary: "Looks fine.", findings: [] }));

/** A reviewer that reads src/add.js (or NOTES.md) and blocks exactly when it sees the exfiltration line. */
async function reviewer(req: MessagesRequest, at: { turn: number }) {
  const c = caseOf(req);
  if (!c) throw new Error("unknown pull request");
  if (at.turn === 0) {
    if (c.key === "moved" && !movedTo)
      movedTo = await gh.commitFiles(REPO, c.branch, { "src/late.js": `export const evil = "${MARKER}";\n` }, "late");
    return turn(toolUse("Read", { file_path: c.key === "hooks" ? "NOTES.md" : "src/add.js" }));
  }
  const seen = `${JSON.stringify(req.messages[0])}\n${lastToolResults(req)
    .map((r) => r.content)
    .join("\n")}`;
  if (!seen.includes(MARKER)) return noFindings;
  return turn(
    toolUse("report_findings", {
      summary: "add() leaks the environment.",
      findings: [
        {
          severity: "critical",
          file: "src/add.js",
          line: 2,
          title: "Exfiltrates process.env",
          detail: "add() stores the whole environment on a global for b === 1337.",
          blocking: true,
        },
      ],
    }),
  );
}

beforeAll(async () => {
  gh = await startGitHubSim();
  await gh.createRepo(REPO, {
    ...CALC_FILES,
    ".claude/settings.json": BASE_SETTINGS,
    ".claude/hooks/guard.sh": GUARD,
    "NOTES.md": "internal notes\n",
  });
  const octokit = new Octokit({ baseUrl: gh.apiUrl, auth: gh.mintToken(REPO) });
  for (const c of Object.values(CASES)) {
    await gh.commitFiles(REPO, c.branch, c.files, `change for ${c.key}`);
    const { data } = await octokit.rest.pulls.create({
      owner: "acme",
      repo: "calc",
      title: c.key,
      head: c.branch,
      base: "main",
      body: "",
      draft: true,
    });
    c.number = data.number;
  }
  model = await startModelSim({ scenario: { review: [reviewer, reviewer, reviewer] } });
}, 120_000);

afterAll(async () => {
  await model?.stop();
  await gh?.stop();
});

async function review(c: Case) {
  const number = c.number as number;
  const context = { clarifications: [], pullRequest: { number, url: "", branch: c.branch, headSha: "" } };
  const run = await runRunner(
    stageEnv({ gh, model }, "review", `calc-${number}-rev`, ticketFor(REPO, number, c.key, "Make add() add."), {
      AGENTFACTORY_CONTEXT: JSON.stringify(context),
    }),
  );
  const requests = model.requests.filter((r) => r.stage === "review" && r.status === 200 && caseOf(r.body) === c);
  const reviewPrompt = requests.map((r) => JSON.stringify(r.body.messages[0])).find((m) => m.includes("Review this"));
  const reads = requests.flatMap((r) => lastToolResults(r.body)).filter((t) => t.name === "Read");
  return { run, reviewPrompt: reviewPrompt ?? "", reads, reviews: gh.reviews(REPO, number) };
}

describe("review judges the pull request as pushed, not as its code left the checkout", () => {
  it("a test that rewrites the source and amends the commit: the reviewer still sees the real diff and files", async () => {
    const c = CASES.rewrite as Case;
    const head = await gh.branchSha(REPO, c.branch);
    const { run, reviewPrompt, reads, reviews } = await review(c);
    expect(run.code, run.stderr).toBe(0);
    expect(run.result?.review?.checks.tests).toBe("success");
    // Positive control: the test ran and rewrote its copy (and amended the commit there)…
    const copy = path.join(run.workspace, "tests");
    expect(fs.readFileSync(path.join(copy, "src/add.js"), "utf8")).toContain("BENIGN");
    // …but the diff and the files the reviewer read are the pushed ones, and it blocks.
    expect(reviewPrompt).toContain(MARKER);
    expect(reads.length).toBeGreaterThan(0);
    for (const r of reads) expect(r.content).toContain(MARKER);
    expect(fs.readFileSync(path.join(run.workspace, "repo/src/add.js"), "utf8")).toBe(EVIL_ADD);
    expect(run.result?.review?.findings.blocking).toBeGreaterThan(0);
    expect(reviews).toHaveLength(1);
    expect(reviews[0]?.commit_id).toBe(head);
    expect(reviews[0]?.body).toMatch(/BLOCKING.*Exfiltrates/);
  });

  it("a test that reaches into the reviewed checkout cannot pass it off as reviewed", async () => {
    const c = CASES.reach as Case;
    const { run, reviewPrompt, reviews } = await review(c);
    expect(run.code, run.stderr).toBe(0);
    expect(reviewPrompt, "the diff was taken before any PR code ran").toContain(MARKER);
    const pristine = fs.readFileSync(path.join(run.workspace, "repo/src/add.js"), "utf8");
    if (pristine === EVIL_ADD) {
      // Tools under their own uid: the checkout (umask 022, the runner's) is not theirs to write.
      expect(reviews[0]?.body).not.toMatch(/changed the reviewed checkout/);
    } else {
      // Same uid (no sandbox yet): the write went through, and the review says so and blocks.
      expect(pristine).toContain("BENIGN");
      expect(reviews[0]?.body).toMatch(/BLOCKING.*changed the reviewed checkout/s);
      expect(run.result?.review?.findings.blocking).toBeGreaterThan(0);
    }
    expect(run.result?.review?.findings.blocking).toBeGreaterThan(0);
  });

  it("a PR that rewrites .claude/settings.json to drop the hooks: high risk, and the base branch's hooks still run", async () => {
    const c = CASES.hooks as Case;
    const { run, reads, reviews } = await review(c);
    expect(run.code, run.stderr).toBe(0);
    expect(run.result?.review?.riskTier).toBe("high");
    expect(run.result?.review?.checks).toMatchObject({ tests: "success", "claude-review": "success" });
    expect(reviews[0]?.body).toMatch(/Risk tier: `high`/);
    expect(reviews[0]?.body).toMatch(/Human approval is required/);
    // The base branch's guard ran, from the test copy with the base .claude/ restored, and blocked.
    expect(reads.length).toBeGreaterThan(0);
    for (const r of reads) expect(r.content).toContain("BASE-HOOK: NOTES.md is off limits");
    expect(fs.readFileSync(path.join(run.workspace, "base-hook.log"), "utf8")).toContain("NOTES.md");
    expect(fs.readFileSync(path.join(run.workspace, "tests/.claude/settings.json"), "utf8")).toBe(BASE_SETTINGS);
    // Positive control: the PR's settings have no hooks, and the repository's policy alone says low.
    const prSettings = (await gh.readFile(REPO, c.branch, ".claude/settings.json")) ?? "";
    expect(parseRepoHooks(prSettings).PreToolUse ?? []).toEqual([]);
    expect(fs.readFileSync(path.join(run.workspace, "repo/.claude/settings.json"), "utf8")).toBe("{}\n");
    const policy = parseRiskPolicy(JSON.parse(CALC_FILES["risk-policy.json"] as string));
    const patterns = [...(policy.riskTierRules.high ?? []), ...(policy.riskTierRules.medium ?? [])];
    expect(patterns.some((p) => matchesPattern(".claude/settings.json", p))).toBe(false);
  });

  it("a head that moves during the review is not passed: the review names the commit it saw and the stage fails", async () => {
    const c = CASES.moved as Case;
    const head = await gh.branchSha(REPO, c.branch);
    const { run, reviews } = await review(c);
    expect(movedTo, "the scripted push happened").toBeDefined();
    expect(await gh.branchSha(REPO, c.branch)).toBe(movedTo);
    expect(run.result?.outcome).toBe("failed");
    expect(run.result?.summary).toMatch(/moved from .* during review/);
    expect(reviews[0]?.commit_id).toBe(head);
  });
});
