import { z } from "zod";
import { FORGE_LABELS } from "../../../core/names.ts";
import { stageMarker } from "../markers.ts";
import { detectTestCommand } from "../tests-command.ts";
import { ALL_TOOLS } from "../tools/index.ts";
import {
  accounting,
  asData,
  baseHooks,
  changeGates,
  checkout,
  failed,
  guidance,
  repoDir,
  runSession,
  type StageDeps,
  type StageOutput,
} from "./common.ts";
import { extractFindings, findingLine, type SourcedFinding } from "./findings.ts";
import { remediateSystem } from "./prompts.ts";
import { commitMessage } from "./write.ts";

export const RemediationReport = z.object({
  summary: z.string().trim().min(1),
  answers: z.array(
    z.object({
      finding: z.number().int().positive().describe("The finding's number in the list"),
      status: z.enum(["fixed", "not_fixed", "disputed"]),
      note: z.string().trim().min(1).describe("What you did, or why not"),
    }),
  ),
});
export type RemediationReport = z.infer<typeof RemediationReport>;

/** The findings of the latest AgentFactory review on the PR (embedded JSON, never parsed from prose). */
export async function latestFindings(deps: StageDeps, pr: number): Promise<SourcedFinding[]> {
  const reviews = await deps.forge.reviews(pr);
  for (const r of [...reviews].reverse()) {
    if (!r.byApp || !r.body.includes("agentfactory:run=")) continue; // findings only from the App's own reviews
    const found = extractFindings(r.body);
    if (found) return found;
  }
  return [];
}

/** Remediate: fix the blocking findings on the PR's branch, tests must pass, push, answer each finding. */
export async function remediate(deps: StageDeps): Promise<StageOutput> {
  const started = Date.now();
  const { config, forge } = deps;
  const ref = config.context.pullRequest;
  if (!ref)
    return {
      stage: "remediate",
      outcome: "failed",
      model: config.model,
      summary: "no pull request in AGENTFACTORY_CONTEXT",
    };
  const round = config.context.round ?? 1;
  const findings = await latestFindings(deps, ref.number);
  const pr = await forge.pull(ref.number);
  if (pr.branch !== ref.branch)
    return failed(config, undefined, started, `pull request #${ref.number} is on ${pr.branch}, not ${ref.branch}`);
  const git = await checkout(deps, ref.branch);
  const dir = repoDir(config);
  const testCommand = detectTestCommand(dir, config.testCommand);
  const list = findings.length
    ? findings.map(findingLine).join("\n")
    : "(no findings were recorded: make the tests pass)";

  const loop = await runSession(deps, {
    system: remediateSystem(),
    prompt: [
      `This is remediation round ${round} for pull request #${ref.number} (branch ${ref.branch}) on ${config.ticket.repo}.`,
      asData("findings", list),
      asData("ticket", `Title: ${config.ticket.title}\n\n${config.ticket.body || "(no description)"}`),
      testCommand ? `The test command is \`${testCommand}\`.` : "",
      `The repository's guidance:\n${guidance(dir)}`,
    ]
      .filter(Boolean)
      .join("\n\n"),
    tools: ALL_TOOLS,
    gates: changeGates(deps, dir, ref.branch, testCommand),
    cwd: dir,
    repoHooks: await baseHooks(deps, git, pr.base),
    finalTool: {
      name: "report_remediation",
      description: "Report what you did about each finding.",
      schema: RemediationReport,
    },
  });
  if (loop.status !== "completed" || !loop.final)
    return failed(config, loop, started, `remediation did not finish (${loop.status}): ${loop.message}`);
  try {
    await git.commitAll(commitMessage(deps, `fix(agent): address review findings (round ${round})`));
    const headSha = await git.push(ref.branch);
    const answers = answerComment(findings, loop.final, round);
    await forge.commentOnce(ref.number, stageMarker(config.run, "remediate", config.attempt, "answers"), answers);
    await forge.ensureLabel(FORGE_LABELS.remediationRound(round), "FFA500", `AgentFactory remediation round ${round}`);
    await forge.addLabels(ref.number, [FORGE_LABELS.remediationRound(round)]);
    return {
      ...accounting(config, loop, started),
      outcome: "succeeded",
      summary: loop.final.summary,
      remediate: { headSha },
    };
  } catch (err) {
    return failed(config, loop, started, `remediation could not be pushed: ${deps.redact((err as Error).message)}`);
  }
}

/** One comment answering every finding: what was fixed, what was not and why. */
export function answerComment(findings: SourcedFinding[], report: RemediationReport, round: number): string {
  const icon = { fixed: "✅", not_fixed: "⚠️", disputed: "💬" };
  const lines = findings.map((f, i) => {
    const a = report.answers.find((x) => x.finding === i + 1);
    return `${findingLine(f, i)}\n   → ${a ? `${icon[a.status]} ${a.status.replace("_", " ")}: ${a.note}` : "⚠️ no answer"}`;
  });
  return [
    `🔧 **Remediation round ${round} pushed**`,
    "",
    report.summary,
    ...(lines.length ? ["", ...lines] : []),
    "",
    "_A new review follows._",
  ].join("\n");
}
