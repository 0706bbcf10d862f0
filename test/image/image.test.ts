/**
 * The runner image as Kubernetes runs it (Pod Security "restricted"): non-root, read-only root
 * filesystem, emptyDir volumes on /workspace and /home/runner, a termination log file mounted in.
 * Needs the image built by `make image` (runner-image/build.sh).
 */
import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeResult } from "../../core/result.ts";
import { PODMAN_GLOBAL_ARGS, PODMAN_RUN_ARGS, RUNNER_IMAGE } from "../world/podman.ts";

const exec = promisify(execFile);

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * emptyDir stand-ins: tmpfs, not seeded from the image. (runc gives such a tmpfs the mode of the
 * directory it covers, which the image makes 1777, and root ownership; a `mode=` option is ignored.)
 */
const EMPTY_DIRS = ["/workspace", "/home/runner", "/tmp"].flatMap((dir) => ["--tmpfs", `${dir}:rw,notmpcopyup`]);

async function podman(args: string[]): Promise<Ran> {
  try {
    const { stdout, stderr } = await exec("podman", [...PODMAN_GLOBAL_ARGS, ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === "ENOENT") throw new Error("podman is not installed: run make deps");
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** `podman run` the way the kubelet simulator does for a restricted pod. */
function run(extra: string[], command: string[] = []): Promise<Ran> {
  return podman([
    "run",
    "--rm",
    ...PODMAN_RUN_ARGS,
    "--read-only",
    "--read-only-tmpfs=false",
    "--cap-drop=all",
    "--security-opt=no-new-privileges",
    "--network=none",
    ...EMPTY_DIRS,
    ...extra,
    RUNNER_IMAGE,
    ...command,
  ]);
}

let dir: string;

beforeAll(async () => {
  const exists = await podman(["image", "exists", RUNNER_IMAGE]);
  if (exists.code !== 0) throw new Error(`image ${RUNNER_IMAGE} is missing: run make image`);
  dir = await mkdtemp(join(tmpdir(), "agentfactory-image-"));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("runner image", () => {
  it("is configured for a restricted pod: numeric non-root user, /workspace, node entrypoint, no secrets", async () => {
    const inspected = await podman(["image", "inspect", "--format", "{{json .Config}}", RUNNER_IMAGE]);
    expect(inspected.code).toBe(0);
    const config = JSON.parse(inspected.stdout) as {
      User: string;
      WorkingDir: string;
      Entrypoint: string[];
      Env: string[];
    };
    expect(config.User).toBe("10001:10001");
    expect(config.WorkingDir).toBe("/workspace");
    expect(config.Entrypoint).toEqual(["node", "--disable-sigusr1", "/opt/agentfactory/runner.mjs"]);
    expect(config.Env).toContain("HOME=/home/runner");
    expect(config.Env).toContain("NODE_OPTIONS=--enable-source-maps --disable-sigusr1");
    expect(config.Env.filter((e) => /TOKEN|SECRET|API_KEY|PASSWORD/i.test(e.split("=")[0] ?? ""))).toEqual([]);
  });

  it("runs its tools as uid 10001 on a read-only root with writable workspace and HOME", async () => {
    const script = [
      "set -e",
      'echo "uid=$(id -u) home=$HOME pwd=$(pwd)"',
      'echo "node=$(node --version)"',
      'git --version | sed "s/^/tool=/"',
      'rg --version | sed -n "1s/^/tool=/p"',
      "git config --global user.name runner && git config --global user.email runner@example.invalid",
      "git init -q -b main repo && cd repo && echo needle > a.txt && git add a.txt && git commit -q -m one",
      'echo "rg=$(rg -l needle)"',
      'echo "log=$(git log --format=%s)"',
      "if touch /opt/agentfactory/x 2>/dev/null; then echo root=writable; else echo root=read-only; fi",
    ].join("\n");
    const ran = await run(["--entrypoint", "sh"], ["-c", script]);
    expect(ran.stderr).toBe("");
    expect(ran.code).toBe(0);
    const lines = ran.stdout.trim().split("\n");
    expect(lines).toContain("uid=10001 home=/home/runner pwd=/workspace");
    expect(lines.find((l) => l.startsWith("node="))).toMatch(/^node=v24\.\d+\.\d+$/);
    expect(lines).toContainEqual(expect.stringMatching(/^tool=git version 2\./));
    expect(lines).toContainEqual(expect.stringMatching(/^tool=ripgrep \d+\./));
    expect(lines).toContain("rg=a.txt");
    expect(lines).toContain("log=one");
    expect(lines).toContain("root=read-only");
  });

  it("puts the hook CLI on PATH: it blocks a force push (exit 2) and allows ls", async () => {
    const hook = (command: string) =>
      `echo '${JSON.stringify({ hook_event_name: "PreToolUse", tool_name: "Bash", tool_input: { command }, cwd: "/workspace" })}' | agentfactory-hook safety; echo "rc=$?"`;
    const ran = await run(
      ["--entrypoint", "sh"],
      ["-c", [hook("git push --force origin main"), hook("ls")].join("\n")],
    );
    expect(ran.stdout.trim().split("\n")).toEqual(["rc=2", "rc=0"]);
    expect(ran.stderr).toMatch(/force/);
  });

  it("entrypoint without a stage configuration exits 2 with the reason on stderr and writes no result", async () => {
    const log = await terminationLog("unconfigured");
    const ran = await run(["-v", `${log}:/dev/termination-log`]);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(/invalid configuration: AGENTFACTORY_STAGE/);
    expect(await readFile(log, "utf8")).toBe("");
  });

  it("entrypoint writes one failed StageResult to the mounted termination log when the model is unreachable", async () => {
    const log = await terminationLog("failed");
    const secrets = {
      GITHUB_TOKEN: "ghs_imageTestToken0123456789",
      ANTHROPIC_API_KEY: "sk-ant-imageTestKey0123456789",
    };
    const ticket = {
      source: "github",
      id: "github:image-test",
      url: "http://127.0.0.1:2/o/r/issues/1",
      repo: "o/r",
      number: 1,
      title: "Add a /ready probe",
      body: "",
      author: "octocat",
      labels: ["ai-agent"],
      workItem: "1",
    };
    const env = {
      AGENTFACTORY_STAGE: "triage",
      AGENTFACTORY_RUN: "r-1-image",
      AGENTFACTORY_TICKET: JSON.stringify(ticket),
      AGENTFACTORY_MAX_RETRIES: "0",
      // Nothing listens there, and the container has no network besides loopback.
      ANTHROPIC_BASE_URL: "http://127.0.0.1:2",
      GITHUB_SERVER_URL: "http://127.0.0.1:2",
      GITHUB_API_URL: "http://127.0.0.1:2/api/v3",
      ...secrets,
    };
    const ran = await run([
      "-v",
      `${log}:/dev/termination-log`,
      ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
    ]);
    expect(ran.code).toBe(1);
    const message = await readFile(log, "utf8");
    const decoded = decodeResult(message);
    expect(decoded).toMatchObject({ ok: true, result: { stage: "triage", outcome: "failed" } });
    for (const secret of Object.values(secrets)) expect(`${ran.stdout}${ran.stderr}${message}`).not.toContain(secret);
  });
});

async function terminationLog(name: string): Promise<string> {
  // The kubelet creates the file; the runner (uid 10001) only writes it.
  const file = join(dir, name);
  await writeFile(file, "");
  await chmod(file, 0o666);
  return file;
}
