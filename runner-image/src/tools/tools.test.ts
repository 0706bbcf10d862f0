import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalExecutor } from "../sandbox/local.ts";
import { Bash } from "./bash.ts";
import { Edit } from "./edit.ts";
import { Glob } from "./glob.ts";
import { _setRipgrep, Grep } from "./grep.ts";
import { toolEnv, toolParam } from "./index.ts";
import { Read } from "./read.ts";
import type { ToolContext } from "./types.ts";
import { ToolError } from "./types.ts";
import { Write } from "./write.ts";

let ws: string;
let ctx: ToolContext;

beforeAll(async () => {
  ws = await fs.mkdtemp(path.join(os.tmpdir(), "af-tools-"));
  await fs.mkdir(path.join(ws, "src"));
  await fs.writeFile(path.join(ws, "src/add.js"), "export function add(a, b) {\n  return a - b;\n}\n");
  await fs.writeFile(path.join(ws, "src/dup.txt"), "x\nx\n");
  ctx = {
    workspace: ws,
    env: toolEnv({ PATH: process.env.PATH, HOME: ws }, ws),
    bashTimeoutMs: 5000,
    executor: new LocalExecutor(),
  };
});
afterAll(() => fs.rm(ws, { recursive: true, force: true }));

describe("Read / Write / Edit", () => {
  it("reads with line numbers and offsets", async () => {
    const out = await Read.run({ file_path: "src/add.js", offset: 2, limit: 1 }, ctx);
    expect(out.content).toBe("     2\t  return a - b;");
  });
  it("refuses paths outside the workspace, including via symlinks", async () => {
    await expect(Read.run({ file_path: "/etc/hostname" }, ctx)).rejects.toBeInstanceOf(ToolError);
    await expect(Read.run({ file_path: "../x" }, ctx)).rejects.toThrow(/outside the workspace/);
    await fs.symlink("/etc", path.join(ws, "etc-link"));
    await expect(Read.run({ file_path: "etc-link/hostname" }, ctx)).rejects.toThrow(/outside the workspace/);
    await expect(Write.run({ file_path: "etc-link/evil", content: "x" }, ctx)).rejects.toThrow(/outside/);
  });
  it("accepts absolute paths inside the workspace", async () => {
    const out = await Read.run({ file_path: path.join(ws, "src/add.js") }, ctx);
    expect(out.content).toContain("export function add");
  });
  it("writes files, creating directories", async () => {
    await Write.run({ file_path: "lib/deep/x.txt", content: "hello" }, ctx);
    expect(await fs.readFile(path.join(ws, "lib/deep/x.txt"), "utf8")).toBe("hello");
  });
  it("refuses to write or edit git metadata: anything under a .git directory, or a .git file", async () => {
    await fs.mkdir(path.join(ws, ".git/hooks"), { recursive: true });
    await fs.mkdir(path.join(ws, "sub/.git"), { recursive: true });
    await fs.writeFile(path.join(ws, ".git/config"), "[core]\n");
    await fs.writeFile(path.join(ws, ".git/HEAD"), "ref: refs/heads/main\n");
    await fs.symlink(".git/hooks", path.join(ws, "hooks-link"));
    for (const file_path of [
      ".git/hooks/pre-push",
      path.join(ws, ".git/hooks/post-commit"),
      "sub/.git/config",
      "src/../.git/info/attributes",
      ".GIT/hooks/pre-push",
      ".git",
      "sub/.git",
      "hooks-link/pre-push",
    ])
      await expect(Write.run({ file_path, content: "#!/bin/sh\n" }, ctx), file_path).rejects.toThrow(/\.git/);
    await expect(
      Edit.run({ file_path: ".git/config", old_string: "[core]", new_string: "[core]\n\tfsmonitor = x" }, ctx),
    ).rejects.toThrow(/\.git/);
    await expect(
      Edit.run({ file_path: ".git/HEAD", old_string: "main", new_string: "agent/1-x" }, ctx),
    ).rejects.toThrow(/inside \.git/);
    expect(await fs.readFile(path.join(ws, ".git/config"), "utf8")).toBe("[core]\n");
    expect(await fs.readdir(path.join(ws, ".git/hooks"))).toEqual([]);
    // Positive control: look-alikes are ordinary files.
    await Write.run({ file_path: ".github/x.yml", content: "a" }, ctx);
    await Write.run({ file_path: "src/.gitignore", content: "a" }, ctx);
    await Write.run({ file_path: "docs/.git-notes", content: "a" }, ctx);
    expect(await fs.readFile(path.join(ws, "docs/.git-notes"), "utf8")).toBe("a");
  });
  it("edits by exact, unique replacement", async () => {
    await Edit.run({ file_path: "src/add.js", old_string: "a - b", new_string: "a + b" }, ctx);
    expect(await fs.readFile(path.join(ws, "src/add.js"), "utf8")).toContain("return a + b;");
    await expect(Edit.run({ file_path: "src/add.js", old_string: "nope", new_string: "x" }, ctx)).rejects.toThrow(
      /not found/,
    );
    await expect(Edit.run({ file_path: "src/dup.txt", old_string: "x", new_string: "y" }, ctx)).rejects.toThrow(
      /2 times/,
    );
    await Edit.run({ file_path: "src/dup.txt", old_string: "x", new_string: "$&y", replace_all: true }, ctx);
    expect(await fs.readFile(path.join(ws, "src/dup.txt"), "utf8")).toBe("$&y\n$&y\n");
  });
});

