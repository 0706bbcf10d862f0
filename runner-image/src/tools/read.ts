import fs from "node:fs/promises";
import { z } from "zod";
import { resolveInWorkspace } from "./paths.ts";
import { type Tool, ToolError, truncate } from "./types.ts";

const Input = z.object({
  file_path: z.string().describe("Path of the file, absolute or relative to the workspace"),
  offset: z.number().int().min(1).optional().describe("1-based line to start from"),
  limit: z.number().int().positive().optional().describe("How many lines to read (default 2000)"),
});

export const Read: Tool<typeof Input> = {
  name: "Read",
  description: "Reads a text file from the workspace. Output lines are numbered (`   12\\tcontent`).",
  schema: Input,
  async run(input, ctx) {
    const file = resolveInWorkspace(ctx.workspace, input.file_path);
    const stat = await fs.stat(file).catch(() => undefined);
    if (!stat) throw new ToolError(`${input.file_path} does not exist`);
    if (stat.isDirectory()) throw new ToolError(`${input.file_path} is a directory; use Glob or Bash ls`);
    const text = await fs.readFile(file, "utf8");
    if (text.includes("\u0000")) throw new ToolError(`${input.file_path} is a binary file`);
    const lines = text.split("\n");
    const start = (input.offset ?? 1) - 1;
    const slice = lines.slice(start, start + (input.limit ?? 2000));
    const numbered = slice.map(
      (line, i) => `${String(start + i + 1).padStart(6)}\t${line.length > 2000 ? `${line.slice(0, 2000)}…` : line}`,
    );
    if (!text) return { content: "(empty file)" };
    return { content: truncate(numbered.join("\n")) };
  },
};
