export type { MessagesRequest, Scenario, ScriptedBlock, ScriptedTurn, StopReason, TurnScript } from "./script.ts";
export { lastToolResults, stageOf, text, toolUse, turn } from "./script.ts";
export type { InjectedFailure, ModelSim, ModelSimOptions, Provider, RecordedRequest, UsageTotals } from "./server.ts";
export { startModelSim } from "./server.ts";
export type { Usage } from "./tokens.ts";
export { estimateTokens, PromptCache } from "./tokens.ts";