describe("Glob / Grep", () => {
  it("globs files", async () => {
    const out = await Glob.run({ pattern: "src/*.js" }, ctx);
    expect(out.content).toBe("src/add.js");
    expect((await Glob.run({ pattern: path.join(ws, "src/*.js") }, ctx)).content).toBe("src/add.js");
  });
  it("lists nothing outside the workspace: absolute patterns, .., braces and links", async () => {
    const outside = await fs.mkdtemp(path.join(os.tmpdir(), "af-outside-"));
    try {
      await fs.writeFile(path.join(outside, "secret.txt"), "x");
      await fs.symlink(outside, path.join(ws, "out-link"));
      // positive control: the file is there for anyone who may look outside
      expect(await fs.readdir(path.join(ws, "out-link"))).toEqual(["secret.txt"]);
      for (const pattern of ["/*", "/**/secret.txt", `${outside}/*`, "../*", "../..", "src/../../*"])
        await expect(Glob.run({ pattern }, ctx)).rejects.toThrow(/outside the workspace|may not contain \.\./);
      for (const pattern of ["out-link/*", "**/secret.txt", "{..,src}/*", "*/secret.txt"]) {
        const out = await Glob.run({ pattern }, ctx);
        expect(out.content, pattern).not.toContain("secret.txt");
        expect(out.content, pattern).not.toContain("..");
      }
      await expect(Glob.run({ pattern: "*", path: "/" }, ctx)).rejects.toThrow(/outside the workspace/);
      await expect(Glob.run({ pattern: "*", path: "out-link" }, ctx)).rejects.toThrow(/outside the workspace/);
    } finally {
      await fs.rm(path.join(ws, "out-link"), { force: true });
      await fs.rm(outside, { recursive: true, force: true });
    }
  });
  it.each([true, false])("greps (ripgrep=%s)", async (rg) => {
    _setRipgrep(rg ? undefined : false);
    const files = await Grep.run({ pattern: "function add" }, ctx);
    expect(files.content).toBe("src/add.js");
    const content = await Grep.run({ pattern: "RETURN", "-i": true, output_mode: "content", glob: "*.js" }, ctx);
    expect(content.content).toBe("src/add.js:2:  return a + b;");
    expect((await Grep.run({ pattern: "zzz-none" }, ctx)).content).toBe("No matches found");
    _setRipgrep(undefined);
  });
});

describe("Bash", () => {
  it("runs in the workspace with a scrubbed environment", async () => {
    process.env.AF_TEST_SECRET_TOKEN = "should-not-leak-123";
    const out = await Bash.run({ command: 'pwd; echo "[$AF_TEST_SECRET_TOKEN]"; env | wc -l' }, ctx);
    expect(out.content).toContain(await fs.realpath(ws));
    expect(out.content).toContain("[]");
    expect(out.content).not.toContain("should-not-leak");
    expect(out.content).toMatch(/\[exit code 0\]$/);
  });
  it("reports failures and times out", async () => {
    expect((await Bash.run({ command: "exit 3" }, ctx)).content).toMatch(/exit code 3/);
    const slow = await Bash.run({ command: "sleep 20", timeout: 300 }, ctx);
    expect(slow.isError).toBe(true);
    expect(slow.content).toMatch(/timed out after 300 ms/);
  });
  it("truncates long output keeping head and tail", async () => {
    const out = await Bash.run({ command: "seq 1 20000" }, ctx);
    expect(out.content.length).toBeLessThan(31_000);
    expect(out.content).toMatch(/^1\n2\n/);
    expect(out.content).toContain("characters truncated");
    expect(out.content).toContain("20000");
  });
});

it("describes tools with JSON schema", () => {
  const p = toolParam(Edit);
  expect(p.input_schema).toMatchObject({ type: "object", required: ["file_path", "old_string", "new_string"] });
});
