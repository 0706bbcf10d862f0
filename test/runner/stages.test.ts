import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  lastToolResults,
  type MessagesRequest,
  type ModelSim,
  startModelSim,
  text,
  toolUse,
  turn,
} from "../world/anthropic/index.ts";
import { type GitHubSim, startGitHubSim } from "../world/github/index.ts";
import { CALC_FILES, runRunner, stageEnv, ticketFor } from "./harness.ts";

const REPO = "acme/calc";
const PROBE = "Probe the sandbox";
const SECRET_TOKEN_NAMES = "GITHUB_TOKEN|ANTHROPIC_API_KEY|GIT_CONFIG_VALUE";
/**
 * What a hostile agent would try: the runner's environment via /proc, its own environment, HOME. `all`
 * reads the environment of every process from the probe up to the runner (its ancestors): a pod has no
 * other runner, while here other test files run other runners (and their git) at the same time.
 */
const PROBE_SCRIPT = `all() { p=$$; while [ "\${p:-1}" -gt 1 ]; do tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null; grep -qa AGENTFACTORY_STAGE= /proc/$p/environ 2>/dev/null && break; p=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$p/status 2>/dev/null); done; }
echo "runner-visible=$(all | grep -c AGENTFACTORY_STAGE=write)"
all | grep -c -E '${SECRET_TOKEN_NAMES}'
env | grep -c -E '${SECRET_TOKEN_NAMES}'
grep -rl -E 'ghs_|sk-ant-' "$HOME" 2>/dev/null | wc -l
echo probe-done
`;

/** Picks the script by the ticket title found in the first user message. */
function byTicket(scripts: Record<string, ReturnType<typeof turn>[]>) {
  return Array.from(
    { length: Math.max(...Object.values(scripts).map((s) => s.length)) },
    (_, i) => (req: MessagesRequest) => {
      const first = JSON.stringify(req.messages[0]);
      const key = Object.keys(scripts).find((title) => first.includes(title));
      const script = key ? scripts[key] : undefined;
      const t = script?.[i];
      if (!t) throw new Error(`no scripted turn ${i} for this ticket`);
      return t;
    },
  );
}
const TITLE = "add() returns the wrong result";
let gh: GitHubSim;
let model: ModelSim;

const clearVerdict = {
  verdict: "clear",
  summary: "add(a, b) must return the sum.",
  plan: ["Fix the operator in src/add.js", "Keep the existing test"],
  acceptanceCriteria: ["add(2, 3) returns 5", "npm test passes"],
  filesToChange: ["src/add.js"],
  riskTier: "low",
};

beforeAll(async () => {
  gh = await startGitHubSim();
  await gh.createRepo(REPO, CALC_FILES);
  gh.createIssue(REPO, {
    title: TITLE,
    body: "add(2, 3) gives -1. It should add.",
    user: "alice",
    labels: ["ai-agent"],
  });
  gh.createIssue(REPO, { title: "Make it faster", body: "Improve performance.", user: "alice", labels: ["ai-agent"] });
  gh.createIssue(REPO, { title: PROBE, body: "Look around.", user: "mallory", labels: ["ai-agent"] });
  model = await startModelSim({
    scenario: {
      triage: [
        (req) => {
          const first = JSON.stringify(req.messages[0]);
          if (first.includes("Make it faster"))
            return turn(
              toolUse("triage_verdict", {
                verdict: "unclear",
                summary: "Make something faster.",
                question: "Which operation is too slow, and how fast should it be?",
                defaultAssumption: "Speed up add() for large arrays of numbers.",
                why: "The library has several entry points with different costs.",
              }),
            );
          return turn(text("Let me look."), toolUse("Read", { file_path: "src/add.js" }));
        },
        turn(toolUse("triage_verdict", clearVerdict)),
      ],
      write: byTicket({
        [TITLE]: [
          turn(toolUse("Read", { file_path: "src/add.js" })),
          turn(toolUse("Edit", { file_path: "src/add.js", old_string: "return a - b;", new_string: "return a + b;" })),
          turn(toolUse("Bash", { command: "npm test 2>&1 | tail -5" })),
          turn(text("Fixed add() to return the sum of its arguments; the existing test now passes.")),
        ],
        [PROBE]: [
          turn(toolUse("Write", { file_path: "probe.sh", content: PROBE_SCRIPT })),
          turn(toolUse("Bash", { command: "bash probe.sh" })),
          turn(text("Nothing to do.")),
        ],
      }),
      review: [
        (req) =>
          JSON.stringify(req.system).includes("audit the tests") || JSON.stringify(req.system).includes("You audit")
            ? turn(toolUse("report_findings", { summary: "The test checks the sum.", findings: [] }))
            : turn(
                toolUse("report_findings", {
                  summary: "One blocking problem.",
                  findings: [
                    {
                      severity: "high",
                      file: "src/add.js",
                      line: 2,
                      title: "No input validation",
                      detail: "add() accepts strings and concatenates them.",
                      blocking: true,
                    },
                  ],
                }),
              ),
      ],
      remediate: [
        turn(toolUse("Read", { file_path: "src/add.js" })),
        turn(
          toolUse("Edit", {
            file_path: "src/add.js",
            old_string: "  return a + b;",
            new_string:
              '  if (typeof a !== "number" || typeof b !== "number") throw new TypeError("numbers only");\n  return a + b;',
          }),
        ),
        turn(
          toolUse("report_remediation", {
            summary: "add() now rejects non-numbers.",
            answers: [{ finding: 1, status: "fixed", note: "Throws TypeError for non-numbers." }],
          }),
        ),
      ],
    },
  });
}, 120_000);

