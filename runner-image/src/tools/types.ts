import type { z } from "zod";
import type { Executor } from "../sandbox/executor.ts";

/** What a tool sees of the runner: the workspace, its limits, a scrubbed environment and where commands run. */
export interface ToolContext {
  workspace: string;
  env: Record<string, string>;
  bashTimeoutMs: number;
  /** Where Bash runs: the sandbox container in a pod. */
  executor: Executor;
  signal?: AbortSignal;
}

export interface ToolOutput {
  content: string;
  isError?: boolean;
}

/** A tool the model can call, named as Claude Code names it. */
export interface Tool<S extends z.ZodType = z.ZodType> {
  name: string;
  description: string;
  schema: S;
  run(input: z.infer<S>, ctx: ToolContext): Promise<ToolOutput>;
}

/** Raised for a tool call the model can correct (bad path, no match); becomes an error tool_result. */
export class ToolError extends Error {}

export const MAX_OUTPUT_CHARS = 30_000;

/** Keeps the head and the tail of long output, where the useful parts (command, summary) usually are. */
export function truncate(text: string, max = MAX_OUTPUT_CHARS): string {
  if (text.length <= max) return text;
  const half = Math.floor((max - 80) / 2);
  return `${text.slice(0, half)}\n… [${text.length - 2 * half} characters truncated] …\n${text.slice(-half)}`;
}
