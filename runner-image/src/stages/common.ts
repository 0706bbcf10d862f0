import fs from "node:fs";
import path from "node:path";
import type { z } from "zod";
import type { StageResultInput } from "../../../core/result.ts";
import type { ModelClient } from "../agent/client.ts";
import { type FinalTool, type LoopResult, runLoop } from "../agent/loop.ts";
import { toTokens } from "../agent/usage.ts";
import type { RunnerConfig } from "../config.ts";
import type { Forge } from "../forge.ts";
import { checkedOutBranch, Git } from "../git.ts";
import { type Gate, HookEngine } from "../hooks/engine.ts";
import { pathGate, safetyGate, testDefinition, testsGate } from "../hooks/gates.ts";
import type { Redactor } from "../hooks/redact.ts";
import { type HookTable, parseRepoHooks } from "../hooks/settings.ts";
import type { Logger } from "../log.ts";
import type { Executor } from "../sandbox/executor.ts";
import { toolEnv } from "../tools/index.ts";
import type { Tool } from "../tools/types.ts";

/** Everything a stage needs from the outside, so tests can hand in their own. */
export interface StageDeps {
  config: RunnerConfig;
  client: ModelClient;
  forge: Forge;
  redact: Redactor;
  log: Logger;
  /** The runner's own environment (PATH, HOME…), from which the tools' scrubbed one is built. */
  baseEnv: Record<string, string | undefined>;
  /** Where every command the agent can influence runs (Bash, hook commands, tests): the sandbox in a pod. */
  executor: Executor;
}

export type StageOutput = StageResultInput;

/** Where the repository is checked out: `<workspace>/repo`. */
export function repoDir(config: RunnerConfig): string {
  return path.join(config.workspace, "repo");
}

/**
 * The runner's own git directory: under its HOME, outside the workspace, mode 0700. Authenticated and
 * state-changing git runs only here; the agent's `.git` in the workspace is a credential-less copy.
 */
export function privateGitDir(config: RunnerConfig): string {
  return path.join(config.home, ".agentfactory", "repo.git");
}

export function newGit(deps: StageDeps, workTree = repoDir(deps.config)): Git {
  return new Git({
    gitDir: privateGitDir(deps.config),
    workTree,
    serverUrl: deps.config.github.serverUrl,
    repo: deps.config.ticket.repo,
    token: deps.config.github.token,
    redact: deps.redact,
    path: deps.baseEnv.PATH,
  });
}

/**
 * Opens the private git directory and fetches the repository (a fresh directory also gets a fresh
 * work tree: nothing left in the workspace is trusted).
 */
export async function openRepo(
  deps: StageDeps,
  { shallow = false, branches, workTree }: { shallow?: boolean; branches?: string[]; workTree?: string } = {},
): Promise<Git> {
  const git = newGit(deps, workTree);
  if (await git.init()) fs.rmSync(git.workTree, { recursive: true, force: true });
  await git.fetch({ shallow, branches });
  return git;
}

/** Checks out `branch` of the ticket's repository into the workspace, with a fresh `.git` for the agent. */
export async function checkout(deps: StageDeps, branch: string, { shallow = false } = {}): Promise<Git> {
  const git = await openRepo(deps, { shallow, branches: shallow ? [branch] : undefined });
  await git.checkout(branch, `origin/${branch}`);
  await git.prepareAgentRepo(branch);
  return git;
}

/**
 * The repository's hooks as on the base branch (`.claude/settings.json`), in every stage: a branch
 * cannot switch off or replace the hooks it is checked by.
 */
export async function baseHooks(deps: StageDeps, git: Git, base: string): Promise<HookTable> {
  const text = await git.show(`origin/${base}`, ".claude/settings.json");
  return text === undefined ? {} : parseRepoHooks(text, (m) => deps.log("hooks", { warning: m }));
}

/** Reads a repository file for the prompt (bounded), or undefined when absent. */
export function repoFile(dir: string, rel: string, max = 12_000): string | undefined {
  const file = path.join(dir, rel);
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) return undefined;
  const text = fs.readFileSync(file, "utf8");
  return text.length > max ? `${text.slice(0, max)}\n… (truncated)` : text;
}

const GUIDANCE_FILES = ["CLAUDE.md", "ARCHITECTURE.md", ".claude/rules/patterns.md", ".claude/rules/anti-patterns.md"];

/** Paths the agent may not edit with the file tools: the repository's hooks and settings. */
export const AGENT_READ_ONLY = [".claude/settings.json", ".claude/settings.local.json", ".claude/hooks/"];

function renderGuidance(files: [string, string | undefined][]): string {
  const parts = files.flatMap(([f, text]) => (text === undefined ? [] : [`<file path="${f}">\n${text}\n</file>`]));
  return parts.length ? parts.join("\n\n") : "(the repository has no CLAUDE.md, ARCHITECTURE.md or learned rules)";
}

/** The repository's guidance files, each delimited, for the prompt. */
export function guidance(dir: string): string {
  return renderGuidance(GUIDANCE_FILES.map((f) => [f, repoFile(dir, f)]));
}

