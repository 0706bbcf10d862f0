import fs from "node:fs";
import path from "node:path";
import { addBilled, zeroBilled } from "../../../core/pricing.ts";
import { redactDeep } from "../../../core/redact.ts";
import {
  parseRiskPolicy,
  type RiskCheck,
  type RiskDecision,
  type RiskPolicy,
  riskTier,
} from "../../../core/risk-policy.ts";
import type { LoopResult } from "../agent/loop.ts";
import { toTokens } from "../agent/usage.ts";
import { type Git, GitError } from "../git.ts";
import { pathGate } from "../hooks/gates.ts";
import { stageMarker } from "../markers.ts";
import { exitStatus } from "../sandbox/executor.ts";
import { detectTestCommand } from "../tests-command.ts";
import { READ_ONLY_TOOLS, toolEnv } from "../tools/index.ts";
import { truncate } from "../tools/types.ts";
import {
  asData,
  baseGuidance,
  baseHooks,
  openRepo,
  repoDir,
  runSession,
  type StageDeps,
  type StageOutput,
} from "./common.ts";
import { embedFindings, embedVerdict, FindingsReport, findingLine, type SourcedFinding } from "./findings.ts";
import { reviewSystem } from "./prompts.ts";

/** Used when the base branch has no risk-policy.json: everything is low and gets tests and a review. */
export const DEFAULT_POLICY: RiskPolicy = parseRiskPolicy({
  version: "1",
  riskTierRules: { low: [] },
  mergePolicy: {
    low: { requiredChecks: ["risk-policy-gate", "tests", "claude-review"], humanApprovalRequired: false },
  },
});

type CheckState = "success" | "failure" | "skipped";
const TIER_ICON = { high: "🔴", medium: "🟡", low: "🟢" } as const;

/** The policy from the base branch, so a pull request cannot lower its own tier. */
export async function loadPolicy(deps: StageDeps, base: string): Promise<RiskPolicy> {
  const text = await deps.forge.fileAt("risk-policy.json", base);
  return text === undefined ? DEFAULT_POLICY : parseRiskPolicy(JSON.parse(text));
}

/** What the review is made from: taken from a runner-owned checkout before any of the PR's code runs. */
interface Snapshot {
  git: Git;
  /** The pristine checkout (umask 022, runner-owned): the reviewer's cwd, never where PR code runs. */
  dir: string;
  /** A writable copy for the PR's tests and the repository's hooks, with `.claude/` from the base. */
  testsDir: string;
  sha: string;
  diff: string;
  files: string[];
}

/**
 * Checks out the PR head the forge reports into the pristine directory, takes the diff and the changed
 * files from it, then makes the writable copy the tests run in. Nothing of the PR has run yet.
 */
async function snapshot(deps: StageDeps, pr: { branch: string; base: string; headSha: string }): Promise<Snapshot> {
  const { config } = deps;
  const dir = repoDir(config);
  const testsDir = path.join(config.workspace, "tests");
  const umask = process.umask(0o022);
  try {
    fs.rmSync(dir, { recursive: true, force: true });
    const git = await openRepo(deps, { workTree: dir });
    const fetched = (await git.hasRef(`origin/${pr.branch}`))
      ? (await git.run(["rev-parse", `origin/${pr.branch}`], { workTree: null })).trim()
      : undefined;
    if (fetched !== pr.headSha)
      throw new GitError(
        `the pull request's head is ${pr.headSha} on the forge but ${pr.branch} is ${fetched ?? "missing"}; it moved during review`,
      );
    await git.checkout(pr.branch, pr.headSha);
    const diff = await git.run(["diff", "--no-ext-diff", "--no-textconv", `origin/${pr.base}...${pr.headSha}`], {
      workTree: null,
    });
    const files = await git.changedFiles(`origin/${pr.base}`, pr.headSha);

    // The copy is writable by whoever runs the tests (the agent's uid may differ from the runner's).
    process.umask(0);
    fs.rmSync(testsDir, { recursive: true, force: true });
    const copy = git.withWorkTree(testsDir);
    await copy.writeFiles(pr.headSha);
    fs.rmSync(path.join(testsDir, ".claude"), { recursive: true, force: true });
    await copy.writeFiles(`origin/${pr.base}`, ".claude");
    await copy.prepareAgentRepo(pr.branch);
    return { git, dir, testsDir, sha: pr.headSha, diff, files };
  } finally {
    process.umask(umask);
  }
}

