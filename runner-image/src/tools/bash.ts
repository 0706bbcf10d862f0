import { z } from "zod";
import { exitStatus } from "../sandbox/executor.ts";
import { type Tool, truncate } from "./types.ts";

const Input = z.object({
  command: z.string().describe("The shell command to run (bash), from the workspace root"),
  timeout: z.number().int().positive().max(600_000).optional().describe("Timeout in milliseconds"),
  description: z.string().optional().describe("What the command does, in a few words"),
});

/**
 * Runs a command with bash in the workspace, through the executor (the sandbox container in a pod),
 * with the scrubbed tool environment. Whatever the command starts is killed when the call ends.
 */
export const Bash: Tool<typeof Input> = {
  name: "Bash",
  description:
    "Runs a bash command in the workspace and returns its combined output and exit code. Long output is truncated. Runs with a clean environment: no credentials are available. Background processes do not outlive the call.",
  schema: Input,
  async run(input, ctx) {
    const timeoutMs = Math.min(input.timeout ?? ctx.bashTimeoutMs, ctx.bashTimeoutMs * 5);
    const r = await ctx.executor.run(
      { command: input.command, cwd: ctx.workspace, env: ctx.env, timeoutMs },
      ctx.signal,
    );
    const code = exitStatus(r);
    const status = r.timedOut ? `timed out after ${timeoutMs} ms` : `exit code ${code}`;
    const body = r.output.trim() ? truncate(r.output) : "(no output)";
    return { content: `${body}\n[${status}]`, isError: code !== 0 || r.timedOut };
  },
};
