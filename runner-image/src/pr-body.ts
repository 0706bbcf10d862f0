import type { AgentRunTicket } from "../../core/agentrun.ts";
import type { Tokens } from "../../core/usage.ts";
import { STATS_END, STATS_START } from "./markers.ts";

export interface StageStats {
  stage: string;
  attempt: number;
  model: string;
  costUsd: number;
  tokens: Tokens;
  turns: number;
  durationMs: number;
  outcome: string;
}

const TITLE: Record<string, string> = { triage: "Triage", write: "Write", review: "Review", remediate: "Remediate" };

/** Dollars with a leading zero and four decimals (`$0.0421`). */
export const usd = (n: number): string => `$${n.toFixed(4)}`;

/** The stats section: one row per stage that ran, with the total; same columns the operator renders. */
export function statsSection(rows: StageStats[]): string {
  const total = rows.reduce((sum, r) => sum + r.costUsd, 0);
  const lines = rows.map((r) => {
    const t = r.tokens;
    return `| ${TITLE[r.stage] ?? r.stage} | ${r.attempt} | \`${r.model}\` | ${usd(r.costUsd)} | ${t.input} / ${t.output} / ${t.cacheRead} / ${t.cacheWrite} | ${r.turns} | ${(r.durationMs / 1000).toFixed(1)}s | ${r.outcome} |`;
  });
  return [
    STATS_START,
    `**Agent Stats** (total: ${usd(total)})`,
    "",
    "| Stage | Attempt | Model | Cost | Tokens (in / out / cache read / cache write) | Turns | Duration | Outcome |",
    "|-------|---------|-------|------|----------------------------------------------|-------|----------|---------|",
    ...lines,
    STATS_END,
  ].join("\n");
}

/** The draft PR's body: what changed, the link that closes the ticket, provenance and the stats. */
export function prBody(args: {
  ticket: AgentRunTicket;
  summary: string;
  requestId: string;
  run: string;
  riskTier?: string;
  stats: StageStats[];
}): string {
  const { ticket } = args;
  const source =
    ticket.number > 0 ? `**Issue:** #${ticket.number}` : `**Work item:** ${ticket.workItem} (${ticket.url})`;
  return [
    "## Agent-written change",
    "",
    args.summary.trim() || "_No summary._",
    "",
    source,
    `**Run:** \`${args.run}\` · **Request:** \`${args.requestId || "-"}\`${args.riskTier ? ` · **Expected risk:** \`${args.riskTier}\`` : ""}`,
    ticket.number > 0 ? `\nCloses #${ticket.number}` : "",
    "",
    "Written by AgentFactory; the automated review follows. Check the change before merging.",
    "",
    "---",
    statsSection(args.stats),
    "",
  ].join("\n");
}
