import type { AgentRun, AgentRunStatus } from "../core/agentrun.ts";

/** Hidden markers: finalization looks for them before posting, so a retried finalize never posts twice. */
export const MARKERS = {
  statsStart: "<!-- agentfactory:stats:start -->",
  statsEnd: "<!-- agentfactory:stats:end -->",
  escalation: (run: string) => `<!-- agentfactory:escalation run=${run} -->`,
  failure: (run: string) => `<!-- agentfactory:failure run=${run} -->`,
  clickup: (run: string, phase: string) => `[agentfactory:${run}:${phase}]`,
};

const usd = (n: number) => `$${n.toFixed(4)}`;
const STAGE_TITLE: Record<string, string> = {
  triage: "Triage",
  write: "Write",
  review: "Review",
  remediate: "Remediate",
};

/** The PR body's stats section: one row per stage attempt, with the run's total. */
export function statsTable(status: AgentRunStatus): string {
  const rows = status.stages.map((s) => {
    const t = s.tokens;
    return `| ${STAGE_TITLE[s.name] ?? s.name} | ${s.attempt} | \`${s.model ?? "-"}\` | ${usd(s.costUsd)} | ${t.input} / ${t.output} / ${t.cacheRead} / ${t.cacheWrite} | ${s.turns} | ${s.durationSeconds.toFixed(1)}s | ${s.outcome} |`;
  });
  return [
    MARKERS.statsStart,
    `**Agent Stats** (total: ${usd(status.costUsd)}, remediation rounds: ${status.round})`,
    "",
    "| Stage | Attempt | Model | Cost | Tokens (in / out / cache read / cache write) | Turns | Duration | Outcome |",
    "|-------|---------|-------|------|----------------------------------------------|-------|----------|---------|",
    ...rows,
    MARKERS.statsEnd,
  ].join("\n");
}

/** Replaces the stats section of a PR body (or appends it when the body has none). */
export function replaceStats(body: string | null | undefined, table: string): string {
  const text = body ?? "";
  const start = text.indexOf(MARKERS.statsStart);
  const end = text.indexOf(MARKERS.statsEnd);
  if (start >= 0 && end > start) return text.slice(0, start) + table + text.slice(end + MARKERS.statsEnd.length);
  return `${text.trimEnd()}\n\n---\n${table}\n`;
}

export function escalationComment(run: AgentRun, status: AgentRunStatus): string {
  const reason = status.conditions.find((c) => c.type === "Succeeded")?.reason ?? "Escalated";
  const head =
    reason === "BudgetExhausted"
      ? `🛑 **Budget exhausted** (${usd(status.costUsd)} of $${run.spec.budgetUsd})`
      : `🛑 **Auto-remediation limit reached (${status.round} rounds)**`;
  return [
    MARKERS.escalation(run.metadata.name),
    head,
    "",
    `${status.message ?? "Blocking issues remain."}`,
    "A human engineer needs to review and resolve the remaining findings.",
    "",
    "**Next steps:**",
    "1. Review the BLOCKING findings in the review comments above",
    "2. Fix them manually, or close this PR and open a new ticket",
    `3. Re-apply the \`ai-agent\` label on the ticket to start a fresh run`,
  ].join("\n");
}

export function failureComment(run: AgentRun, status: AgentRunStatus): string {
  return [
    MARKERS.failure(run.metadata.name),
    `❌ **AgentFactory** could not complete this ticket (run \`${run.metadata.name}\`).`,
    "",
    `Reason: ${status.message ?? "unknown"}`,
    "",
    "Re-apply the `ai-agent` label to try again.",
  ].join("\n");
}

export function slackEscalation(run: AgentRun, status: AgentRunStatus): string {
  const reason = status.conditions.find((c) => c.type === "Succeeded")?.reason ?? "Escalated";
  const pr = status.pullRequest;
  return [
    `🛑 *Agent PR needs human review* — ${reason === "BudgetExhausted" ? "budget exhausted" : "remediation limit reached"}`,
    pr
      ? `PR: <${pr.url}|#${pr.number}>`
      : `Ticket: <${run.spec.ticket.url}|${run.spec.ticket.repo}#${run.spec.ticket.number}>`,
    `Reason: \`${reason}\``,
    `${status.message ?? ""}`,
  ].join("\n");
}

export function clickupComment(run: AgentRun, status: AgentRunStatus): string {
  const pr = status.pullRequest?.url ?? "(no PR)";
  const tag = MARKERS.clickup(run.metadata.name, status.phase);
  switch (status.phase) {
    case "Ready":
      return `✅ PR ready for review: ${pr}\n\nRisk tier: \`${status.riskTier ?? "unknown"}\`\nAll automated checks passed.\n\n${tag}`;
    case "Escalated":
      return `🛑 PR requires human review: ${pr}\n\nReason: ${status.message ?? ""}\n\n${tag}`;
    default:
      return `❌ Agent run ${status.phase.toLowerCase()}: ${status.message ?? ""}\n\n${tag}`;
  }
}
