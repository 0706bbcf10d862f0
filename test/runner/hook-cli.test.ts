import { spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hookCli, transcriptSpend } from "../../runner-image/src/hook-cli.ts";
import { ROOT } from "./harness.ts";

const BIN = path.join(ROOT, "runner-image/bin/agentfactory-hook");
let project: string;

beforeAll(async () => {
  project = await fs.mkdtemp(path.join(os.tmpdir(), "af-hookcli-"));
});
afterAll(() => fs.rm(project, { recursive: true, force: true }));

const preBash = (command: string) => ({
  session_id: "s",
  transcript_path: "",
  cwd: project,
  hook_event_name: "PreToolUse",
  tool_name: "Bash",
  tool_input: { command },
});

async function run(gate: string, input: unknown, env: Record<string, string> = {}) {
  let stderr = "";
  const code = await hookCli([gate], {
    stdin: JSON.stringify(input),
    env: { PATH: process.env.PATH, CLAUDE_PROJECT_DIR: project, ...env },
    stderr: (s) => {
      stderr += s;
    },
  });
  return { code, stderr };
}

describe("agentfactory-hook (the executable, as Claude Code runs it)", () => {
  it("blocks with exit 2 and the reason on stderr, reading Claude Code's tool_input.command", () => {
    const r = spawnSync(BIN, ["safety"], {
      input: JSON.stringify(preBash("rm -rf ~")),
      encoding: "utf8",
      cwd: project,
      env: { ...process.env, CLAUDE_PROJECT_DIR: project },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/safety gate: deletes outside the workspace/);
  });
  it("allows ordinary commands with exit 0", () => {
    const r = spawnSync(BIN, ["safety"], {
      input: JSON.stringify(preBash("npm test")),
      encoding: "utf8",
      cwd: project,
      env: { ...process.env, CLAUDE_PROJECT_DIR: project },
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe("");
  });
});

describe("hook gates", () => {
  it("safety ignores other tools and fails closed on garbage input", async () => {
    expect((await run("safety", { ...preBash(""), tool_name: "Read", tool_input: { file_path: "x" } })).code).toBe(0);
    let stderr = "";
    const code = await hookCli(["safety"], { stdin: "not json", env: {}, stderr: (s) => (stderr += s) });
    expect(code).toBe(2);
  });
  it("safety honours AGENTFACTORY_BRANCH", async () => {
    const env = { AGENTFACTORY_BRANCH: "agent/3-x" };
    expect((await run("safety", preBash("git push origin agent/3-x"), env)).code).toBe(0);
    expect((await run("safety", preBash("git push origin agent/4-y"), env)).code).toBe(2);
  });
  it("paths keeps file tools in the project", async () => {
    const input = { ...preBash(""), tool_name: "Read", tool_input: { file_path: "/etc/passwd" } };
    expect((await run("paths", input)).code).toBe(2);
    expect((await run("paths", { ...input, tool_input: { file_path: "src/a.ts" } })).code).toBe(0);
    expect((await run("paths", { ...input, tool_input: { file_path: `${os.homedir()}/.ssh/id_rsa` } })).stderr).toMatch(
      /credential|outside/,
    );
  });
  it("redact flags tool output carrying secrets", async () => {
    const post = {
      ...preBash("cat .env"),
      hook_event_name: "PostToolUse",
      tool_response: { stdout: "TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789" },
    };
    expect((await run("redact", post)).code).toBe(2);
    expect((await run("redact", { ...post, tool_response: { stdout: "all good" } })).code).toBe(0);
  });
  it("budget reads the transcript, counting each message once", async () => {
    const transcript = path.join(project, "t.jsonl");
    const usage = {
      input_tokens: 100_000,
      output_tokens: 10_000,
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
    };
    const line = (id: string) =>
      JSON.stringify({ type: "assistant", message: { id, model: "claude-sonnet-4-6", usage } });
    await fs.writeFile(
      transcript,
      [line("m1"), line("m1"), line("m2"), JSON.stringify({ type: "user", message: {} })].join("\n"),
    );
    expect(transcriptSpend(transcript)).toEqual({ costUsd: expect.closeTo(2 * (0.3 + 0.15), 6), turns: 2 });
    const input = { ...preBash("ls"), transcript_path: transcript };
    expect((await run("budget", input, { AGENTFACTORY_BUDGET_USD: "0.5" })).stderr).toMatch(
      /Budget exhausted: \$0\.9000 of \$0\.50/,
    );
    expect((await run("budget", input, { AGENTFACTORY_BUDGET_USD: "5", AGENTFACTORY_MAX_TURNS: "2" })).code).toBe(2);
    expect((await run("budget", input, { AGENTFACTORY_BUDGET_USD: "5" })).code).toBe(0);
  });
  it("tests blocks Stop while tests fail, then gives up after the limit", async () => {
    const stop = {
      session_id: `s-${Date.now()}`,
      transcript_path: "",
      cwd: project,
      hook_event_name: "Stop",
      stop_hook_active: false,
    };
    const env = { AGENTFACTORY_TEST_COMMAND: "echo 'boom: 1 failing'; exit 1", AGENTFACTORY_MAX_STOP_BLOCKS: "2" };
    const first = await run("tests", stop, env);
    expect(first.code).toBe(2);
    expect(first.stderr).toContain("boom: 1 failing");
    expect((await run("tests", { ...stop, stop_hook_active: true }, env)).code).toBe(2);
    expect((await run("tests", { ...stop, stop_hook_active: true }, env)).code).toBe(0);
    expect((await run("tests", stop, { AGENTFACTORY_TEST_COMMAND: "true" })).code).toBe(0);
  });
  it("prints usage for an unknown gate without blocking", async () => {
    const r = await run("nope", {});
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/usage: agentfactory-hook/);
  });
});
