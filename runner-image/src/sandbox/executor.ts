import { constants } from "node:os";

/**
 * The seam every command the agent can influence goes through: the Bash tool, the repository's hook
 * commands and the tests command. In a stage pod it is the sandbox container (another uid, another
 * PID namespace, no secrets), reached over a unix socket (socket.ts); in development and unit tests
 * it is a local process group (local.ts). Nothing else in the runner spawns repository code.
 */
export interface ExecRequest {
  /** A bash command line (`bash -c`). */
  command: string;
  cwd: string;
  /** The complete environment of the command: never inherited. */
  env: Record<string, string>;
  timeoutMs: number;
  stdin?: string;
  /** Give the command a CLAUDE_ENV_FILE and return what it wrote there (SessionStart hooks). */
  envFile?: boolean;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved in the order they arrived (what a terminal would show). */
  output: string;
  /** null when the command was killed by a signal. */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** The CLAUDE_ENV_FILE's contents, when asked for. */
  envFile?: string;
}

export interface Executor {
  /** "local": a process group of the runner's own uid; "sandbox": the sandbox container. */
  readonly kind: "local" | "sandbox";
  run(req: ExecRequest, signal?: AbortSignal): Promise<ExecResult>;
}

/** An exit status as a shell reports it: the code, or 128 + the signal number. */
export function exitStatus(r: Pick<ExecResult, "exitCode" | "signal">): number {
  if (r.exitCode !== null) return r.exitCode;
  const n = r.signal ? constants.signals[r.signal as keyof typeof constants.signals] : undefined;
  return 128 + (n ?? 0);
}

/** Output kept per stream; more is counted but dropped (the tools truncate far below this). */
export const MAX_STREAM_BYTES = 4 * 1024 * 1024;
