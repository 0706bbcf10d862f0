import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { type LoopOptions, runLoop } from "../../runner-image/src/agent/loop.ts";
import { type Gate, HookEngine } from "../../runner-image/src/hooks/engine.ts";
import { safetyGate, testDefinition, testsGate } from "../../runner-image/src/hooks/gates.ts";
import { createRedactor } from "../../runner-image/src/hooks/redact.ts";
import { loadRepoHooks } from "../../runner-image/src/hooks/settings.ts";
import { LocalExecutor } from "../../runner-image/src/sandbox/local.ts";
import { ALL_TOOLS, toolEnv } from "../../runner-image/src/tools/index.ts";
import {
  lastToolResults,
  type ModelSim,
  type Scenario,
  startModelSim,
  text,
  toolUse,
  turn,
} from "../world/anthropic/index.ts";

const SECRET = "ghs_SuperSecretInstallationToken0123456789";
const executor = new LocalExecutor();
let ws: string;
const sims: ModelSim[] = [];

beforeEach(async () => {
  ws = await fs.mkdtemp(path.join(os.tmpdir(), "af-loop-"));
  await fs.writeFile(path.join(ws, "a.txt"), "hello\n");
});
afterEach(() => fs.rm(ws, { recursive: true, force: true }));
afterAll(async () => {
  for (const s of sims) await s.stop();
});

async function sim(scenario: Scenario, extra: Partial<Parameters<typeof startModelSim>[0]> = {}) {
  const s = await startModelSim({ scenario, minCacheTokens: 100, ...extra });
  sims.push(s);
  return s;
}

function options(s: ModelSim, over: Partial<LoopOptions> & { gates?: Gate[] } = {}): LoopOptions {
  const client = new Anthropic({ apiKey: "test-key", baseURL: s.url, maxRetries: 0 });
  const env = toolEnv({ PATH: process.env.PATH, HOME: ws }, ws);
  const redact = createRedactor([SECRET]);
  return {
    client: { create: (p) => client.messages.create(p) },
    model: "claude-sonnet-4-6",
    system: "AgentFactory stage: write\n\nYou are a test agent.",
    tools: ALL_TOOLS,
    toolContext: { workspace: ws, env, bashTimeoutMs: 10_000, executor },
    hooks: new HookEngine({
      gates: over.gates ?? [],
      repoHooks: loadRepoHooks(ws),
      cwd: ws,
      env,
      executor,
      redact,
      sessionId: "s1",
    }),
    redact,
    prompt: "Do the task.",
    maxTurns: 10,
    budgetUsd: 1,
    maxTokens: 4096,
    retry: { maxRetries: 3, baseMs: 5 },
    maxStopBlocks: 3,
    ...over,
  };
}

/** The tool_result blocks the model received in request `n` (0-based). */
const resultsIn = (s: ModelSim, n: number) => lastToolResults(s.requests.filter((r) => r.status === 200)[n]!.body);