/**
 * Review: risk tier from the changed files, then only the checks the tier requires (gate, tests,
 * LLM review, spec audit); findings posted as one PR review with the findings embedded for remediation.
 * The diff and the files the reviewer reads come from a checkout made before the PR's tests run, and
 * the tests run in a separate copy, so PR code cannot change what is reviewed.
 */
export async function review(deps: StageDeps): Promise<StageOutput> {
  const started = Date.now();
  const { config, forge } = deps;
  const ref = config.context.pullRequest;
  if (!ref)
    return {
      stage: "review",
      outcome: "failed",
      model: config.model,
      summary: "no pull request in AGENTFACTORY_CONTEXT",
    };
  const pr = await forge.pull(ref.number);
  const policy = await loadPolicy(deps, pr.base);
  const apiFiles = await forge.pullFiles(pr.number);
  const first = riskTier(apiFiles, policy);
  const wants = (d: RiskDecision) =>
    !d.blocked && d.requiredChecks.some((c) => c === "tests" || c === "claude-review" || c === "spec-audit");
  const snap = wants(first) ? await snapshot(deps, pr) : undefined;
  // The forge's list and git's agree unless the PR moved; the union can only raise the tier.
  const files = snap ? [...new Set([...apiFiles, ...snap.files])] : apiFiles;
  const decision = snap ? riskTier(files, policy) : first;
  const checks: Record<string, CheckState> = {};
  const findings: SourcedFinding[] = [];
  const loops: LoopResult[] = [];
  const required = new Set<RiskCheck>(decision.requiredChecks);
  required.add("risk-policy-gate");

  checks["risk-policy-gate"] = decision.blocked ? "failure" : "success";
  for (const b of decision.blockedBy)
    findings.push({
      source: "risk-policy-gate",
      severity: "critical",
      file: b.file,
      title: "Blocked path",
      detail: `${b.pattern}: ${b.reason}`,
      blocking: true,
    });

  const runnable = !decision.blocked && snap !== undefined;
  const dir = snap?.dir ?? repoDir(config);

  if (required.has("tests") && runnable) {
    const command = detectTestCommand(snap.dir, config.testCommand);
    if (!command) checks.tests = "skipped";
    else {
      const r = await deps.executor.run({
        command,
        cwd: snap.testsDir,
        env: toolEnv(deps.baseEnv, snap.testsDir),
        timeoutMs: config.testTimeoutMs,
      });
      checks.tests = exitStatus(r) === 0 && !r.timedOut ? "success" : "failure";
      if (checks.tests === "failure")
        findings.push({
          source: "tests",
          severity: "high",
          title: `\`${command}\` fails`,
          detail: `\n\n\`\`\`\n${truncate(deps.redact(r.output), 3000)}\n\`\`\``,
          blocking: true,
        });
    }
  } else checks.tests = "skipped";

  const diff = snap ? truncate(deps.redact(snap.diff), 60_000) : "";
  const repoHooks = snap ? await baseHooks(deps, snap.git, pr.base) : {};
  for (const kind of ["claude-review", "spec-audit"] as const) {
    if (!required.has(kind) || !runnable) {
      checks[kind] = "skipped";
      continue;
    }
    const loop = await runSession(deps, {
      system: reviewSystem(kind),
      prompt: reviewPrompt(deps, kind, decision, files, diff, await baseGuidance(snap.git, pr.base)),
      tools: READ_ONLY_TOOLS,
      gates: [pathGate(dir)],
      cwd: dir,
      repoHooks,
      hooksCwd: snap.testsDir,
      finalTool: { name: "report_findings", description: "Report the review findings.", schema: FindingsReport },
    });
    loops.push(loop);
    if (loop.status !== "completed" || !loop.final) {
      checks[kind] = "failure";
      findings.push({
        source: kind,
        severity: "info",
        title: `${kind} did not finish`,
        detail: loop.message,
        blocking: false,
      });
      continue;
    }
    const found = loop.final.findings.map((f) => ({ ...f, source: kind }));
    findings.push(...found);
    checks[kind] = found.some((f) => f.blocking) ? "failure" : "success";
  }
  if (snap) findings.push(...(await tampering(snap)));

  const blocking = findings.filter((f) => f.blocking).length;
  // Redacted field by field before they are rendered and embedded, so the embedded JSON stays
  // parseable for remediation (the forge redacts the whole body again on the way out).
  const posted = redactDeep(findings, deps.redact);
  const body = reviewBody(decision, checks, posted);
  const inline = posted.filter((f) => f.file && f.line && files.includes(f.file));
  await forge.reviewOnce(pr.number, stageMarker(config.run, "review", config.attempt, "review"), {
    commitId: pr.headSha,
    // The operator takes the verdict from this review (the App's own), not from the termination message.
    body: `${body}\n${embedFindings(posted)}\n${embedVerdict({ riskTier: decision.tier, checks })}`,
    comments: inline.map((f) => ({
      path: f.file as string,
      line: f.line as number,
      body: `**${f.blocking ? "BLOCKING: " : ""}${f.title}**\n\n${f.detail}`,
    })),
  });
  const usage = loops.reduce((u, l) => addBilled(u, l.usage), zeroBilled());
  const unfinished = loops.find((l) => l.status === "budget_cap" || l.status === "model_error");
  const now = (await forge.pull(pr.number)).headSha;
  const summary =
    now !== pr.headSha
      ? `the pull request moved from ${pr.headSha} to ${now} during review; it must be reviewed again`
      : unfinished
        ? `review could not finish: ${unfinished.message}`
        : `risk ${decision.tier}; ${blocking} blocking of ${findings.length} findings`;
  return {
    stage: "review",
    outcome: unfinished || now !== pr.headSha ? "failed" : "succeeded",
    model: config.model,
    summary,
    usage: toTokens(usage),
    costUsd: loops.reduce((c, l) => c + l.costUsd, 0),
    turns: loops.reduce((t, l) => t + l.turns, 0),
    durationMs: Date.now() - started,
    review: { riskTier: decision.tier, checks, findings: { total: findings.length, blocking } },
  };
}