afterAll(async () => {
  await model?.stop();
  await gh?.stop();
});

const baseEnv = (stage: string, number: number, title: string, body: string, extra: Record<string, string> = {}) =>
  stageEnv({ gh, model }, stage, `calc-${number}-abcd1234`, ticketFor(REPO, number, title, body), extra);

describe("triage", () => {
  it("clear: posts one spec comment, returns the spec, and is idempotent on re-run", async () => {
    const env = baseEnv("triage", 1, TITLE, "add(2, 3) gives -1. It should add.");
    const run = await runRunner(env);
    expect(run.stderr).not.toContain("sk-ant-test-key");
    expect(run.code, run.stderr).toBe(0);
    expect(run.result).toMatchObject({
      stage: "triage",
      outcome: "succeeded",
      triage: { verdict: "clear", riskTier: "low" },
      turns: 2,
    });
    expect(run.result?.summary).toContain("add(2, 3) returns 5");
    expect(run.result?.costUsd).toBeGreaterThan(0);
    const again = await runRunner(env);
    expect(again.code).toBe(0);
    const specs = gh.comments(REPO, 1).filter((c) => c.body.includes("stage=triage"));
    expect(specs).toHaveLength(1);
    expect(specs[0]?.body).toContain("**Acceptance criteria**");
    expect(gh.labels(REPO, 1)).not.toContain("needs-clarification");
  });

  it("unclear: asks one question with the default assumption and labels the issue", async () => {
    // Someone quoting the hidden marker must not make the runner think it already asked.
    gh.addComment(REPO, 2, {
      user: "mallory",
      body: "<!-- agentfactory:run=calc-2-abcd1234 stage=triage attempt=1 kind=question -->",
    });
    const run = await runRunner(baseEnv("triage", 2, "Make it faster", "Improve performance."));
    expect(run.code, run.stderr).toBe(0);
    expect(run.result?.triage).toMatchObject({
      verdict: "unclear",
      question: expect.stringContaining("Which operation"),
    });
    const comments = gh.comments(REPO, 2).filter((c) => c.user.login !== "mallory");
    expect(comments).toHaveLength(1);
    expect(comments[0]?.body).toMatch(/\*\*Question:\*\* Which operation/);
    expect(comments[0]?.body).toMatch(/I will assume:\*\* Speed up add\(\)/);
    expect(gh.labels(REPO, 2)).toContain("needs-clarification");
  });
});

describe("write", () => {
  it("fixes the bug, passes the test gate, pushes agent/1-… and opens a draft PR with stats", async () => {
    const env = baseEnv("write", 1, TITLE, "add(2, 3) gives -1.", {
      AGENTFACTORY_CONTEXT: JSON.stringify({ clarifications: [], triageSpec: "Fix the operator in src/add.js" }),
    });
    const run = await runRunner(env);
    expect(run.code, run.stderr).toBe(0);
    const branch = "agent/1-add-returns-the-wrong-result";
    expect(run.result).toMatchObject({
      stage: "write",
      outcome: "succeeded",
      turns: 4,
      write: { branch, prNumber: expect.any(Number) },
    });
    expect(await gh.readFile(REPO, branch, "src/add.js")).toContain("return a + b;");
    expect(await gh.branchSha(REPO, branch)).toBe(run.result?.write?.headSha);
    const pulls = await gh.pulls(REPO);
    expect(pulls).toHaveLength(1);
    const pr = pulls[0]!;
    expect(pr.draft).toBe(true);
    expect(pr.body).toContain("Closes #1");
    expect(pr.body).toMatch(/\| Write \| 1 \| `claude-sonnet-4-6` \| \$0\.\d{4} \|/);
    expect(pr.body).not.toMatch(/\| Plan \|/);
    expect(pr.body).not.toContain("sk-ant-test-key");

    // A re-run after a crash reuses the branch and the open PR instead of failing on the duplicate.
    const again = await runRunner(env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.result?.write?.prNumber).toBe(pr.number);
    expect(await gh.pulls(REPO)).toHaveLength(1);
  });
});

