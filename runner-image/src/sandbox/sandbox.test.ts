import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exitStatus } from "./executor.ts";
import { LocalExecutor, procStat } from "./local.ts";
import { ownsPidNamespace, type Sandbox, startSandbox } from "./server.ts";
import { SocketExecutor } from "./socket.ts";

let dir: string;
const env = () => ({ PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir });

/** Alive means a process that is not a zombie (an orphan's zombie waits for its reaper). */
const alive = (pid: number) => {
  const s = procStat(pid);
  return s !== undefined && s.state !== "Z" && s.state !== "X";
};
const pidsIn = (file: string) => fs.readFileSync(file, "utf8").split(/\s+/).filter(Boolean).map(Number);

/** Leaves three kinds of background processes behind: plain, in a subshell, and in a new session. */
const LEAVE_BEHIND = (file: string) =>
  [
    `sleep 300 & echo $! >> ${file}`,
    `(sleep 301 & echo $! >> ${file})`,
    `setsid sh -c 'echo $$ >> ${file}; exec sleep 302' < /dev/null > /dev/null 2>&1 &`,
    `for i in 1 2 3 4 5 6 7 8 9 10; do [ "$(wc -l < ${file})" -ge 3 ] && break; sleep 0.1; done`,
    "echo left-behind",
  ].join("\n");

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "af-sandbox-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("LocalExecutor", () => {
  const exec = new LocalExecutor();

  it("keeps stdout and stderr apart, and interleaved in output; reports the exit code; feeds stdin", async () => {
    const r = await exec.run({
      command: "read line; echo out:$line; echo err >&2; exit 3",
      cwd: dir,
      env: env(),
      timeoutMs: 10_000,
      stdin: "hello\n",
    });
    expect(r).toMatchObject({ stdout: "out:hello\n", stderr: "err\n", exitCode: 3, signal: null, timedOut: false });
    expect(r.output).toContain("out:hello");
    expect(r.output).toContain("err");
  });

  it("runs with the environment it is given (plus the call marker), never this process's", async () => {
    process.env.AF_PARENT_ONLY = "parent-secret";
    try {
      const r = await exec.run({ command: "env", cwd: dir, env: { PATH: "/usr/bin:/bin", A: "1" }, timeoutMs: 10_000 });
      expect(r.stdout).toMatch(/^A=1$/m);
      expect(r.stdout).toMatch(/^AGENTFACTORY_CALL=[0-9a-f-]{36}$/m);
      expect(r.stdout).not.toContain("parent-secret");
    } finally {
      delete process.env.AF_PARENT_ONLY;
    }
  });

  it("returns what a command wrote to CLAUDE_ENV_FILE", async () => {
    const r = await exec.run({
      command: 'echo "export FOO=bar" >> "$CLAUDE_ENV_FILE"',
      cwd: dir,
      env: env(),
      timeoutMs: 10_000,
      envFile: true,
    });
    expect(r.envFile).toBe("export FOO=bar\n");
  });

  it("kills the call at its timeout", async () => {
    const r = await exec.run({ command: "sleep 30", cwd: dir, env: env(), timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe("SIGKILL");
    expect(exitStatus(r)).toBe(137);
  });

  it("kills what the call left running, setsid children included, when the shell exits", async () => {
    const file = path.join(dir, "pids-local");
    fs.writeFileSync(file, "");
    const r = await exec.run({ command: LEAVE_BEHIND(file), cwd: dir, env: env(), timeoutMs: 10_000 });
    expect(r.stdout).toBe("left-behind\n");
    const pids = pidsIn(file);
    expect(pids).toHaveLength(3);
    expect(pids.filter(alive)).toEqual([]);
  });

  it("kills the call's processes when aborted", async () => {
    const file = path.join(dir, "pids-abort");
    const ac = new AbortController();
    const running = exec.run(
      { command: `setsid sh -c 'echo $$ > ${file}; exec sleep 303' & wait`, cwd: dir, env: env(), timeoutMs: 30_000 },
      ac.signal,
    );
    for (let i = 0; i < 200 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 25));
    const [pid] = pidsIn(file);
    expect(alive(pid!)).toBe(true); // positive control: the child was running
    ac.abort();
    await running;
    expect(alive(pid!)).toBe(false);
  });
});

