import fs from "node:fs";
import path from "node:path";
import { z } from "zod";

/** The events the runner fires, as Claude Code names them. */
export const HOOK_EVENTS = ["SessionStart", "PreToolUse", "PostToolUse", "Stop"] as const;
export type HookEvent = (typeof HOOK_EVENTS)[number];

const CommandHook = z.object({
  type: z.literal("command"),
  command: z.string().min(1),
  timeout: z.number().positive().optional(),
});
const Matcher = z.object({ matcher: z.string().optional(), hooks: z.array(z.unknown()).default([]) });

export interface HookCommand {
  command: string;
  /** Seconds, as in Claude Code. */
  timeout?: number;
}
export type HookTable = Partial<Record<HookEvent, { matcher?: string; hooks: HookCommand[] }[]>>;

/**
 * Reads the repository's `.claude/settings.json` hooks. Unknown events and hook types are ignored
 * (Claude Code has more than the runner fires); a malformed file yields no hooks and a warning.
 */
export function loadRepoHooks(workspace: string, warn: (msg: string) => void = () => {}): HookTable {
  const file = path.join(workspace, ".claude", "settings.json");
  if (!fs.existsSync(file)) return {};
  return parseRepoHooks(fs.readFileSync(file, "utf8"), warn);
}

/** The hooks of a `.claude/settings.json` text (the runner reads it from the base branch). */
export function parseRepoHooks(text: string, warn: (msg: string) => void = () => {}): HookTable {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    warn(`ignoring .claude/settings.json: ${(err as Error).message}`);
    return {};
  }
  const hooks = (raw as { hooks?: Record<string, unknown> } | null)?.hooks ?? {};
  const table: HookTable = {};
  for (const event of HOOK_EVENTS) {
    const groups = z.array(Matcher).safeParse(hooks[event] ?? []);
    if (!groups.success) {
      warn(`ignoring malformed ${event} hooks`);
      continue;
    }
    table[event] = groups.data.map((g) => ({
      matcher: g.matcher,
      hooks: g.hooks.flatMap((h) => {
        const parsed = CommandHook.safeParse(h);
        return parsed.success ? [{ command: parsed.data.command, timeout: parsed.data.timeout }] : [];
      }),
    }));
  }
  return table;
}

/** Claude Code's matcher semantics: empty or `*` matches all, otherwise an anchored regular expression. */
export function matches(matcher: string | undefined, toolName: string | undefined): boolean {
  if (!matcher || matcher === "*" || toolName === undefined) return true;
  try {
    return new RegExp(`^(?:${matcher})$`).test(toolName);
  } catch {
    return matcher === toolName;
  }
}
