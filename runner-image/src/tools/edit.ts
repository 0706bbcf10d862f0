import fs from "node:fs/promises";
import { z } from "zod";
import { display, resolveForWrite } from "./paths.ts";
import { type Tool, ToolError } from "./types.ts";

const Input = z.object({
  file_path: z.string().describe("Path of the file, absolute or relative to the workspace"),
  old_string: z.string().describe("Exact text to replace, including whitespace; must be unique unless replace_all"),
  new_string: z.string().describe("Replacement text"),
  replace_all: z.boolean().optional().describe("Replace every occurrence"),
});

export const Edit: Tool<typeof Input> = {
  name: "Edit",
  description:
    "Replaces an exact string in a file. old_string must match the file exactly (Read it first) and occur once, unless replace_all is true.",
  schema: Input,
  async run(input, ctx) {
    const file = resolveForWrite(ctx.workspace, input.file_path);
    const text = await fs.readFile(file, "utf8").catch(() => {
      throw new ToolError(`${input.file_path} does not exist`);
    });
    if (input.old_string === input.new_string) throw new ToolError("old_string and new_string are the same");
    if (input.old_string === "") throw new ToolError("old_string is empty; use Write to create a file");
    const count = text.split(input.old_string).length - 1;
    if (count === 0) throw new ToolError(`old_string was not found in ${input.file_path}`);
    if (count > 1 && !input.replace_all)
      throw new ToolError(`old_string occurs ${count} times in ${input.file_path}; add context or set replace_all`);
    const next = input.replace_all
      ? text.split(input.old_string).join(input.new_string)
      : text.replace(input.old_string, () => input.new_string);
    await fs.writeFile(file, next);
    return {
      content: `Edited ${display(ctx.workspace, file)} (${input.replace_all ? count : 1} replacement${count > 1 && input.replace_all ? "s" : ""})`,
    };
  },
};
