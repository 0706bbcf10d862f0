import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { minimatch } from "minimatch";
import { z } from "zod";
import { display, resolveInWorkspace } from "./paths.ts";
import { type Tool, ToolError, truncate } from "./types.ts";

const Input = z.object({
  pattern: z.string().describe("Regular expression to search for"),
  path: z.string().optional().describe("File or directory to search (default: the workspace)"),
  glob: z.string().optional().describe("Only files matching this glob, e.g. *.ts"),
  output_mode: z.enum(["content", "files_with_matches", "count"]).optional().describe("Default files_with_matches"),
  "-i": z.boolean().optional().describe("Case-insensitive"),
  "-C": z.number().int().nonnegative().optional().describe("Lines of context (content mode)"),
  head_limit: z.number().int().positive().optional().describe("Return only the first N lines"),
});
type Input = z.infer<typeof Input>;

const run = promisify(execFile);
let rgAvailable: boolean | undefined;

/**
 * ripgrep runs in the runner's own process (it only reads files), so never with the tools'
 * environment: a SessionStart hook may export PATH or LD_PRELOAD there, which would make the runner
 * run the agent's code as its own uid.
 */
const RG_ENV = { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin", LANG: "C.UTF-8" };

async function hasRipgrep(): Promise<boolean> {
  rgAvailable ??= await run("rg", ["--version"], { env: RG_ENV }).then(
    () => true,
    () => false,
  );
  return rgAvailable;
}

export const Grep: Tool<typeof Input> = {
  name: "Grep",
  description: "Searches file contents with a regular expression (ripgrep syntax). Skips .git and node_modules.",
  schema: Input,
  async run(input, ctx) {
    const target = display(ctx.workspace, resolveInWorkspace(ctx.workspace, input.path ?? "."));
    const root = await fs.realpath(ctx.workspace);
    const mode = input.output_mode ?? "files_with_matches";
    const lines = (await hasRipgrep())
      ? await ripgrep(input, root, target, mode)
      : await jsGrep(input, root, target, mode);
    const limited = input.head_limit ? lines.slice(0, input.head_limit) : lines;
    return { content: limited.length ? truncate(limited.join("\n")) : "No matches found" };
  },
};

async function ripgrep(input: Input, cwd: string, target: string, mode: string): Promise<string[]> {
  const args = ["--no-config", "--color=never", "--glob=!.git", "--glob=!node_modules"];
  if (input["-i"]) args.push("-i");
  if (input.glob) args.push(`--glob=${input.glob}`);
  if (mode === "files_with_matches") args.push("-l");
  else if (mode === "count") args.push("-c");
  else {
    args.push("-n", "--with-filename");
    if (input["-C"]) args.push(`-C${input["-C"]}`);
  }
  args.push("-e", input.pattern, "--", target);
  try {
    const { stdout } = await run("rg", args, { cwd, env: RG_ENV, maxBuffer: 20 * 1024 * 1024 });
    return stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => l.replace(/^\.\//, ""));
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    if (e.code === 1) return [];
    throw new ToolError(`grep failed: ${e.stderr?.trim() || String(err)}`);
  }
}

/** Fallback for images without ripgrep: a plain walk with JavaScript regular expressions. */
async function jsGrep(input: Input, root: string, target: string, mode: string): Promise<string[]> {
  let re: RegExp;
  try {
    re = new RegExp(input.pattern, input["-i"] ? "i" : "");
  } catch (err) {
    throw new ToolError(`invalid regular expression: ${(err as Error).message}`);
  }
  const out: string[] = [];
  for (const abs of await walk(path.join(root, target))) {
    const file = path.relative(root, abs);
    if (
      input.glob &&
      !minimatch(path.basename(file), input.glob, { dot: true }) &&
      !minimatch(file, input.glob, { dot: true })
    )
      continue;
    const text = await fs.readFile(abs, "utf8").catch(() => "");
    if (text.includes("\u0000")) continue;
    const matches = text.split("\n").flatMap((line, i) => (re.test(line) ? [`${file}:${i + 1}:${line}`] : []));
    if (!matches.length) continue;
    if (mode === "files_with_matches") out.push(file);
    else if (mode === "count") out.push(`${file}:${matches.length}`);
    else out.push(...matches);
  }
  return out;
}

async function walk(target: string): Promise<string[]> {
  const stat = await fs.stat(target);
  if (stat.isFile()) return [target];
  const files: string[] = [];
  for (const entry of await fs.readdir(target, { withFileTypes: true })) {
    if (entry.name === ".git" || entry.name === "node_modules") continue;
    const full = path.join(target, entry.name);
    if (entry.isDirectory()) files.push(...(await walk(full)));
    else if (entry.isFile()) files.push(full);
  }
  return files.sort();
}

/** For tests: force the JavaScript fallback. */
export function _setRipgrep(available: boolean | undefined): void {
  rgAvailable = available;
}
