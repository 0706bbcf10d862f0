/** Hidden markers identifying what a stage attempt posted, so a re-run finds and reuses it (in core: the operator checks them). */
export { stageMarker } from "../../core/findings.ts";

/** The PR body's stats section markers (the operator replaces what is between them at finalization). */
export const STATS_START = "<!-- agentfactory:stats:start -->";
export const STATS_END = "<!-- agentfactory:stats:end -->";
