import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { costUsd, type PriceTable, parsePriceTable } from "../../core/pricing.ts";
import { billedUsage } from "./agent/usage.ts";
import { secretValues } from "./config.ts";
import { checkedOutBranch } from "./git.ts";
import type { Gate, HookInput } from "./hooks/engine.ts";
import { pathGate, safetyGate, testsGate } from "./hooks/gates.ts";
import { createRedactor } from "./hooks/redact.ts";
import { LocalExecutor } from "./sandbox/local.ts";
import { detectTestCommand } from "./tests-command.ts";
import { toolEnv } from "./tools/index.ts";

export const HOOK_GATES = ["safety", "paths", "redact", "budget", "tests"] as const;
export type HookGateName = (typeof HOOK_GATES)[number];

const USAGE = `usage: agentfactory-hook <${HOOK_GATES.join("|")}>
Reads a Claude Code hook input (JSON) on stdin. Exit 0 allows; exit 2 blocks and the reason is on stderr.
  safety  PreToolUse (Bash): destructive commands, secrets, curl|sh, pushes other than the agent branch
          (AGENTFACTORY_BRANCH, default any agent/* branch)
  paths   PreToolUse (Read|Write|Edit|Glob|Grep): stays in the project, no credential files
  redact  PostToolUse: flags tool output that contains secrets
  budget  PreToolUse: AGENTFACTORY_BUDGET_USD / AGENTFACTORY_MAX_TURNS against the session transcript
  tests   Stop: AGENTFACTORY_TEST_COMMAND (or detected) must pass; gives up after AGENTFACTORY_MAX_STOP_BLOCKS (3)`;

/**
 * The image's hard gates as standalone Claude Code hook commands, so teams can use the same gates in
 * their own Claude Code setups: `"command": "agentfactory-hook safety"`.
 */
export async function hookCli(
  args: string[],
  io: { stdin?: string; env?: Record<string, string | undefined>; stderr?: (s: string) => void } = {},
): Promise<number> {
  const env = io.env ?? process.env;
  const err = io.stderr ?? ((s: string) => process.stderr.write(s));
  const name = args[0] as HookGateName | undefined;
  if (!name || !HOOK_GATES.includes(name)) {
    err(`${USAGE}\n`);
    return 1; // non-blocking error in Claude Code: a misconfigured hook never locks the session
  }
  let input: HookInput;
  try {
    input = JSON.parse(io.stdin ?? fs.readFileSync(0, "utf8")) as HookInput;
  } catch {
    err("agentfactory-hook: stdin is not hook JSON\n");
    return name === "safety" || name === "paths" ? 2 : 1; // fail closed for the gates that guard actions
  }
  const project = env.CLAUDE_PROJECT_DIR || input.cwd || process.cwd();
  const result = await gateFor(name, project, env).check(input);
  if (!result.block) return 0;
  err(`${result.reason}\n`);
  return 2;
}

function gateFor(name: HookGateName, project: string, env: Record<string, string | undefined>): Gate {
  switch (name) {
    case "safety":
      return safetyGate({
        workspace: project,
        branch: env.AGENTFACTORY_BRANCH || undefined,
        currentBranch: () => checkedOutBranch(project),
      });
    case "paths":
      return pathGate(project);
    case "redact":
      return redactGate(env);
    case "budget":
      return budgetGate(env);
    case "tests":
      return boundedTests(project, env);
  }
}

function redactGate(env: Record<string, string | undefined>): Gate {
  const redact = createRedactor(secretValues(env));
  return {
    name: "redact",
    event: "PostToolUse",
    check(input) {
      const text = JSON.stringify(input.tool_response ?? "");
      if (redact(text) === text) return { block: false };
      return {
        block: true,
        reason:
          "The tool output contained a secret (a token or key). Do not repeat, store, log or send it anywhere; continue without it.",
      };
    },
  };
}

/** Spend and turns from a Claude Code transcript (one line per content block; usage repeats per message id). */
export function transcriptSpend(file: string, prices: PriceTable = {}): { costUsd: number; turns: number } {
  if (!file || !fs.existsSync(file)) return { costUsd: 0, turns: 0 };
  const seen = new Set<string>();
  let cost = 0;
  let turns = 0;
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    let entry: { type?: string; message?: { id?: string; model?: string; usage?: Parameters<typeof billedUsage>[0] } };
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    const m = entry.message;
    if (entry.type !== "assistant" || !m?.usage) continue;
    const id = m.id ?? `line-${turns}-${seen.size}`;
    if (seen.has(id)) continue;
    seen.add(id);
    turns++;
    cost += costUsd(m.model ?? "default", billedUsage(m.usage, "5m"), prices);
  }
  return { costUsd: cost, turns };
}

function budgetGate(env: Record<string, string | undefined>): Gate {
  return {
    name: "budget",
    event: "PreToolUse",
    check(input) {
      const budget = Number(env.AGENTFACTORY_BUDGET_USD || Number.POSITIVE_INFINITY);
      const maxTurns = Number(env.AGENTFACTORY_MAX_TURNS || Number.POSITIVE_INFINITY);
      const spend = transcriptSpend(input.transcript_path, parsePriceTable(env.AGENTFACTORY_PRICES));
      if (spend.costUsd >= budget)
        return {
          block: true,
          reason: `Budget exhausted: $${spend.costUsd.toFixed(4)} of $${budget.toFixed(2)}. Stop and summarise your progress.`,
        };
      if (spend.turns >= maxTurns)
        return {
          block: true,
          reason: `Turn cap reached (${spend.turns} of ${maxTurns}). Stop and summarise your progress.`,
        };
      return { block: false };
    },
  };
}

/** The tests gate, bounded across invocations by a per-session counter (Claude Code runs a new process each time). */
function boundedTests(project: string, env: Record<string, string | undefined>): Gate {
  const limit = Number(env.AGENTFACTORY_MAX_STOP_BLOCKS || 3);
  const inner = testsGate({
    command: detectTestCommand(project, env.AGENTFACTORY_TEST_COMMAND),
    cwd: project,
    env: toolEnv(env, project),
    timeoutMs: Number(env.AGENTFACTORY_TEST_TIMEOUT_MS || 600_000),
    executor: new LocalExecutor(),
  });
  return {
    name: "tests",
    event: "Stop",
    async check(input) {
      const counter = path.join(
        os.tmpdir(),
        `agentfactory-stop-${String(input.session_id || "none").replace(/[^\w-]/g, "_")}`,
      );
      const blocked = Number(fs.existsSync(counter) ? fs.readFileSync(counter, "utf8") : 0);
      const result = await inner.check(input);
      if (!result.block) {
        fs.rmSync(counter, { force: true });
        return result;
      }
      if (blocked >= limit) return { block: false }; // give up: the session ends with failing tests
      fs.writeFileSync(counter, String(blocked + 1));
      return result;
    },
  };
}
