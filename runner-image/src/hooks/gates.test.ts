import { describe, expect, it } from "vitest";
import type { HookInput } from "./engine.ts";
import { pathGate, safetyGate } from "./gates.ts";

const input = (tool: string, tool_input: Record<string, unknown>): HookInput => ({
  hook_event_name: "PreToolUse",
  session_id: "s",
  transcript_path: "",
  cwd: "/w",
  permission_mode: "default",
  tool_name: tool,
  tool_input,
});

describe("path gate", () => {
  const gate = pathGate("/w/repo", { readOnly: [".claude/settings.json", ".claude/hooks/"] });
  it.each([
    ["Read", { file_path: "src/a.ts" }, false],
    ["Read", { file_path: "/w/repo/src/a.ts" }, false],
    ["Read", { file_path: "../secrets" }, true],
    ["Read", { file_path: "/etc/passwd" }, true],
    ["Read", { file_path: "/w/repo/../../home/runner/.ssh/id_rsa" }, true],
    ["Grep", { pattern: "x", path: "/proc/1" }, true],
    ["Read", { file_path: ".claude/settings.json" }, false],
    ["Write", { file_path: ".claude/settings.json", content: "{}" }, true],
    ["Edit", { file_path: "/w/repo/.claude/hooks/run-linter.sh", old_string: "a", new_string: "b" }, true],
    ["Write", { file_path: ".claude/rules/patterns.md", content: "x" }, false],
  ])("%s %j blocked=%s", async (tool, ti, blocked) => {
    expect((await gate.check(input(tool, ti))).block).toBe(blocked);
  });
});

describe("safety gate", () => {
  it("judges a bare push by the checked-out branch, asked only when the command pushes", async () => {
    let asked = 0;
    const gate = safetyGate({
      workspace: "/w/repo",
      branch: "agent/1-x",
      currentBranch: () => {
        asked++;
        return "main";
      },
    });
    expect((await gate.check(input("Bash", { command: "git status" }))).block).toBe(false);
    expect(asked).toBe(0);
    const r = await gate.check(input("Bash", { command: "git push" }));
    expect(r.block).toBe(true);
    expect(asked).toBe(1);
  });
});
