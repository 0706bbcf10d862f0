import { z } from "zod";
import { branchName, FORGE_LABELS } from "../../../core/names.ts";
import { RiskTier } from "../../../core/result.ts";
import { pathGate } from "../hooks/gates.ts";
import { stageMarker } from "../markers.ts";
import { READ_ONLY_TOOLS } from "../tools/index.ts";
import {
  accounting,
  asData,
  baseHooks,
  checkout,
  failed,
  guidance,
  repoDir,
  runSession,
  type StageDeps,
  type StageOutput,
} from "./common.ts";
import { triageSystem } from "./prompts.ts";

const text = z.string().trim().min(1);

export const TriageVerdict = z
  .object({
    verdict: z.enum(["clear", "unclear"]),
    summary: text.describe("The ticket restated in one or two sentences"),
    question: text.optional().describe("unclear: the one question to ask"),
    defaultAssumption: text.optional().describe("unclear: what you would assume if nobody answers"),
    why: text.optional().describe("unclear: why the answer changes the implementation"),
    plan: z.array(text).optional().describe("clear: implementation steps"),
    acceptanceCriteria: z.array(text).optional().describe("clear: testable criteria"),
    filesToChange: z.array(text).optional(),
    riskTier: RiskTier.optional().describe("clear: the expected risk tier"),
  })
  .superRefine((v, ctx) => {
    if (v.verdict === "unclear") {
      if (!v.question) ctx.addIssue({ code: "custom", path: ["question"], message: "required when unclear" });
      if (!v.defaultAssumption)
        ctx.addIssue({ code: "custom", path: ["defaultAssumption"], message: "required when unclear" });
    } else {
      if (!v.plan?.length) ctx.addIssue({ code: "custom", path: ["plan"], message: "required when clear" });
      if (!v.acceptanceCriteria?.length)
        ctx.addIssue({ code: "custom", path: ["acceptanceCriteria"], message: "required when clear" });
    }
  });
export type TriageVerdict = z.infer<typeof TriageVerdict>;

const NEEDS_CLARIFICATION = { color: "FBCA04", description: "AgentFactory needs an answer before it starts" };

/** The clarifying question, in the contract's three parts: question, default assumption, why. */
export function questionComment(v: TriageVerdict): string {
  return [
    "❓ **AgentFactory** has one question before it starts on this.",
    "",
    `**Question:** ${v.question}`,
    "",
    `**If nobody answers, I will assume:** ${v.defaultAssumption}`,
    ...(v.why ? ["", `**Why it matters:** ${v.why}`] : []),
    "",
    "---",
    "_Reply in a comment and I will triage again with your answer._",
  ].join("\n");
}

/** The spec the writer gets (AGENTFACTORY_CONTEXT.triageSpec) and the comment posted on the ticket. */
export function specText(v: TriageVerdict, branch: string): string {
  return [
    `**Summary:** ${v.summary}`,
    "",
    "**Plan**",
    ...(v.plan ?? []).map((step, i) => `${i + 1}. ${step}`),
    "",
    "**Acceptance criteria**",
    ...(v.acceptanceCriteria ?? []).map((c) => `- [ ] ${c}`),
    ...(v.filesToChange?.length
      ? ["", `**Files likely to change:** ${v.filesToChange.map((f) => `\`${f}\``).join(", ")}`]
      : []),
    ...(v.riskTier ? [`**Expected risk tier:** \`${v.riskTier}\``] : []),
    `**Branch:** \`${branch}\``,
  ].join("\n");
}

export function triagePrompt(deps: StageDeps, repoGuidance: string): string {
  const { ticket, context } = deps.config;
  const replies = context.clarifications.map((c) => `${c.author} (${c.at}):\n${c.body}`).join("\n\n---\n\n");
  return [
    `Triage this ticket for ${ticket.repo}.`,
    asData(
      "ticket",
      `Title: ${ticket.title}\nAuthor: ${ticket.author}\nURL: ${ticket.url}\n\n${ticket.body || "(no description)"}`,
    ),
    replies ? `Replies to earlier questions (newest last):\n${asData("clarifications", replies)}` : "",
    `The repository's guidance:\n${repoGuidance}`,
  ]
    .filter(Boolean)
    .join("\n\n");
}

/** Triage: clear (spec posted and returned) or unclear (one question posted, label added). */
export async function triage(deps: StageDeps): Promise<StageOutput> {
  const started = Date.now();
  const { config, forge } = deps;
  const base = config.baseBranch ?? (await forge.defaultBranch());
  const git = await checkout(deps, base, { shallow: true });
  const dir = repoDir(config);
  const loop = await runSession(deps, {
    system: triageSystem(),
    prompt: triagePrompt(deps, guidance(dir)),
    tools: READ_ONLY_TOOLS,
    gates: [pathGate(dir)],
    cwd: dir,
    repoHooks: await baseHooks(deps, git, base),
    finalTool: { name: "triage_verdict", description: "Report the triage verdict.", schema: TriageVerdict },
  });
  if (loop.status !== "completed" || !loop.final)
    return failed(config, loop, started, `triage did not finish: ${loop.message}`);
  try {
    return await report(deps, loop.final, accounting(config, loop, started));
  } catch (err) {
    return failed(config, loop, started, `triage could not post its verdict: ${deps.redact((err as Error).message)}`);
  }
}

/** Posts the verdict on the ticket (question or spec, idempotently) and builds the result. */
async function report(deps: StageDeps, v: TriageVerdict, base: ReturnType<typeof accounting>): Promise<StageOutput> {
  const { config, forge } = deps;
  const { ticket } = config;
  const branch = branchName(ticket);
  const hasIssue = ticket.source === "github" && ticket.number > 0;

  if (v.verdict === "unclear") {
    let commentId: number | undefined;
    if (hasIssue) {
      await forge.ensureLabel(
        FORGE_LABELS.needsClarification,
        NEEDS_CLARIFICATION.color,
        NEEDS_CLARIFICATION.description,
      );
      const posted = await forge.commentOnce(
        ticket.number,
        stageMarker(config.run, "triage", config.attempt, "question"),
        questionComment(v),
      );
      await forge.addLabels(ticket.number, [FORGE_LABELS.needsClarification]);
      commentId = posted.id;
    }
    return {
      ...base,
      outcome: "succeeded",
      summary: `unclear: ${v.question}`,
      triage: { verdict: "unclear", question: v.question, defaultAssumption: v.defaultAssumption, commentId },
    };
  }

  const spec = specText(v, branch);
  let commentId: number | undefined;
  if (hasIssue) {
    await forge.removeLabel(ticket.number, FORGE_LABELS.needsClarification);
    const body = `📋 **AgentFactory** is taking this on. The plan:\n\n${spec}\n\n_A draft pull request will follow._`;
    commentId = (
      await forge.commentOnce(ticket.number, stageMarker(config.run, "triage", config.attempt, "spec"), body)
    ).id;
  }
  return {
    ...base,
    outcome: "succeeded",
    summary: spec,
    triage: { verdict: "clear", riskTier: v.riskTier, commentId },
  };
}
