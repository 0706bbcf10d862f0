/**
 * The walking-skeleton scenario: a tiny Node repository whose test fails because add() subtracts,
 * an issue asking for the fix, and the model's scripted turns for triage, write and review.
 */
import { type MessagesRequest, type Scenario, text, toolUse, turn } from "../world/anthropic/index.ts";

export const REPO = "acme/calc";
export const ISSUE = {
  title: "add() returns the wrong result",
  body: "`add(2, 3)` gives -1. It should return the sum of its arguments.",
  user: "alice",
};

export const CALC_FILES: Record<string, string> = {
  "package.json": `${JSON.stringify({ name: "calc", version: "1.0.0", type: "module", scripts: { test: "node --test" } }, null, 2)}\n`,
  "src/add.js": "export function add(a, b) {\n  return a - b;\n}\n",
  "test/add.test.js": [
    'import assert from "node:assert/strict";',
    'import { test } from "node:test";',
    'import { add } from "../src/add.js";',
    "",
    'test("adds two numbers", () => {',
    "  assert.equal(add(2, 3), 5);",
    "});",
    "",
  ].join("\n"),
  "CLAUDE.md": "# calc\n\nPlain ES modules; tests with node:test (`npm test`).\n",
};

export const SCENARIO: Scenario = {
  triage: [
    turn(text("Reading the code first."), toolUse("Read", { file_path: "src/add.js" })),
    turn(
      toolUse("triage_verdict", {
        verdict: "clear",
        summary: "add(a, b) subtracts instead of adding.",
        plan: ["Return a + b from add() in src/add.js", "Keep the existing test as the acceptance test"],
        acceptanceCriteria: ["add(2, 3) returns 5", "npm test passes"],
        filesToChange: ["src/add.js"],
        riskTier: "low",
      }),
    ),
  ],
  write: [
    turn(toolUse("Read", { file_path: "src/add.js" })),
    turn(toolUse("Edit", { file_path: "src/add.js", old_string: "return a - b;", new_string: "return a + b;" })),
    turn(toolUse("Bash", { command: "npm test 2>&1 | tail -5" })),
    turn(text("add() now returns the sum of its arguments; the existing test passes.")),
  ],
  review: [
    turn(
      toolUse("report_findings", {
        summary: "The one-line fix matches the issue and the test covers it.",
        findings: [],
      }),
    ),
  ],
};

/** What a repository's run does in {@link storyScenario}. */
export type Story = "fixes" | "stubborn" | "vague" | "slow";

const BLOCKING_REVIEW = {
  summary: "The fix is right but negative numbers are untested.",
  findings: [
    {
      severity: "high",
      file: "test/add.test.js",
      line: 6,
      title: "No test for negative numbers",
      detail: "The issue is about arithmetic; add a case with negative operands.",
      blocking: true,
    },
  ],
};
const CLEAN_REVIEW = { summary: "Looks right and is tested.", findings: [] };
const clearVerdict = (summary: string) =>
  toolUse("triage_verdict", {
    verdict: "clear",
    summary,
    plan: ["Fix add() in src/add.js"],
    acceptanceCriteria: ["npm test passes"],
    filesToChange: ["src/add.js"],
    riskTier: "low",
  });

/**
 * One scripted model for several repositories at once, each playing a story: `fixes` gets a blocking
 * finding in round 1 that remediation fixes (→ Ready); `stubborn` keeps blocking findings every round
 * (→ Escalated); `vague` is unclear until a reply arrives; `slow` has a write stage that sleeps (to be
 * cancelled). Repositories not listed follow the plain skeleton path. The story is found by the
 * repository named in the stage's first prompt.
 */
export function storyScenario(stories: Record<string, Story>): Scenario {
  const promptOf = (req: MessagesRequest) => JSON.stringify(req.messages[0] ?? "");
  const storyOf = (req: MessagesRequest) => Object.entries(stories).find(([repo]) => promptOf(req).includes(repo))?.[1];
  const roundOf = (req: MessagesRequest) => Number(/remediation round (\d+)/.exec(promptOf(req))?.[1] ?? 0);
  const write = SCENARIO.write ?? [];
  return {
    triage: [
      (req) => {
        if (storyOf(req) !== "vague") return turn(clearVerdict("add() must add."));
        if (promptOf(req).includes("Replies to earlier questions"))
          return turn(clearVerdict("Make add() correct; the reply says so."));
        return turn(
          toolUse("triage_verdict", {
            verdict: "unclear",
            summary: "Make something faster.",
            question: "Which operation is too slow: add() itself, or something else?",
            defaultAssumption: "The bug in add() is what makes results wrong; fix add().",
            why: "The ticket names no function.",
          }),
        );
      },
    ],
    write: [
      (req, at) =>
        storyOf(req) === "slow"
          ? turn(toolUse("Bash", { command: "sleep 60", timeout: 120000 }))
          : typeof write[0] === "function"
            ? write[0](req, at)
            : (write[0] as ReturnType<typeof turn>),
      ...write.slice(1),
    ],
    review: [
      (req) => {
        const story = storyOf(req);
        const fixed = promptOf(req).includes("add(-2, -3)");
        const blocking = story === "stubborn" || (story === "fixes" && !fixed);
        return turn(toolUse("report_findings", blocking ? BLOCKING_REVIEW : CLEAN_REVIEW));
      },
    ],
    remediate: [
      (req) =>
        storyOf(req) === "stubborn"
          ? turn(toolUse("Write", { file_path: "NOTES.md", content: `round ${roundOf(req)}: tried\n` }))
          : turn(
              toolUse("Edit", {
                file_path: "test/add.test.js",
                old_string: "  assert.equal(add(2, 3), 5);",
                new_string: "  assert.equal(add(2, 3), 5);\n  assert.equal(add(-2, -3), -5);",
              }),
            ),
      turn(toolUse("Bash", { command: "npm test 2>&1 | tail -3" })),
      turn(
        text("Added the negative case."),
        toolUse("report_remediation", {
          summary: "Addressed the finding.",
          answers: [{ finding: 1, status: "fixed", note: "test added" }],
        }),
      ),
    ],
  };
}
