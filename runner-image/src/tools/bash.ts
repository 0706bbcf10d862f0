import { spawn } from "node:child_process";
import { z } from "zod";
import { type Tool, truncate } from "./types.ts";

const Input = z.object({
  command: z.string().describe("The shell command to run (bash), from the workspace root"),
  timeout: z.number().int().positive().max(600_000).optional().describe("Timeout in milliseconds"),
  description: z.string().optional().describe("What the command does, in a few words"),
});

/**
 * Runs a command with bash in the workspace, with the scrubbed tool environment, in its own process
 * group so a timeout (or the end of the call) kills everything it started.
 */
export const Bash: Tool<typeof Input> = {
  name: "Bash",
  description:
    "Runs a bash command in the workspace and returns its combined output and exit code. Long output is truncated. Runs with a clean environment: no credentials are available.",
  schema: Input,
  async run(input, ctx) {
    const timeoutMs = Math.min(input.timeout ?? ctx.bashTimeoutMs, ctx.bashTimeoutMs * 5);
    const result = await runShell(input.command, { cwd: ctx.workspace, env: ctx.env, timeoutMs, signal: ctx.signal });
    const status = result.timedOut ? `timed out after ${timeoutMs} ms` : `exit code ${result.code}`;
    const body = result.output.trim() ? truncate(result.output) : "(no output)";
    return { content: `${body}\n[${status}]`, isError: result.code !== 0 || result.timedOut };
  },
};

export interface ShellResult {
  code: number;
  output: string;
  timedOut: boolean;
}

export function runShell(
  command: string,
  opts: { cwd: string; env: Record<string, string>; timeoutMs: number; stdin?: string; signal?: AbortSignal },
): Promise<ShellResult> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-c", command], {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const chunks: Buffer[] = [];
    let size = 0;
    const collect = (b: Buffer) => {
      if (size < 4 * 1024 * 1024) chunks.push(b);
      size += b.length;
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.stdin.on("error", () => {});
    child.stdin.end(opts.stdin ?? "");
    let timedOut = false;
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {}
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, opts.timeoutMs);
    opts.signal?.addEventListener("abort", killGroup, { once: true });
    child.on("error", (err) => chunks.push(Buffer.from(String(err))));
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      killGroup(); // background children left behind must not outlive the call
      resolve({ code: code ?? (sig ? 128 : 1), output: Buffer.concat(chunks).toString("utf8"), timedOut });
    });
  });
}