describe("agent loop against the scripted model", () => {
  it("runs tools, bills usage per turn and caches the growing prefix", async () => {
    const s = await sim({
      write: [
        turn(toolUse("Read", { file_path: "a.txt" })),
        turn(toolUse("Edit", { file_path: "a.txt", old_string: "hello", new_string: "hello world" })),
        turn(toolUse("Bash", { command: "cat a.txt" })),
        turn(text("Done.")),
      ],
    });
    const r = await runLoop(options(s));
    expect(r.status).toBe("completed");
    expect(r.turns).toBe(4);
    expect(r.toolCalls).toBe(3);
    expect(r.text).toBe("Done.");
    expect(await fs.readFile(path.join(ws, "a.txt"), "utf8")).toBe("hello world\n");
    expect(resultsIn(s, 3)[0]?.content).toContain("hello world");
    const totals = s.usageTotals("write");
    expect(r.usage.input).toBe(totals.input_tokens);
    expect(r.usage.cacheRead).toBe(totals.cache_read_input_tokens);
    expect(r.usage.cacheRead).toBeGreaterThan(0);
    expect(r.usage.cacheWrite5m).toBe(totals.ephemeral_5m_input_tokens);
    expect(r.costUsd).toBeGreaterThan(0);
    const body = s.requests[1]!.body;
    expect(JSON.stringify(body.system)).toContain('"cache_control":{"type":"ephemeral"}');
  });

  it("uses 1-hour cache writes when configured and prices them apart", async () => {
    const s = await sim({ write: [turn(toolUse("Read", { file_path: "a.txt" })), turn(text("ok"))] });
    const r = await runLoop(options(s, { cacheTtl: "1h" }));
    expect(r.usage.cacheWrite1h).toBeGreaterThan(0);
    expect(r.usage.cacheWrite5m).toBe(0);
  });

  it("returns a zod-validated structured result through the final tool, re-asking on invalid input", async () => {
    const s = await sim({
      triage: [
        turn(toolUse("verdict", { verdict: "unclear" })),
        turn(text("I think it is clear.")),
        turn(toolUse("verdict", { verdict: "clear" })),
      ],
    });
    const r = await runLoop(
      options(s, {
        system: "AgentFactory stage: triage\n\nTriage.",
        finalTool: {
          name: "verdict",
          description: "the verdict",
          schema: z
            .object({ verdict: z.enum(["clear", "unclear"]), question: z.string().optional() })
            .refine((v) => v.verdict === "clear" || !!v.question, {
              message: "unclear needs a question",
              path: ["question"],
            }),
        },
      }),
    );
    expect(r.status).toBe("completed");
    expect(r.final).toEqual({ verdict: "clear" });
    expect(resultsIn(s, 1)[0]).toMatchObject({ is_error: true, content: expect.stringContaining("Invalid input") });
    // After an end_turn without the verdict, the next request forces the tool.
    expect(s.requests[2]?.body.tool_choice).toEqual({ type: "tool", name: "verdict" });
  });

  it("blocks a dangerous Bash command with the safety gate and tells the model why", async () => {
    const s = await sim({
      write: [turn(toolUse("Bash", { command: "git push origin main" })), turn(text("ok"))],
    });
    const r = await runLoop(options(s, { gates: [safetyGate({ workspace: ws, branch: "agent/1-x" })] }));
    expect(r.status).toBe("completed");
    const res = resultsIn(s, 1)[0];
    expect(res?.is_error).toBe(true);
    expect(res?.content).toMatch(/safety gate: pushes to main/);
  });

  it("runs the repository's own Claude Code hooks: exit 2 blocks, JSON adds context, SessionStart exports env", async () => {
    await fs.mkdir(path.join(ws, ".claude"), { recursive: true });
    await fs.writeFile(
      path.join(ws, ".claude/settings.json"),
      JSON.stringify({
        hooks: {
          SessionStart: [
            { hooks: [{ type: "command", command: 'echo "export GREETING=hi-from-hook" >> "$CLAUDE_ENV_FILE"' }] },
          ],
          PreToolUse: [
            {
              matcher: "Edit|Write",
              hooks: [
                {
                  type: "command",
                  command: "grep -q generated/ && { echo 'generated/ is read-only' >&2; exit 2; }; exit 0",
                },
              ],
            },
          ],
          PostToolUse: [
            {
              matcher: "Bash",
              hooks: [
                {
                  type: "command",
                  command: `echo '{"hookSpecificOutput":{"hookEventName":"PostToolUse","additionalContext":"lint: 0 problems"}}'`,
                },
              ],
            },
          ],
        },
      }),
    );
    const s = await sim({
      write: [
        turn(toolUse("Write", { file_path: "generated/x.ts", content: "x" })),
        turn(toolUse("Bash", { command: 'echo "greeting=$GREETING"' })),
        turn(text("ok")),
      ],
    });
    const r = await runLoop(options(s));
    expect(r.status).toBe("completed");
    expect(resultsIn(s, 1)[0]).toMatchObject({ is_error: true, content: "generated/ is read-only" });
    await expect(fs.stat(path.join(ws, "generated/x.ts"))).rejects.toThrow();
    const bash = resultsIn(s, 2)[0]?.content ?? "";
    expect(bash).toContain("greeting=hi-from-hook");
    expect(bash).toContain("lint: 0 problems");
  });

  it("redacts secrets from tool output before the model sees them", async () => {
    await fs.writeFile(path.join(ws, "leak.txt"), `token=${SECRET}\nother=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n`);
    const s = await sim({ write: [turn(toolUse("Bash", { command: "cat leak.txt" })), turn(text("ok"))] });
    await runLoop(options(s));
    const sent = JSON.stringify(s.requests[1]?.body);
    expect(sent).not.toContain(SECRET);
    expect(sent).not.toContain("ghp_abcdefghijklmnopqrstuvwxyz0123456789");
    expect(sent).toContain("token=[REDACTED]");
  });

  it("stops at the budget cap", async () => {
    const s = await sim({
      write: [
        turn(toolUse("Read", { file_path: "a.txt" })),
        turn(toolUse("Read", { file_path: "a.txt" })),
        turn(text("ok")),
      ],
    });
    const r = await runLoop(
      options(s, { budgetUsd: 0.002, prices: { "claude-sonnet-4-6": { input: 3, output: 15 } } }),
    );
    expect(r.status).toBe("budget_cap");
    expect(r.turns).toBe(1);
    expect(r.costUsd).toBeGreaterThanOrEqual(0.002);
    expect(r.message).toMatch(/budget cap/);
  });

  it("stops at the turn cap", async () => {
    const s = await sim({ write: Array.from({ length: 5 }, () => turn(toolUse("Read", { file_path: "a.txt" }))) });
    const r = await runLoop(options(s, { maxTurns: 2 }));
    expect(r).toMatchObject({ status: "turn_cap", turns: 2 });
  });

  it("retries 429 and overloaded answers, then succeeds", async () => {
    const s = await sim(
      { write: [turn(text("ok"))] },
      {
        failures: [
          { status: 429, times: 1, retryAfter: 0 },
          { status: 529, times: 1 },
        ],
      },
    );
    const r = await runLoop(options(s));
    expect(r.status).toBe("completed");
    expect(s.requests.map((q) => q.status)).toEqual([429, 529, 200]);
  });

  it("fails clearly when retries are exhausted", async () => {
    const s = await sim({ write: [turn(text("ok"))] }, { failures: [{ status: 500, times: 10 }] });
    const r = await runLoop(options(s, { retry: { maxRetries: 2, baseMs: 1 } }));
    expect(r.status).toBe("model_error");
    expect(r.message).toMatch(/failed after 3 attempts/);
    expect(s.requests).toHaveLength(3);
  });

  it("keeps the model working while the tests fail, and fails after N blocked stops", async () => {
    const s = await sim({ write: [turn(text("done")), turn(text("done now")), turn(text("really done"))] });
    const tests = testsGate({
      command: "echo 'FAIL add: expected 5, got -1'; exit 1",
      cwd: ws,
      env: {},
      timeoutMs: 5000,
      executor,
    });
    const r = await runLoop(options(s, { gates: [tests], maxStopBlocks: 2 }));
    expect(r.status).toBe("stop_blocked");
    expect(r.turns).toBe(2);
    expect(r.message).toContain("expected 5, got -1");
    const second = JSON.stringify(s.requests[1]?.body.messages.at(-1));
    expect(second).toContain("The tests must pass");
  });

  it("finishes once the Stop gate passes", async () => {
    await fs.writeFile(path.join(ws, "ok"), "no");
    const s = await sim({
      write: [turn(text("done")), turn(toolUse("Write", { file_path: "ok", content: "yes" })), turn(text("fixed"))],
    });
    const tests = testsGate({
      command: "grep -q yes ok",
      cwd: ws,
      env: { PATH: process.env.PATH ?? "" },
      timeoutMs: 5000,
      executor,
    });
    const r = await runLoop(options(s, { gates: [tests] }));
    expect(r).toMatchObject({ status: "completed", turns: 3, text: "fixed" });
  });

  it("does not let the agent weaken the test script to pass the Stop gate", async () => {
    await fs.writeFile(path.join(ws, "package.json"), JSON.stringify({ scripts: { test: "exit 1" } }));
    const s = await sim({
      write: [
        turn(toolUse("Write", { file_path: "package.json", content: JSON.stringify({ scripts: { test: "exit 0" } }) })),
        turn(text("tests pass now")),
        turn(text("done")),
      ],
    });
    const env = { PATH: process.env.PATH ?? "" };
    const tests = testsGate({
      command: "npm test",
      cwd: ws,
      env,
      timeoutMs: 20_000,
      executor,
      definition: testDefinition(ws),
    });
    const r = await runLoop(options(s, { gates: [tests], maxStopBlocks: 2 }));
    expect(r.status).toBe("stop_blocked");
    expect(r.message).toContain("The test script in package.json was changed");
  });

  it("applies a hook's updatedInput, and the hard gates judge the rewritten call", async () => {
    await fs.mkdir(path.join(ws, ".claude"), { recursive: true });
    const rewrite = (command: string) =>
      `echo '${JSON.stringify({ hookSpecificOutput: { hookEventName: "PreToolUse", permissionDecision: "allow", updatedInput: { command } } })}'`;
    await fs.writeFile(
      path.join(ws, ".claude/settings.json"),
      JSON.stringify({
        hooks: {
          PreToolUse: [
            {
              matcher: "Bash",
              hooks: [
                {
                  type: "command",
                  command: `grep -q rewrite-me && ${rewrite("echo rewritten")} || ${rewrite("git push origin main")}`,
                },
              ],
            },
          ],
        },
      }),
    );
    const s = await sim({
      write: [
        turn(toolUse("Bash", { command: "echo rewrite-me" })),
        turn(toolUse("Bash", { command: "echo other" })),
        turn(text("ok")),
      ],
    });
    const r = await runLoop(options(s, { gates: [safetyGate({ workspace: ws, branch: "agent/1-x" })] }));
    expect(r.status).toBe("completed");
    expect(resultsIn(s, 1)[0]?.content).toMatch(/^rewritten/);
    expect(resultsIn(s, 2)[0]).toMatchObject({
      is_error: true,
      content: expect.stringMatching(/safety gate: pushes to main/),
    });
  });

  it("times out a hanging repository hook without blocking the call", async () => {
    await fs.mkdir(path.join(ws, ".claude"), { recursive: true });
    await fs.writeFile(
      path.join(ws, ".claude/settings.json"),
      JSON.stringify({
        hooks: {
          PreToolUse: [{ matcher: "Read", hooks: [{ type: "command", command: "sleep 30; exit 2", timeout: 1 }] }],
        },
      }),
    );
    const s = await sim({ write: [turn(toolUse("Read", { file_path: "a.txt" })), turn(text("ok"))] });
    const r = await runLoop(options(s));
    expect(r.status).toBe("completed");
    expect(resultsIn(s, 1)[0]).toMatchObject({ is_error: false, content: expect.stringContaining("hello") });
  });
});