/** The guidance as on the base branch: a pull request cannot rewrite the rules it is reviewed by. */
export async function baseGuidance(git: Git, base: string, max = 12_000): Promise<string> {
  const files = await Promise.all(
    GUIDANCE_FILES.map(async (f): Promise<[string, string | undefined]> => {
      const text = await git.show(`origin/${base}`, f);
      return [f, text !== undefined && text.length > max ? `${text.slice(0, max)}\n… (truncated)` : text];
    }),
  );
  return renderGuidance(files);
}

/** Untrusted text, fenced so it cannot close its own delimiter. */
export function asData(tag: string, text: string): string {
  return `<${tag}>\n${text.replaceAll(`</${tag}>`, `<\\/${tag}>`)}\n</${tag}>`;
}

export interface SessionOptions<S extends z.ZodType> {
  system: string;
  prompt: string;
  tools: Tool[];
  gates: Gate[];
  cwd: string;
  /** The repository's hooks: from the base branch (see baseHooks). */
  repoHooks: HookTable;
  /** Where repository hooks run (CLAUDE_PROJECT_DIR); the tools' cwd when absent. */
  hooksCwd?: string;
  finalTool?: FinalTool<S>;
}

/** Runs the agent loop for a stage with the configured caps, hooks and scrubbed tool environment. */
export async function runSession<S extends z.ZodType>(
  deps: StageDeps,
  opts: SessionOptions<S>,
): Promise<LoopResult<z.infer<S>>> {
  const { config } = deps;
  const env = toolEnv(deps.baseEnv, opts.cwd);
  const transcriptPath = path.join(config.workspace, `.transcript-${config.stage}-${config.attempt}.jsonl`);
  const hooksCwd = opts.hooksCwd ?? opts.cwd;
  const hooks = new HookEngine({
    gates: opts.gates,
    repoHooks: opts.repoHooks,
    cwd: hooksCwd,
    env: hooksCwd === opts.cwd ? env : toolEnv(deps.baseEnv, hooksCwd),
    executor: deps.executor,
    redact: deps.redact,
    sessionId: `${config.run}-${config.stage}-${config.attempt}`,
    transcriptPath,
    log: deps.log,
  });
  return runLoop({
    client: deps.client,
    model: config.model,
    system: opts.system,
    tools: opts.tools,
    toolContext: { workspace: opts.cwd, env, bashTimeoutMs: config.bashTimeoutMs, executor: deps.executor },
    hooks,
    redact: deps.redact,
    prompt: opts.prompt,
    maxTurns: config.maxTurns,
    budgetUsd: config.budgetUsd,
    maxTokens: config.maxTokens,
    cacheTtl: config.cacheTtl,
    prices: config.prices,
    retry: { maxRetries: config.maxRetries, baseMs: config.retryBaseMs },
    maxStopBlocks: config.maxStopBlocks,
    finalTool: opts.finalTool,
    transcriptPath,
    log: deps.log,
  });
}

/** The common fields of a result from a loop's accounting. */
export function accounting(config: RunnerConfig, loop: LoopResult | undefined, startedAt: number) {
  return {
    stage: config.stage,
    model: config.model,
    usage: loop ? toTokens(loop.usage) : undefined,
    costUsd: loop?.costUsd ?? 0,
    turns: loop?.turns ?? 0,
    durationMs: Math.max(0, Math.round(Date.now() - startedAt)),
  };
}

/** A failed result with a readable reason. */
export function failed(
  config: RunnerConfig,
  loop: LoopResult | undefined,
  startedAt: number,
  summary: string,
): StageOutput {
  return {
    ...accounting(config, loop, startedAt),
    outcome: "failed",
    summary,
    ...(loop?.budgetRefused ? { budgetExhausted: true } : {}),
  };
}

/** Credential files the runner's providers may use; no command may touch them. */
export function protectedPaths(deps: StageDeps): string[] {
  const env = deps.baseEnv;
  return [env.GOOGLE_APPLICATION_CREDENTIALS, env.AWS_WEB_IDENTITY_TOKEN_FILE, env.AWS_SHARED_CREDENTIALS_FILE].filter(
    (p): p is string => !!p,
  );
}

/**
 * The hard gates of a stage that changes code (write, remediate): Bash safety confined to the agent
 * branch, no edits to the repository's hook settings, and the tests must pass before the agent stops.
 */
export function changeGates(deps: StageDeps, dir: string, branch: string, testCommand: string | undefined): Gate[] {
  return [
    safetyGate({
      workspace: dir,
      branch,
      currentBranch: () => checkedOutBranch(dir),
      protectedPaths: protectedPaths(deps),
    }),
    pathGate(dir, { readOnly: AGENT_READ_ONLY }),
    testsGate({
      command: testCommand,
      cwd: dir,
      env: toolEnv(deps.baseEnv, dir),
      timeoutMs: deps.config.testTimeoutMs,
      executor: deps.executor,
      definition: testDefinition(dir),
    }),
  ];
}