/** A blocking finding when anything changed the reviewed checkout after it was taken. */
async function tampering(snap: Snapshot): Promise<SourcedFinding[]> {
  const changes = await snap.git.workTreeChanges().catch((err: Error) => [err.message]);
  const head = await snap.git.head().catch(() => "unknown");
  if (!changes.length && head === snap.sha) return [];
  return [
    {
      source: "tests",
      severity: "critical",
      title: "The pull request's code changed the reviewed checkout",
      detail: `While its tests or hooks ran, files of the checkout the review was made from changed:\n${changes.slice(0, 20).join("\n")}`,
      blocking: true,
    },
  ];
}

function reviewPrompt(
  deps: StageDeps,
  kind: "claude-review" | "spec-audit",
  decision: RiskDecision,
  files: string[],
  diff: string,
  repoGuidance: string,
): string {
  const { ticket, context } = deps.config;
  const common = [
    `Risk tier: ${decision.tier}. Changed files:\n${files.map((f) => `- ${f}`).join("\n")}`,
    asData("diff", diff),
  ];
  if (kind === "claude-review")
    return [
      `Review this pull request on ${ticket.repo}.`,
      ...common,
      `The repository's guidance:\n${repoGuidance}`,
    ].join("\n\n");
  return [
    `Audit the tests of this pull request on ${ticket.repo} against what was asked.`,
    asData("ticket", `Title: ${ticket.title}\n\n${ticket.body || "(no description)"}`),
    context.triageSpec ? asData("spec", context.triageSpec) : "There is no triage spec; judge against the ticket.",
    ...common,
  ].join("\n\n");
}

/** The review body: tier, approval requirement, the checks that ran, and the findings. */
export function reviewBody(
  decision: RiskDecision,
  checks: Record<string, CheckState>,
  findings: SourcedFinding[],
): string {
  const icon = { success: "✅", failure: "❌", skipped: "⏭️" };
  const blocking = findings.filter((f) => f.blocking);
  return [
    `${TIER_ICON[decision.tier]} **Risk tier: \`${decision.tier}\`**${decision.blocked ? " — **blocked by policy**" : ""}`,
    decision.humanApprovalRequired ? "👤 Human approval is required for this tier." : "",
    "",
    "| Check | Result |",
    "|-------|--------|",
    ...Object.entries(checks).map(([name, state]) => `| ${name} | ${icon[state]} ${state} |`),
    "",
    blocking.length
      ? `🚫 **${blocking.length} blocking finding${blocking.length > 1 ? "s" : ""}**`
      : "✅ **No blocking findings**",
    ...(findings.length ? ["", ...findings.map(findingLine)] : []),
  ]
    .filter((l, i, all) => l !== "" || all[i - 1] !== "")
    .join("\n");
}
