/**
 * `make bench-cost`: replays a recorded multi-turn write-stage session (bench/fixtures/cost) through the
 * runner's agent loop against the scripted Messages API, which bills prompt caching like the real API
 * (prefix hashing, breakpoints, 20-block lookback, 1024-token minimum, 5m/1h writes). The session runs
 * twice, without and with cache breakpoints; tools run for real on a copy of the fixture repository.
 * Prints the input-side cost of both and the saving; the last line is machine-readable. Exits 1 when
 * the saving is under the 70 % target.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import type { MessageParam } from "@anthropic-ai/sdk/resources/messages";
import { type BilledUsage, inputCostUsd, priceFor } from "../core/pricing.ts";
import { runLoop } from "../runner-image/src/agent/loop.ts";
import { billedUsage } from "../runner-image/src/agent/usage.ts";
import { HookEngine } from "../runner-image/src/hooks/engine.ts";
import { pathGate, safetyGate, testsGate } from "../runner-image/src/hooks/gates.ts";
import { createRedactor } from "../runner-image/src/hooks/redact.ts";
import { LocalExecutor } from "../runner-image/src/sandbox/local.ts";
import { guidance } from "../runner-image/src/stages/common.ts";
import { writeSystem } from "../runner-image/src/stages/prompts.ts";
import { ALL_TOOLS, toolEnv } from "../runner-image/src/tools/index.ts";
import { type ScriptedTurn, startModelSim } from "../test/world/anthropic/index.ts";

const FIXTURE = path.join(import.meta.dirname, "fixtures/cost");
const TARGET_PCT = 70;

interface Transcript {
  model: string;
  ticket: { title: string; body: string };
  turns: ScriptedTurn[];
}

const transcript = JSON.parse(fs.readFileSync(path.join(FIXTURE, "write-transcript.json"), "utf8")) as Transcript;

function workspace(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "af-bench-cost-"));
  fs.cpSync(path.join(FIXTURE, "repo"), dir, { recursive: true });
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: "bench",
    GIT_AUTHOR_EMAIL: "b@x",
    GIT_COMMITTER_NAME: "bench",
    GIT_COMMITTER_EMAIL: "b@x",
  };
  for (const args of [
    ["init", "-q", "-b", "main"],
    ["add", "-A"],
    ["commit", "-qm", "fixture"],
  ])
    execFileSync("git", args, { cwd: dir, env });
  return dir;
}

async function replay(caching: boolean) {
  const dir = workspace();
  const sim = await startModelSim({ scenario: { write: transcript.turns } });
  try {
    const client = new Anthropic({ apiKey: "bench", baseURL: sim.url, maxRetries: 0 });
    const env = toolEnv(process.env, dir);
    const redact = createRedactor([]);
    const executor = new LocalExecutor();
    const hooks = new HookEngine({
      gates: [
        safetyGate({ workspace: dir, branch: "agent/1-support-discount-codes" }),
        pathGate(dir),
        testsGate({ command: "npm test", cwd: dir, env, timeoutMs: 120_000, executor }),
      ],
      repoHooks: {},
      cwd: dir,
      env,
      executor,
      redact,
      sessionId: "bench",
    });
    const prompt = [
      "Implement this ticket.",
      `<ticket>\nTitle: ${transcript.ticket.title}\n\n${transcript.ticket.body}\n</ticket>`,
      "The test command is `npm test`.",
      `The repository's guidance:\n${guidance(dir)}`,
    ].join("\n\n");
    const result = await runLoop({
      client: { create: (p) => client.messages.create(p) },
      model: transcript.model,
      system: writeSystem(),
      tools: ALL_TOOLS,
      toolContext: { workspace: dir, env, bashTimeoutMs: 120_000, executor },
      hooks,
      redact,
      prompt,
      maxTurns: transcript.turns.length + 5,
      budgetUsd: 100,
      maxTokens: 8192,
      caching,
      retry: { maxRetries: 0, baseMs: 0 },
      maxStopBlocks: 2,
    });
    if (result.status !== "completed")
      throw new Error(`replay ${caching ? "cached" : "uncached"} ended ${result.status}: ${result.message}`);
    // A replay whose edits no longer apply (fixture drift) would measure a different session: refuse it.
    const failedEdits = failedFileTools(result.messages);
    if (failedEdits.length) throw new Error(`fixture drift: ${failedEdits.join("; ")}`);
    const perTurn = sim.requests.filter((r) => r.status === 200).map((r) => billedUsage(r.usage, "5m"));
    return { result, perTurn };
  } finally {
    await sim.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function failedFileTools(messages: MessageParam[]): string[] {
  const names = new Map<string, string>();
  const failures: string[] = [];
  for (const m of messages) {
    if (typeof m.content === "string") continue;
    for (const block of m.content) {
      if (block.type === "tool_use") names.set(block.id, block.name);
      if (block.type === "tool_result" && block.is_error && names.get(block.tool_use_id) !== "Bash")
        failures.push(`${names.get(block.tool_use_id)}: ${JSON.stringify(block.content).slice(0, 120)}`);
    }
  }
  return failures;
}

const fmt = (usd: number) => usd.toFixed(4);
const cost = (u: BilledUsage) => inputCostUsd(transcript.model, u);

const uncached = await replay(false);
const cached = await replay(true);
const price = priceFor(transcript.model);

console.log(`bench-cost: ${transcript.turns.length} recorded write-stage turns, model ${transcript.model}`);
const perMTok = (n: number) => `$${Number(n.toFixed(4))}`;
console.log(
  `prices per MTok: input ${perMTok(price.input)}, cache write 5m ${perMTok(price.cacheWrite5m)}, cache read ${perMTok(price.cacheRead)}`,
);
console.log("");
console.log("turn  uncached_in  uncached_$   cached_in  cache_read  cache_write  cached_$");
uncached.perTurn.forEach((u, i) => {
  const c = cached.perTurn[i];
  if (!c) return;
  const write = c.cacheWrite5m + c.cacheWrite1h;
  console.log(
    `${String(i + 1).padStart(4)}  ${String(u.input).padStart(11)}  ${fmt(cost(u)).padStart(10)}  ${String(c.input).padStart(10)}  ${String(c.cacheRead).padStart(10)}  ${String(write).padStart(11)}  ${fmt(cost(c)).padStart(8)}`,
  );
});
const costUncached = cost(uncached.result.usage);
const costCached = cost(cached.result.usage);
const saving = costUncached > 0 ? (1 - costCached / costUncached) * 100 : 0;
const u = cached.result.usage;
console.log("");
console.log(`uncached: ${uncached.result.usage.input} input tokens, input cost $${fmt(costUncached)}`);
console.log(
  `cached:   ${u.input} input + ${u.cacheRead} cache-read + ${u.cacheWrite5m + u.cacheWrite1h} cache-write tokens, input cost $${fmt(costCached)}`,
);
console.log(
  `target: at least ${TARGET_PCT} % lower input cost with caching: ${saving >= TARGET_PCT ? "met" : "MISSED"}`,
);
console.log(
  `result: turns=${cached.result.turns} cost_uncached_usd=${fmt(costUncached)} cost_cached_usd=${fmt(costCached)} saving_pct=${saving.toFixed(1)}`,
);
if (uncached.result.turns !== cached.result.turns) process.exitCode = 1;
if (saving < TARGET_PCT) process.exitCode = 1;
