import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { decodeResult, type StageResult } from "../../core/result.ts";

export const ROOT = path.resolve(import.meta.dirname, "../..");
const MAIN = path.join(ROOT, "runner-image/src/main.ts");

/** A tiny Node project whose `npm test` fails because add() subtracts. */
export const CALC_FILES: Record<string, string> = {
  "package.json": `${JSON.stringify({ name: "calc", version: "1.0.0", type: "module", scripts: { test: "node --test" } }, null, 2)}\n`,
  "src/add.js": "export function add(a, b) {\n  return a - b;\n}\n",
  "test/add.test.js":
    'import assert from "node:assert/strict";\nimport { test } from "node:test";\nimport { add } from "../src/add.js";\n\ntest("adds two numbers", () => {\n  assert.equal(add(2, 3), 5);\n});\n',
  "CLAUDE.md": "# calc\n\nPlain ES modules, tests with node:test.\n",
  "risk-policy.json": `${JSON.stringify(
    {
      version: "1",
      riskTierRules: { high: [".github/**"], medium: ["src/**"], low: ["**/*.md"] },
      mergePolicy: {
        high: {
          requiredChecks: ["risk-policy-gate", "tests", "claude-review", "spec-audit"],
          humanApprovalRequired: true,
        },
        medium: { requiredChecks: ["risk-policy-gate", "tests", "claude-review", "spec-audit"] },
        low: { requiredChecks: ["risk-policy-gate"] },
      },
      blockedPatterns: [{ pattern: "secrets/**", reason: "never committed by an agent" }],
    },
    null,
    2,
  )}\n`,
};

export const ticketFor = (repo: string, number: number, title: string, body: string) => ({
  source: "github" as const,
  id: `github:delivery-${number}`,
  workItem: `gh-${number}`,
  url: `http://example.invalid/${repo}/issues/${number}`,
  repo,
  number,
  title,
  body,
  author: "alice",
  labels: ["ai-agent"],
});

export const TEST_MODEL_KEY = "sk-ant-test-key-0123456789abcdef";

/** The environment the operator gives one stage's pod, pointed at the test world's simulators. */
export function stageEnv(
  world: {
    gh: { apiUrl: string; serverUrl: string; botLogin: string; mintToken(repo: string): string };
    model: { url: string };
  },
  stage: string,
  run: string,
  ticket: ReturnType<typeof ticketFor>,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    AGENTFACTORY_STAGE: stage,
    AGENTFACTORY_RUN: run,
    AGENTFACTORY_TICKET: JSON.stringify(ticket),
    AGENTFACTORY_MODEL: "claude-sonnet-4-6",
    AGENTFACTORY_BUDGET_USD: "1",
    GITHUB_API_URL: world.gh.apiUrl,
    GITHUB_SERVER_URL: world.gh.serverUrl,
    AGENTFACTORY_BOT_LOGIN: world.gh.botLogin,
    GITHUB_TOKEN: world.gh.mintToken(ticket.repo),
    ANTHROPIC_API_KEY: TEST_MODEL_KEY,
    ANTHROPIC_BASE_URL: world.model.url,
    ...extra,
  };
}

export interface RunnerRun {
  code: number;
  result?: StageResult;
  stderr: string;
  workspace: string;
}

/** Runs the runner as the pod would (`node --import tsx main.ts`), with a fresh workspace and HOME. */
export async function runRunner(env: Record<string, string>): Promise<RunnerRun> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "af-runner-"));
  const workspace = path.join(dir, "workspace");
  const home = path.join(dir, "home");
  await fs.mkdir(workspace);
  await fs.mkdir(home);
  const terminationLog = path.join(dir, "termination-log");
  // AF_RUNNER_BUNDLE=runner-image/dist/runner.mjs runs the esbuild bundle the image ships instead of the sources.
  const args = process.env.AF_RUNNER_BUNDLE
    ? [path.resolve(ROOT, process.env.AF_RUNNER_BUNDLE)]
    : ["--import", "tsx", MAIN];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: home,
      AGENTFACTORY_WORKSPACE: workspace,
      AGENTFACTORY_TERMINATION_LOG: terminationLog,
      AGENTFACTORY_RETRY_BASE_MS: "10",
      AGENTFACTORY_ATTEMPT: "1",
      AGENTFACTORY_REQUEST_ID: "req-test",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => {
    stderr += b.toString();
  });
  child.stdout.resume();
  const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? -1)));
  const message = await fs.readFile(terminationLog, "utf8").catch(() => "");
  const decoded = decodeResult(message);
  return { code, result: decoded.ok ? decoded.result : undefined, stderr, workspace };
}
