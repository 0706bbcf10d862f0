import { branchName } from "../../../core/names.ts";
import type { LoopResult } from "../agent/loop.ts";
import { toTokens } from "../agent/usage.ts";
import type { Git } from "../git.ts";
import { prBody } from "../pr-body.ts";
import { detectTestCommand } from "../tests-command.ts";
import { ALL_TOOLS } from "../tools/index.ts";
import {
  accounting,
  asData,
  baseHooks,
  changeGates,
  failed,
  guidance,
  openRepo,
  repoDir,
  runSession,
  type StageDeps,
  type StageOutput,
} from "./common.ts";
import { writeSystem } from "./prompts.ts";

/** `feat(agent): <title>` with trailers naming the work item, the request and the run. */
export function commitMessage(deps: StageDeps, subject: string): string {
  const { ticket, requestId, run } = deps.config;
  return [
    subject,
    "",
    `Work-Item: ${ticket.workItem}`,
    ...(ticket.number > 0 ? [`Refs: #${ticket.number}`] : []),
    `Request-Id: ${requestId || "-"}`,
    `AgentFactory-Run: ${run}`,
  ].join("\n");
}

/**
 * Fetches the repository into the runner's git directory and puts HEAD on the agent branch: the
 * pushed branch when a previous attempt got that far (its work is kept, never deleted), else a new
 * branch from the base. The agent gets its own credential-less `.git` in the workspace.
 */
export async function prepareBranch(deps: StageDeps, base: string, branch: string): Promise<Git> {
  const git = await openRepo(deps);
  const start = (await git.hasRef(`origin/${branch}`)) ? `origin/${branch}` : `origin/${base}`;
  await git.checkout(branch, start);
  await git.prepareAgentRepo(branch);
  return git;
}

export function writePrompt(deps: StageDeps, repoGuidance: string, testCommand: string | undefined): string {
  const { ticket, context } = deps.config;
  const spec = context.triageSpec
    ? `The triage spec (plan and acceptance criteria):\n${asData("spec", context.triageSpec)}`
    : "There is no triage spec: work from the ticket.";
  const replies = context.clarifications.map((c) => `${c.author}: ${c.body}`).join("\n---\n");
  return [
    `Implement this ticket in ${ticket.repo}.`,
    asData("ticket", `Title: ${ticket.title}\n\n${ticket.body || "(no description)"}`),
    replies ? asData("clarifications", replies) : "",
    spec,
    testCommand
      ? `The test command is \`${testCommand}\`.`
      : "No test command was found; add tests the repository's tooling can run.",
    `The repository's guidance:\n${repoGuidance}`,
  ]
    .filter(Boolean)
    .join("\n\n");
}

/** Write: implement on `agent/<n>-<slug>`, tests must pass, commit, push, open (or reuse) the draft PR. */
export async function write(deps: StageDeps): Promise<StageOutput> {
  const started = Date.now();
  const { config, forge } = deps;
  const { ticket } = config;
  const base = config.baseBranch ?? (await forge.defaultBranch());
  const branch = branchName(ticket);
  const git = await prepareBranch(deps, base, branch);
  const dir = repoDir(config);
  const testCommand = detectTestCommand(dir, config.testCommand);

  const loop = await runSession(deps, {
    system: writeSystem(),
    prompt: writePrompt(deps, guidance(dir), testCommand),
    tools: ALL_TOOLS,
    gates: changeGates(deps, dir, branch, testCommand),
    cwd: dir,
    repoHooks: await baseHooks(deps, git, base),
  });
  if (loop.status !== "completed") {
    const kept = await keepUnfinishedWork(deps, git, branch, loop.status);
    return failed(config, loop, started, `write did not finish (${loop.status})${kept}: ${loop.message}`);
  }

  try {
    return await publish(deps, { loop, started, base, branch, git });
  } catch (err) {
    return failed(config, loop, started, `write could not publish its change: ${deps.redact((err as Error).message)}`);
  }
}

/**
 * When the agent ran out of turns, budget or stops, its paid-for work is pushed to the agent branch
 * (no PR): a retry resumes from it and a person can look at it. Best effort.
 */
async function keepUnfinishedWork(deps: StageDeps, git: Git, branch: string, status: string): Promise<string> {
  if (status === "model_error" || status === "hook_stop") return "";
  try {
    const title = deps.config.ticket.title;
    if (!(await git.commitAll(commitMessage(deps, `wip(agent): ${title} (unfinished: ${status})`)))) return "";
    await git.push(branch);
    return `; unfinished work pushed to ${branch}`;
  } catch (err) {
    deps.log("could not keep unfinished work", { error: deps.redact((err as Error).message) });
    return "";
  }
}

/** Commit, push and the draft PR: everything after the agent finished. */
async function publish(
  deps: StageDeps,
  { loop, started, base, branch, git }: { loop: LoopResult; started: number; base: string; branch: string; git: Git },
): Promise<StageOutput> {
  const { config, forge } = deps;
  const { ticket } = config;
  await git.commitAll(commitMessage(deps, `feat(agent): ${ticket.title}`));
  const changed = await git.changedFiles(`origin/${base}`);
  if (!changed.length) return failed(config, loop, started, "the agent produced no changes");
  const headSha = await git.push(branch);

  const stats = [
    {
      stage: "write",
      attempt: config.attempt,
      model: config.model,
      costUsd: loop.costUsd,
      tokens: toTokens(loop.usage),
      turns: loop.turns,
      durationMs: Date.now() - started,
      outcome: "Succeeded",
    },
  ];
  const body = prBody({ ticket, summary: loop.text, requestId: config.requestId, run: config.run, stats });
  const pr = await forge.openDraftPull({ title: ticket.title, head: branch, base, body });
  if (pr.reused) await forge.updatePullBody(pr.number, body);
  deps.log("draft PR", { number: pr.number, reused: pr.reused, changed: changed.length });
  return {
    ...accounting(config, loop, started),
    outcome: "succeeded",
    summary: loop.text.slice(0, 1000),
    write: { prNumber: pr.number, prUrl: pr.url, branch, headSha },
  };
}