describe("sandbox server and SocketExecutor", () => {
  let sandbox: Sandbox;
  let client: SocketExecutor;
  let socketPath: string;
  let sandboxHome: string;
  let previousHome: string | undefined;

  beforeAll(async () => {
    socketPath = path.join(dir, "run", "sandbox.sock");
    sandboxHome = fs.mkdtempSync(path.join(dir, "home-"));
    previousHome = process.env.HOME;
    process.env.HOME = sandboxHome;
    sandbox = await startSandbox({ socketPath });
    process.env.HOME = previousHome;
    client = new SocketExecutor(socketPath, { connectTimeoutMs: 5000 });
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  it("sweeps only the call's processes here: this process does not own its PID namespace", () => {
    expect(ownsPidNamespace()).toBe(false);
    expect(sandbox.scope).toBe("call");
  });

  it("runs a call and answers with its result; HOME is the sandbox's own", async () => {
    const r = await client.run({
      command: 'cat; echo "home=$HOME"; echo warn >&2; exit 4',
      cwd: dir,
      env: { ...env(), HOME: "/home/runner-private" },
      timeoutMs: 10_000,
      stdin: "in\n",
    });
    expect(r).toMatchObject({ stdout: `in\nhome=${sandboxHome}\n`, stderr: "warn\n", exitCode: 4, timedOut: false });
  });

  it("kills what a call left behind before answering", async () => {
    const file = path.join(dir, "pids-socket");
    fs.writeFileSync(file, "");
    const r = await client.run({ command: LEAVE_BEHIND(file), cwd: dir, env: env(), timeoutMs: 10_000 });
    expect(r.stdout).toBe("left-behind\n");
    const pids = pidsIn(file);
    expect(pids).toHaveLength(3);
    expect(pids.filter(alive)).toEqual([]);
  });

  it("kills the call when the runner hangs up (abort)", async () => {
    const file = path.join(dir, "pids-hangup");
    const ac = new AbortController();
    const running = client.run(
      { command: `echo $$ > ${file}; sleep 304`, cwd: dir, env: env(), timeoutMs: 30_000 },
      ac.signal,
    );
    for (let i = 0; i < 200 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 25));
    const [pid] = pidsIn(file);
    expect(alive(pid!)).toBe(true);
    ac.abort();
    expect((await running).stderr).toContain("aborted");
    for (let i = 0; i < 200 && alive(pid!); i++) await new Promise((r) => setTimeout(r, 25));
    expect(alive(pid!)).toBe(false);
  });

  it("runs concurrent calls one after the other", async () => {
    const log = path.join(dir, "order");
    const call = (n: number) =>
      client.run({
        command: `echo start-${n} >> ${log}; sleep 0.2; echo end-${n} >> ${log}`,
        cwd: dir,
        env: env(),
        timeoutMs: 10_000,
      });
    await Promise.all([call(1), call(2)]);
    const lines = fs.readFileSync(log, "utf8").trim().split("\n");
    expect(lines.map((l) => l.replace(/-\d/, ""))).toEqual(["start", "end", "start", "end"]);
  });

  it("waits for a sandbox that is still starting, and reports one that never comes", async () => {
    const late = path.join(dir, "late", "s.sock");
    const pending = new SocketExecutor(late, { connectTimeoutMs: 10_000 }).run({
      command: "echo late",
      cwd: dir,
      env: env(),
      timeoutMs: 5000,
    });
    await new Promise((r) => setTimeout(r, 300));
    const lateSandbox = await startSandbox({ socketPath: late });
    expect((await pending).stdout).toBe("late\n");
    await lateSandbox.close();
    const missing = await new SocketExecutor(path.join(dir, "none.sock"), { connectTimeoutMs: 200 }).run({
      command: "echo x",
      cwd: dir,
      env: env(),
      timeoutMs: 5000,
    });
    expect(missing.exitCode).toBeNull();
    expect(missing.stderr).toMatch(/not reachable/);
  });
});
