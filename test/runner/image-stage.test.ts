/**
 * The write stage inside the runner image, run as a restricted pod would be (non-root, read-only root
 * filesystem, no capabilities, emptyDir tmpfs), against the GitHub and model simulators on the host
 * network. Needs the image from `make image`.
 */
import { execFile, spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { decodeResult } from "../../core/result.ts";
import { lastToolResults, type ModelSim, startModelSim, text, toolUse, turn } from "../world/anthropic/index.ts";
import { type GitHubSim, startGitHubSim } from "../world/github/index.ts";
import { PODMAN_GLOBAL_ARGS, PODMAN_RUN_ARGS, RUNNER_IMAGE } from "../world/podman.ts";
import { CALC_FILES, ticketFor } from "./harness.ts";

const REPO = "acme/calc";
let gh: GitHubSim;
let model: ModelSim;
let dir: string;

beforeAll(async () => {
  await promisify(execFile)("podman", [...PODMAN_GLOBAL_ARGS, "image", "exists", RUNNER_IMAGE]).catch(() => {
    throw new Error(`runner image ${RUNNER_IMAGE} is missing: run make image (podman: make deps)`);
  });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "af-image-stage-"));
  gh = await startGitHubSim();
  await gh.createRepo(REPO, CALC_FILES);
  gh.createIssue(REPO, { title: "add() is wrong", body: "add(2, 3) gives -1", user: "alice" });
  model = await startModelSim({
    scenario: {
      write: [
        turn(toolUse("Edit", { file_path: "src/add.js", old_string: "return a - b;", new_string: "return a + b;" })),
        turn(toolUse("Bash", { command: "id -u; pwd" })),
        turn(text("add() now adds.")),
      ],
    },
  });
}, 120_000);

afterAll(async () => {
  await model?.stop();
  await gh?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

it("runs the write stage in the image: draft PR, result in the termination log, runs as the restricted user", async () => {
  const log = path.join(dir, "termination-log");
  await fs.writeFile(log, "");
  await fs.chmod(dir, 0o777);
  await fs.chmod(log, 0o666);
  const token = gh.mintToken(REPO);
  const env = {
    AGENTFACTORY_STAGE: "write",
    AGENTFACTORY_RUN: "calc-1-image",
    AGENTFACTORY_TICKET: JSON.stringify(ticketFor(REPO, 1, "add() is wrong", "add(2, 3) gives -1")),
    AGENTFACTORY_MODEL: "claude-sonnet-4-6",
    AGENTFACTORY_TERMINATION_LOG: "/dev/termination-log",
    GITHUB_API_URL: gh.apiUrl,
    GITHUB_SERVER_URL: gh.serverUrl,
    GITHUB_TOKEN: token,
    ANTHROPIC_API_KEY: "sk-ant-image-test-0123456789",
    ANTHROPIC_BASE_URL: model.url,
    HOME: "/home/runner",
  };
  const args = [
    ...PODMAN_GLOBAL_ARGS,
    "run",
    "--rm",
    ...PODMAN_RUN_ARGS,
    "--network=host",
    "--read-only",
    "--read-only-tmpfs=false",
    "--cap-drop=all",
    "--security-opt=no-new-privileges",
    ...["/workspace", "/home/runner", "/tmp"].flatMap((d) => ["--tmpfs", `${d}:rw,notmpcopyup`]),
    "-v",
    `${log}:/dev/termination-log`,
    ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
    RUNNER_IMAGE,
  ];
  // Async: the simulators answer from this process's event loop while the container runs.
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn("podman", args);
    let output = "";
    child.stdout.on("data", (b: Buffer) => (output += b));
    child.stderr.on("data", (b: Buffer) => (output += b));
    child.on("close", (c) => resolve({ code: c, output }));
  });
  expect(code, output).toBe(0);
  const decoded = decodeResult(await fs.readFile(log, "utf8"));
  expect(decoded.ok && decoded.result).toMatchObject({
    outcome: "succeeded",
    write: { branch: "agent/1-add-is-wrong" },
  });
  expect(await gh.readFile(REPO, "agent/1-add-is-wrong", "src/add.js")).toContain("a + b");
  const bash = model.requests.flatMap((r) => lastToolResults(r.body)).find((t) => t.name === "Bash");
  expect(bash?.content).toMatch(/^10001\n\/workspace\/repo\n/);
  expect(output).not.toContain(token);
}, 180_000);
