import fs from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { display, resolveInWorkspace } from "./paths.ts";
import { type Tool, ToolError } from "./types.ts";

const Input = z.object({
  pattern: z.string().describe("Glob pattern relative to the workspace, e.g. src/**/*.ts"),
  path: z.string().optional().describe("Directory to search in (default: the workspace)"),
});

const MAX_RESULTS = 200;

/**
 * Finds files by pattern, inside the workspace only: a pattern that climbs out (`..`) or names an
 * absolute path elsewhere is refused, and a match is listed only when its real path (links
 * followed) is inside the workspace.
 */
export const Glob: Tool<typeof Input> = {
  name: "Glob",
  description:
    "Finds files in the workspace by glob pattern (e.g. **/*.test.ts), newest first. Skips .git and node_modules.",
  schema: Input,
  async run(input, ctx) {
    const root = await fs.realpath(ctx.workspace);
    const { dir, pattern } = confine(input.pattern, ctx.workspace, root, input.path);
    const found: { file: string; mtime: number }[] = [];
    for await (const rel of fs.glob(pattern, {
      cwd: dir,
      exclude: (f) => /(^|\/)(\.git|node_modules)$/.test(f),
    })) {
      const abs = path.join(dir, rel);
      const real = await fs.realpath(abs).catch(() => undefined);
      if (!real || !inside(root, real)) continue;
      const stat = await fs.stat(real).catch(() => undefined);
      if (stat?.isFile()) found.push({ file: abs, mtime: stat.mtimeMs });
    }
    if (!found.length) return { content: "No files found" };
    found.sort((a, b) => b.mtime - a.mtime || a.file.localeCompare(b.file));
    const lines = found.slice(0, MAX_RESULTS).map((f) => display(ctx.workspace, f.file));
    if (found.length > MAX_RESULTS) lines.push(`… ${found.length - MAX_RESULTS} more`);
    return { content: lines.join("\n") };
  },
};

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(`${root}/`);
}

/**
 * Where to search and with which pattern: an absolute pattern inside the workspace searches from its
 * root; one elsewhere, or any pattern with a `..` segment, is a ToolError.
 */
function confine(pattern: string, workspace: string, root: string, dirArg?: string): { dir: string; pattern: string } {
  let dir = resolveInWorkspace(workspace, dirArg ?? ".");
  let p = pattern;
  if (path.isAbsolute(p)) {
    const base = [workspace, root].find((r) => inside(r, p));
    if (!base) throw new ToolError(`${pattern} is outside the workspace: glob patterns are relative to it`);
    p = path.relative(base, p) || ".";
    dir = root;
  }
  if (p.split(/[\\/]+/).includes(".."))
    throw new ToolError(`${pattern} climbs out of the search directory: glob patterns may not contain ..`);
  return { dir, pattern: p };
}
