import { readFileSync } from "node:fs";
import { type Executor, exitStatus } from "../sandbox/executor.ts";
import { truncate } from "../tools/types.ts";
import type { Gate, HookInput } from "./engine.ts";
import { checkCommand, type SafetyOptions } from "./safety.ts";

/** PreToolUse Bash: the safety gate over the command. */
export function safetyGate(
  options: Omit<SafetyOptions, "currentBranch"> & { currentBranch?: () => string | undefined },
): Gate {
  return {
    name: "safety",
    event: "PreToolUse",
    matcher: "Bash",
    async check(input) {
      const command = commandOf(input);
      const currentBranch = /\bpush\b/.test(command) ? options.currentBranch?.() : undefined;
      const verdict = await checkCommand(command, { ...options, currentBranch });
      return verdict.allowed
        ? { block: false }
        : { block: true, reason: `Blocked by the AgentFactory safety gate: ${verdict.reason}. Command: ${command}` };
    },
  };
}

const CREDENTIAL_PATH =
  /(^|\/)(\.ssh|\.aws|\.gnupg|\.docker|\.kube|\.config\/gh|\.config\/gcloud)(\/|$)|(^|\/)(\.netrc|\.git-credentials|\.npmrc|\.pypirc)$|^\/(proc|sys|dev|var\/run\/secrets|run\/secrets)(\/|$)|^\/etc\/(shadow|gshadow|sudoers)/;

/** PreToolUse for the file tools: the path must stay in the workspace and not be a credential file. */
export function pathGate(workspace: string, options: { readOnly?: string[] } = {}): Gate {
  return {
    name: "paths",
    event: "PreToolUse",
    matcher: "Read|Write|Edit|MultiEdit|Glob|Grep|NotebookEdit",
    check(input) {
      const ti = (input.tool_input ?? {}) as Record<string, unknown>;
      const target = String(ti.file_path ?? ti.path ?? ti.notebook_path ?? "");
      if (!target) return { block: false };
      const abs = target.startsWith("/") ? target : `${workspace.replace(/\/$/, "")}/${target}`;
      const norm = normalize(abs);
      if (CREDENTIAL_PATH.test(norm))
        return { block: true, reason: `Blocked: ${target} is a credential or system path` };
      const root = workspace.replace(/\/$/, "");
      if (norm !== root && !norm.startsWith(`${root}/`))
        return { block: true, reason: `Blocked: ${target} is outside the workspace ${workspace}` };
      const rel = norm.slice(root.length + 1);
      const writes = /^(Write|Edit|MultiEdit|NotebookEdit)$/.test(input.tool_name ?? "");
      const locked = options.readOnly?.find((dir) => rel === dir.replace(/\/$/, "") || rel.startsWith(dir));
      if (writes && locked)
        return {
          block: true,
          reason: `Blocked: ${locked} is read-only for the agent (the repository's own hooks and settings)`,
        };
      return { block: false };
    },
  };
}

/**
 * Stop: the repository's tests must pass. Blocks with the tail of the test output; the loop bounds how
 * many times (after N blocked stops the stage fails with that output).
 */
export function testsGate(options: {
  command: string | undefined;
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  /** Where the tests run: the sandbox container in a pod (the tests are repository code). */
  executor: Executor;
  /** The test definition when the session started: a change to it blocks (the agent may not weaken its own gate). */
  definition?: string;
}): Gate {
  return {
    name: "tests",
    event: "Stop",
    async check() {
      if (!options.command) return { block: false, context: "no test command configured or detected" };
      if (options.definition !== undefined && testDefinition(options.cwd) !== options.definition)
        return {
          block: true,
          reason:
            "The test script in package.json was changed. Restore it: the tests must run as the repository defines them.",
        };
      const r = await options.executor.run({
        command: options.command,
        cwd: options.cwd,
        env: options.env,
        timeoutMs: options.timeoutMs,
      });
      const code = exitStatus(r);
      if (code === 0 && !r.timedOut) return { block: false, context: `tests passed: ${options.command}` };
      const status = r.timedOut ? `timed out after ${options.timeoutMs} ms` : `exited with ${code}`;
      return {
        block: true,
        reason: `The tests must pass before you finish. \`${options.command}\` ${status}:\n${truncate(r.output, 8000)}`,
      };
    },
  };
}

function commandOf(input: HookInput): string {
  const ti = (input.tool_input ?? {}) as Record<string, unknown>;
  return typeof ti.command === "string" ? ti.command : "";
}

function normalize(p: string): string {
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "..") out.pop();
    else if (seg && seg !== ".") out.push(seg);
  }
  return `/${out.join("/")}`;
}

/** package.json's test-related scripts, as a string to compare (empty when there is no package.json). */
export function testDefinition(dir: string): string {
  try {
    const scripts =
      (JSON.parse(readFileSync(`${dir}/package.json`, "utf8")) as { scripts?: Record<string, string> }).scripts ?? {};
    return JSON.stringify([scripts.pretest, scripts.test, scripts.posttest]);
  } catch {
    return "";
  }
}
