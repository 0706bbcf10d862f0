import fs from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { display, resolveForWrite } from "./paths.ts";
import type { Tool } from "./types.ts";

const Input = z.object({
  file_path: z.string().describe("Path of the file, absolute or relative to the workspace"),
  content: z.string().describe("The complete new content of the file"),
});

export const Write: Tool<typeof Input> = {
  name: "Write",
  description: "Creates or overwrites a file in the workspace with the given content.",
  schema: Input,
  async run(input, ctx) {
    const file = resolveForWrite(ctx.workspace, input.file_path);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, input.content);
    return { content: `Wrote ${display(ctx.workspace, file)} (${input.content.split("\n").length} lines)` };
  },
};
