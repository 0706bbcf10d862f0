import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseEnvFile } from "./engine.ts";
import { loadRepoHooks, matches } from "./settings.ts";

describe("matchers (Claude Code semantics)", () => {
  it.each([
    [undefined, "Bash", true],
    ["", "Bash", true],
    ["*", "Write", true],
    ["Bash", "Bash", true],
    ["Bash", "BashOutput", false],
    ["Edit|Write", "Write", true],
    ["Edit|Write", "MultiEdit", false],
    ["Notebook.*", "NotebookEdit", true],
    ["bash", "Bash", false],
  ])("%s matches %s: %s", (matcher, tool, expected) => expect(matches(matcher, tool)).toBe(expected));
});

describe("settings", () => {
  it("reads command hooks, skipping other hook types and unknown events", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "af-settings-"));
    fs.mkdirSync(path.join(dir, ".claude"));
    fs.writeFileSync(
      path.join(dir, ".claude/settings.json"),
      JSON.stringify({
        hooks: {
          PreToolUse: [
            {
              matcher: "Bash",
              hooks: [
                { type: "command", command: "a.sh", timeout: 5 },
                { type: "prompt", prompt: "x" },
              ],
            },
          ],
          UserPromptSubmit: [{ hooks: [{ type: "command", command: "b.sh" }] }],
        },
      }),
    );
    expect(loadRepoHooks(dir)).toEqual({
      SessionStart: [],
      PreToolUse: [{ matcher: "Bash", hooks: [{ command: "a.sh", timeout: 5 }] }],
      PostToolUse: [],
      Stop: [],
    });
    fs.writeFileSync(path.join(dir, ".claude/settings.json"), "{ nope");
    const warnings: string[] = [];
    expect(loadRepoHooks(dir, (w) => warnings.push(w))).toEqual({});
    expect(warnings[0]).toMatch(/ignoring/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  it("parses CLAUDE_ENV_FILE exports", () => {
    expect(parseEnvFile("export A=1\nB='two words'\n# c\nexport C=\"x=y\"\n")).toEqual({
      A: "1",
      B: "two words",
      C: "x=y",
    });
  });
});
