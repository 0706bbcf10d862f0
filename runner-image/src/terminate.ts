import type { Redactor } from "../../core/redact.ts";
import type { StageName } from "../../core/result.ts";
import { writeResult } from "./result.ts";

/** Exit code of a process ended by SIGTERM (128 + 15), as a shell reports it. */
export const SIGTERM_EXIT_CODE = 143;

export interface TerminationOptions {
  terminationLog: string;
  stage: StageName;
  model: string;
  started: number;
  redact: Redactor;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  exit: (code: number) => void;
  now?: () => number;
}

/**
 * The runner is PID 1 of its container: without a handler SIGTERM does nothing and the kubelet SIGKILLs it
 * after the grace period, leaving no result. This writes a result with the typed "Terminated" failure (the
 * operator retries it as infrastructure) and exits at once; the agent loop, its model stream and its
 * sandbox commands end with the process. Whichever comes first wins: the stage's own result (`finish`) or
 * the signal's, so a finished stage's result is never overwritten.
 */
export function terminationHandler(o: TerminationOptions): {
  onSignal: (signal: string) => void;
  /** Writes the stage's own result unless a signal already wrote one; returns the exit code. */
  finish: (write: () => number) => number;
} {
  let written = false;
  const now = o.now ?? Date.now;
  return {
    onSignal(signal) {
      if (written) return;
      written = true;
      o.log("stage terminated", { signal });
      try {
        writeResult(
          o.terminationLog,
          {
            stage: o.stage,
            outcome: "failed",
            failure: "Terminated",
            model: o.model,
            summary: `terminated by ${signal} before the stage finished`,
            durationMs: Math.max(0, Math.round(now() - o.started)),
          },
          o.redact,
        );
      } finally {
        o.exit(SIGTERM_EXIT_CODE);
      }
    },
    finish(write) {
      if (written) return SIGTERM_EXIT_CODE;
      written = true;
      return write();
    },
  };
}
