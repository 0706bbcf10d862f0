import { spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadRepoHooks } from "../../runner-image/src/hooks/settings.ts";
import { ROOT } from "./harness.ts";

const TEMPLATE = path.join(ROOT, ".claude");
let project: string;

beforeAll(async () => {
  project = await fs.mkdtemp(path.join(os.tmpdir(), "af-template-"));
  await fs.cp(TEMPLATE, path.join(project, ".claude"), { recursive: true });
});
afterAll(() => fs.rm(project, { recursive: true, force: true }));

/** Runs a template hook as Claude Code would: JSON on stdin, CLAUDE_PROJECT_DIR set, PATH without agentfactory-hook. */
function hook(name: string, input: Record<string, unknown>, env: Record<string, string> = {}) {
  const r = spawnSync(path.join(project, ".claude/hooks", name), {
    input: JSON.stringify({ session_id: `s-${name}`, cwd: project, ...input }),
    encoding: "utf8",
    cwd: project,
    env: { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: project, CLAUDE_PROJECT_DIR: project, ...env },
  });
  return { code: r.status, stderr: r.stderr };
}

describe(".claude template", () => {
  it("settings.json wires the four hooks with Claude Code matchers", () => {
    const hooks = loadRepoHooks(project);
    expect(hooks.SessionStart?.[0]?.hooks[0]?.command).toContain("inject-env.sh");
    expect(hooks.PreToolUse?.[0]).toMatchObject({ matcher: "Bash" });
    expect(hooks.PostToolUse?.[0]).toMatchObject({ matcher: "Edit|Write|MultiEdit" });
    expect(hooks.Stop?.[0]?.hooks[0]?.command).toContain("require-tests-pass.sh");
  });

  it("enforce-tenant-safety reads tool_input.command and blocks with exit 2", () => {
    const bash = (command: string) => ({ hook_event_name: "PreToolUse", tool_name: "Bash", tool_input: { command } });
    const drop = hook("enforce-tenant-safety.sh", bash("psql -c 'DROP TABLE users'"));
    expect(drop.code).toBe(2);
    expect(drop.stderr).toMatch(/Blocked/);
    expect(hook("enforce-tenant-safety.sh", bash("ls -la")).code).toBe(0);
  });

  it("enforce-tenant-safety requires the tenant column on tenant tables", async () => {
    await fs.writeFile(path.join(project, ".claude/tenant-tables.txt"), "orders\n# comment\n");
    const bash = (command: string) => ({ hook_event_name: "PreToolUse", tool_name: "Bash", tool_input: { command } });
    expect(hook("enforce-tenant-safety.sh", bash('psql -c "DELETE FROM orders WHERE id = 3"')).code).toBe(2);
    expect(
      hook("enforce-tenant-safety.sh", bash('psql -c "DELETE FROM orders WHERE id = 3 AND tenant_id = 9"')).code,
    ).toBe(0);
    expect(hook("enforce-tenant-safety.sh", bash('psql -c "DELETE FROM logs WHERE id = 3"')).code).toBe(0);
  });

  it("require-tests-pass blocks the stop while the configured tests fail, bounded", async () => {
    await fs.writeFile(path.join(project, ".claude/test-command"), "echo 'expected 5 got -1'; exit 1\n");
    const stop = (active: boolean) => ({ hook_event_name: "Stop", stop_hook_active: active });
    const first = hook("require-tests-pass.sh", stop(false), { MAX_STOP_BLOCKS: "2" });
    expect(first.code).toBe(2);
    expect(first.stderr).toContain("expected 5 got -1");
    expect(hook("require-tests-pass.sh", stop(true), { MAX_STOP_BLOCKS: "2" }).code).toBe(2);
    expect(hook("require-tests-pass.sh", stop(true), { MAX_STOP_BLOCKS: "2" }).code).toBe(0);
    await fs.writeFile(path.join(project, ".claude/test-command"), "true\n");
    expect(hook("require-tests-pass.sh", stop(false)).code).toBe(0);
    // Inside the runner the hard gate runs the tests: the hook steps aside.
    await fs.writeFile(path.join(project, ".claude/test-command"), "exit 1\n");
    expect(hook("require-tests-pass.sh", stop(false), { AGENTFACTORY_RUNNER: "1" }).code).toBe(0);
  });

  it("inject-env exports the test environment through CLAUDE_ENV_FILE", async () => {
    await fs.writeFile(path.join(project, ".claude/test.env"), "DATABASE_URL=postgres://localhost/test\nnot a line\n");
    const envFile = path.join(project, "env.sh");
    await fs.writeFile(envFile, "");
    expect(hook("inject-env.sh", { hook_event_name: "SessionStart" }, { CLAUDE_ENV_FILE: envFile }).code).toBe(0);
    expect(await fs.readFile(envFile, "utf8")).toBe("export DATABASE_URL=postgres://localhost/test\n");
  });

  it("run-linter passes when the project has no linter for the file", async () => {
    await fs.writeFile(path.join(project, "a.txt"), "x");
    const r = hook("run-linter.sh", {
      hook_event_name: "PostToolUse",
      tool_name: "Write",
      tool_input: { file_path: path.join(project, "a.txt") },
    });
    expect(r.code).toBe(0);
  });
});
