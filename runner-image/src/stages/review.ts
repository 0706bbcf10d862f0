import { addBilled, zeroBilled } from "../../../core/pricing.ts";
import {
  parseRiskPolicy,
  type RiskCheck,
  type RiskDecision,
  type RiskPolicy,
  riskTier,
} from "../../../core/risk-policy.ts";
import type { LoopResult } from "../agent/loop.ts";
import { toTokens } from "../agent/usage.ts";
import { pathGate } from "../hooks/gates.ts";
import { stageMarker } from "../markers.ts";
import { detectTestCommand } from "../tests-command.ts";
import { runShell } from "../tools/bash.ts";
import { READ_ONLY_TOOLS, toolEnv } from "../tools/index.ts";
import { truncate } from "../tools/types.ts";
import {
  asData,
  baseGuidance,
  checkout,
  guidance,
  newGit,
  repoDir,
  runSession,
  type StageDeps,
  type StageOutput,
} from "./common.ts";
import { embedFindings, FindingsReport, findingLine, type SourcedFinding } from "./findings.ts";
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

/**
 * Review: risk tier from the changed files, then only the checks the tier requires (gate, tests,
 * LLM review, spec audit); findings posted as one PR review with the findings embedded for remediation.
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
  const files = await forge.pullFiles(pr.number);
  const decision = riskTier(files, policy);
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

  const runnable = !decision.blocked;
  const needsCheckout =
    runnable && (required.has("tests") || required.has("claude-review") || required.has("spec-audit"));
  if (needsCheckout) await checkout(deps, pr.branch);
  const dir = repoDir(config);
  const git = needsCheckout ? newGit(deps, dir) : undefined;

  if (required.has("tests") && runnable) {
    const command = detectTestCommand(dir, config.testCommand);
    if (!command) checks.tests = "skipped";
    else {
      const r = await runShell(command, { cwd: dir, env: toolEnv(deps.baseEnv, dir), timeoutMs: config.testTimeoutMs });
      checks.tests = r.code === 0 && !r.timedOut ? "success" : "failure";
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

  const diff = git ? truncate(deps.redact(await git.run(["diff", `origin/${pr.base}...HEAD`])), 60_000) : "";
  for (const kind of ["claude-review", "spec-audit"] as const) {
    if (!required.has(kind) || !runnable) {
      checks[kind] = "skipped";
      continue;
    }
    const loop = await runSession(deps, {
      system: reviewSystem(kind),
      prompt: reviewPrompt(deps, kind, decision, files, diff, git ? await baseGuidance(git, pr.base) : guidance(dir)),
      tools: READ_ONLY_TOOLS,
      gates: [pathGate(dir)],
      cwd: dir,
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

  const blocking = findings.filter((f) => f.blocking).length;
  const body = reviewBody(decision, checks, findings);
  const inline = findings.filter((f) => f.file && f.line && files.includes(f.file));
  await forge.reviewOnce(pr.number, stageMarker(config.run, "review", config.attempt, "review"), {
    commitId: pr.headSha,
    body: `${body}\n${embedFindings(findings)}`,
    comments: inline.map((f) => ({
      path: f.file as string,
      line: f.line as number,
      body: `**${f.blocking ? "BLOCKING: " : ""}${f.title}**\n\n${f.detail}`,
    })),
  });
  const usage = loops.reduce((u, l) => addBilled(u, l.usage), zeroBilled());
  const unfinished = loops.find((l) => l.status === "budget_cap" || l.status === "model_error");
  return {
    stage: "review",
    outcome: unfinished ? "failed" : "succeeded",
    model: config.model,
    summary: unfinished
      ? `review could not finish: ${unfinished.message}`
      : `risk ${decision.tier}; ${blocking} blocking of ${findings.length} findings`,
    usage: toTokens(usage),
    costUsd: loops.reduce((c, l) => c + l.costUsd, 0),
    turns: loops.reduce((t, l) => t + l.turns, 0),
    durationMs: Date.now() - started,
    review: { riskTier: decision.tier, checks, findings: { total: findings.length, blocking } },
  };
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
