/** Hidden markers identifying what a stage attempt posted, so a re-run finds and reuses it. */
export function stageMarker(run: string, stage: string, attempt: number, kind = "comment"): string {
  return `<!-- agentfactory:run=${run} stage=${stage} attempt=${attempt} kind=${kind} -->`;
}

/** The PR body's stats section markers (the operator replaces what is between them at finalization). */
export const STATS_START = "<!-- agentfactory:stats:start -->";
export const STATS_END = "<!-- agentfactory:stats:end -->";