describe("review and remediate", () => {
  let pr: { number: number; branch: string };

  it("review: tier from the base branch policy, required checks, one PR review with embedded findings", async () => {
    const pulls = await gh.pulls(REPO);
    pr = { number: pulls[0]!.number, branch: pulls[0]!.head.ref };
    const context = {
      clarifications: [],
      triageSpec: "add(2, 3) returns 5",
      pullRequest: { ...pr, url: "", headSha: "" },
    };
    const run = await runRunner(
      baseEnv("review", 1, TITLE, "add(2, 3) gives -1.", { AGENTFACTORY_CONTEXT: JSON.stringify(context) }),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.result?.review).toEqual({
      riskTier: "medium",
      checks: { "risk-policy-gate": "success", tests: "success", "claude-review": "failure", "spec-audit": "success" },
      findings: { total: 1, blocking: 1 },
    });
    expect(run.result?.turns).toBe(2);
    const reviews = gh.reviews(REPO, pr.number);
    expect(reviews).toHaveLength(1);
    expect(reviews[0]?.body).toMatch(/Risk tier: `medium`/);
    expect(reviews[0]?.body).toMatch(/BLOCKING.*No input validation/);
    expect(gh.reviewComments(REPO, pr.number)[0]).toMatchObject({ path: "src/add.js", line: 2 });
  });

  it("remediate: fixes the finding on the same branch, tests pass, pushes, answers, labels the round", async () => {
    const context = { clarifications: [], pullRequest: { ...pr, url: "", headSha: "" }, round: 1 };
    const before = await gh.branchSha(REPO, pr.branch);
    const run = await runRunner(
      baseEnv("remediate", 1, TITLE, "add(2, 3) gives -1.", { AGENTFACTORY_CONTEXT: JSON.stringify(context) }),
    );
    expect(run.code, run.stderr).toBe(0);
    const after = await gh.branchSha(REPO, pr.branch);
    expect(after).not.toBe(before);
    expect(run.result?.remediate?.headSha).toBe(after);
    expect(await gh.readFile(REPO, pr.branch, "src/add.js")).toContain("numbers only");
    const answers = gh.comments(REPO, pr.number).filter((c) => c.body.includes("stage=remediate"));
    expect(answers).toHaveLength(1);
    expect(answers[0]?.body).toMatch(/No input validation[\s\S]*fixed: Throws TypeError/);
    expect(gh.labels(REPO, pr.number)).toContain("remediation-round-1");
  });
});

describe("sandbox", () => {
  it("the Bash tool cannot see the runner's secrets (env, /proc, HOME); a failed stage still writes its result", async () => {
    const env = baseEnv("write", 3, PROBE, "Look around.", { AGENTFACTORY_MAX_STOP_BLOCKS: "1" });
    const run = await runRunner(env);
    const probe = model.requests
      .filter((r) => r.stage === "write" && r.status === 200 && JSON.stringify(r.body.messages[0]).includes(PROBE))
      .flatMap((r) => lastToolResults(r.body))
      .find((t) => t.content.includes("probe-done"));
    // The runner's own environment block is readable (same user), yet holds none of its secrets.
    expect(probe?.content).toMatch(/^runner-visible=[1-9]\d*\n0\n0\n0\nprobe-done/);
    expect(JSON.stringify(model.requests)).not.toContain(env.GITHUB_TOKEN);
    expect(run.code).toBe(1);
    expect(run.result).toMatchObject({
      stage: "write",
      outcome: "failed",
      summary: expect.stringContaining("The tests must pass"),
    });
    expect(run.stderr).not.toContain(env.GITHUB_TOKEN);
    // The unfinished work is kept on the agent branch (no PR) for a retry or a person.
    expect(run.result?.summary).toContain("unfinished work pushed to agent/3-probe-the-sandbox");
    expect(await gh.readFile(REPO, "agent/3-probe-the-sandbox", "probe.sh")).toContain("probe-done");
    expect((await gh.pulls(REPO)).filter((p) => p.head.ref === "agent/3-probe-the-sandbox")).toHaveLength(0);
  });
});
