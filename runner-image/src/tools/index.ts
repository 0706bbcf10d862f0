import { z } from "zod";
import { Bash } from "./bash.ts";
import { Edit } from "./edit.ts";
import { Glob } from "./glob.ts";
import { Grep } from "./grep.ts";
import { Read } from "./read.ts";
import type { Tool } from "./types.ts";
import { Write } from "./write.ts";

export const ALL_TOOLS: Tool[] = [Read, Write, Edit, Glob, Grep, Bash] as Tool[];
export const READ_ONLY_TOOLS: Tool[] = [Read, Glob, Grep] as Tool[];

/** The Messages API form of a tool. */
export function toolParam(tool: Pick<Tool, "name" | "description" | "schema">) {
  const schema = z.toJSONSchema(tool.schema, { io: "input" }) as Record<string, unknown>;
  delete schema.$schema;
  return {
    name: tool.name,
    description: tool.description,
    input_schema: schema as { type: "object"; [k: string]: unknown },
  };
}

/** The environment tools run with: built from an allowlist, never inherited, so no credential reaches them. */
export function toolEnv(
  base: Record<string, string | undefined>,
  workspace: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: base.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    HOME: base.HOME ?? "/home/runner",
    LANG: base.LANG ?? "C.UTF-8",
    TERM: "dumb",
    CI: "true",
    SHELL: "/bin/bash",
    TMPDIR: base.TMPDIR ?? "/tmp",
    GIT_TERMINAL_PROMPT: "0",
    GIT_AUTHOR_NAME: "AgentFactory Bot",
    GIT_AUTHOR_EMAIL: "agent@agentfactory.dev",
    GIT_COMMITTER_NAME: "AgentFactory Bot",
    GIT_COMMITTER_EMAIL: "agent@agentfactory.dev",
    CLAUDE_PROJECT_DIR: workspace,
    AGENTFACTORY_RUNNER: "1",
  };
  for (const [k, v] of Object.entries(extra)) env[k] = v;
  return env;
}
