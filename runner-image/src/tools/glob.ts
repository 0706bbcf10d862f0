import fs from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { display, resolveInWorkspace } from "./paths.ts";
import type { Tool } from "./types.ts";

const Input = z.object({
  pattern: z.string().describe("Glob pattern, e.g. src/**/*.ts"),
  path: z.string().optional().describe("Directory to search in (default: the workspace)"),
});

const MAX_RESULTS = 200;

export const Glob: Tool<typeof Input> = {
  name: "Glob",
  description: "Finds files by glob pattern (e.g. **/*.test.ts), newest first. Skips .git and node_modules.",
  schema: Input,
  async run(input, ctx) {
    const dir = resolveInWorkspace(ctx.workspace, input.path ?? ".");
    const found: { file: string; mtime: number }[] = [];
    for await (const rel of fs.glob(input.pattern, {
      cwd: dir,
      exclude: (f) => /(^|\/)(\.git|node_modules)$/.test(f),
    })) {
      const abs = path.join(dir, rel);
      const stat = await fs.stat(abs).catch(() => undefined);
      if (stat?.isFile()) found.push({ file: abs, mtime: stat.mtimeMs });
    }
    if (!found.length) return { content: "No files found" };
    found.sort((a, b) => b.mtime - a.mtime || a.file.localeCompare(b.file));
    const lines = found.slice(0, MAX_RESULTS).map((f) => display(ctx.workspace, f.file));
    if (found.length > MAX_RESULTS) lines.push(`… ${found.length - MAX_RESULTS} more`);
    return { content: lines.join("\n") };
  },
};
