import { type Executor, exitStatus } from "../sandbox/executor.ts";
import type { Redactor } from "./redact.ts";
import { type HookEvent, type HookTable, matches } from "./settings.ts";

/** Hook input as Claude Code sends it on stdin (the fields the runner can fill). */
export interface HookInput {
  hook_event_name: HookEvent;
  session_id: string;
  transcript_path: string;
  cwd: string;
  permission_mode: "default";
  tool_name?: string;
  tool_input?: unknown;
  tool_response?: unknown;
  tool_use_id?: string;
  stop_hook_active?: boolean;
  source?: "startup";
}

/** A hard gate: in-process, runs before the repository's hooks, cannot be configured away. */
export interface Gate {
  name: string;
  event: HookEvent;
  matcher?: string;
  check(input: HookInput): Promise<GateResult> | GateResult;
}
export type GateResult = { block: false; context?: string } | { block: true; reason: string };

export interface HookOutcome {
  /** PreToolUse: the call must not run. PostToolUse: feedback for the model. Stop: keep working. */
  blocked: boolean;
  /** Messages for the model (stderr of exit 2, `reason`, `permissionDecisionReason`). */
  feedback: string[];
  /** `additionalContext`, SessionStart stdout. */
  context: string[];
  /** `continue: false`: end the session. */
  stop?: string;
  /** Which gate or hook blocked, for logs. */
  by?: string;
  /** Environment exported through CLAUDE_ENV_FILE by SessionStart hooks. */
  env: Record<string, string>;
  /** PreToolUse `hookSpecificOutput.updatedInput`: the tool runs with this input instead. */
  updatedInput?: Record<string, unknown>;
}

export interface HookEngineOptions {
  gates: Gate[];
  repoHooks: HookTable;
  cwd: string;
  /** Scrubbed environment for hook commands (they are repository code, as untrusted as tools). */
  env: Record<string, string>;
  /** Where hook commands run: the sandbox container in a pod, like the tools. */
  executor: Executor;
  redact: Redactor;
  sessionId: string;
  transcriptPath?: string;
  defaultTimeoutSec?: number;
  log?: (msg: string, data?: Record<string, unknown>) => void;
}

/**
 * Runs Claude Code-protocol hooks: the image's gates first (a block stops there), then the
 * repository's matching command hooks with the JSON input on stdin. Exit 2 blocks with stderr;
 * exit 0 may print JSON (`decision`, `reason`, `continue`, `hookSpecificOutput`); other codes are
 * non-blocking errors.
 */
export class HookEngine {
  constructor(private readonly opts: HookEngineOptions) {}

  async run(event: HookEvent, fields: Partial<HookInput> = {}, { gatesOnly = false } = {}): Promise<HookOutcome> {
    const input: HookInput = {
      session_id: this.opts.sessionId,
      transcript_path: this.opts.transcriptPath ?? "",
      cwd: this.opts.cwd,
      permission_mode: "default",
      ...fields,
      hook_event_name: event,
    };
    const outcome: HookOutcome = { blocked: false, feedback: [], context: [], env: {} };
    for (const gate of this.opts.gates) {
      if (gate.event !== event || !matches(gate.matcher, input.tool_name)) continue;
      const result = await gate.check(input);
      if (result.block) {
        this.opts.log?.("gate blocked", { gate: gate.name, event, tool: input.tool_name });
        return { ...outcome, blocked: true, feedback: [result.reason], by: `gate:${gate.name}` };
      }
      if (result.context) outcome.context.push(result.context);
    }
    if (gatesOnly) return outcome;
    for (const group of this.opts.repoHooks[event] ?? []) {
      if (!matches(group.matcher, input.tool_name)) continue;
      for (const hook of group.hooks) {
        await this.runCommand(hook.command, hook.timeout, input, outcome);
        if (outcome.blocked && event === "PreToolUse") return outcome;
      }
    }
    return outcome;
  }

  private async runCommand(command: string, timeoutSec: number | undefined, input: HookInput, outcome: HookOutcome) {
    const env = { ...this.opts.env, CLAUDE_PROJECT_DIR: this.opts.cwd };
    const timeoutMs = (timeoutSec ?? this.opts.defaultTimeoutSec ?? 60) * 1000;
    const r = await this.opts.executor.run({
      command,
      cwd: this.opts.cwd,
      env,
      timeoutMs,
      stdin: JSON.stringify(input),
      envFile: input.hook_event_name === "SessionStart",
    });
    const result = { code: exitStatus(r), stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut };
    const { redact } = this.opts;
    if (r.envFile) Object.assign(outcome.env, parseEnvFile(r.envFile));
    if (result.timedOut) {
      this.opts.log?.("hook timed out", { command, timeoutMs });
      return;
    }
    if (result.code === 2) {
      outcome.blocked = true;
      outcome.by = `hook:${command}`;
      outcome.feedback.push(redact(result.stderr.trim() || `blocked by hook ${command}`));
      return;
    }
    if (result.code !== 0) {
      this.opts.log?.("hook failed (non-blocking)", {
        command,
        code: result.code,
        stderr: redact(result.stderr.slice(0, 500)),
      });
      return;
    }
    const json = parseJsonOutput(result.stdout);
    if (!json) {
      if (input.hook_event_name === "SessionStart" && result.stdout.trim())
        outcome.context.push(redact(result.stdout.trim()));
      return;
    }
    const specific = (json.hookSpecificOutput ?? {}) as Record<string, unknown>;
    if (json.continue === false) outcome.stop = redact(String(json.stopReason ?? "stopped by hook"));
    const deny = specific.permissionDecision === "deny" || specific.permissionDecision === "ask";
    if (json.decision === "block" || deny) {
      outcome.blocked = true;
      outcome.by = `hook:${command}`;
      outcome.feedback.push(
        redact(String(specific.permissionDecisionReason ?? json.reason ?? `blocked by hook ${command}`)),
      );
    }
    if (typeof specific.additionalContext === "string") outcome.context.push(redact(specific.additionalContext));
    if (input.hook_event_name === "PreToolUse" && specific.updatedInput && typeof specific.updatedInput === "object")
      outcome.updatedInput = specific.updatedInput as Record<string, unknown>;
  }
}

function parseJsonOutput(stdout: string): Record<string, unknown> | undefined {
  const text = stdout.trim();
  if (!text.startsWith("{")) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Reads `export NAME=value` / `NAME=value` lines, as a SessionStart hook writes them to CLAUDE_ENV_FILE. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let value = (m[2] as string).trim();
    if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1);
    env[m[1] as string] = value;
  }
  return env;
}
