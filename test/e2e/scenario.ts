/**
 * The walking-skeleton scenario: a tiny Node repository whose test fails because add() subtracts,
 * an issue asking for the fix, and the model's scripted turns for triage, write and review.
 */
import { type Scenario, text, toolUse, turn } from "../world/anthropic/index.ts";

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
