/**
 * The walking skeleton end to end: a signed `issues.labeled` webhook → gateway → real nats-server →
 * operator → AgentRun → triage, write and review Jobs run by the kubelet as Podman containers of the
 * runner image → a PR on the simulated GitHub whose branch makes the fixture's tests pass, marked
 * ready, and `kubectl get agentruns` (the real kubectl) showing the run.
 */
import { execFile } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentRun } from "../../core/agentrun.ts";
import { isTerminal } from "../../core/agentrun.ts";
import { issuesLabeled } from "../world/github/index.ts";
import { CALC_FILES, ISSUE, REPO, SCENARIO } from "./scenario.ts";
import { KUBECTL, NAMESPACE, startWorld, type World } from "./world.ts";

const run = promisify(execFile);
const mode = (process.env.KUBELET_MODE as "process" | "podman" | undefined) ?? "podman";
let world: World;

beforeAll(async () => {
  world = await startWorld({ kubeletMode: mode, scenario: SCENARIO });
  await world.github.createRepo(REPO, CALC_FILES);
}, 180_000);

afterAll(async () => {
  await world?.stop();
});

describe(`a labeled issue becomes a reviewed PR (kubelet: ${mode})`, () => {
  let agentRun: AgentRun;

  it("answers the signed webhook with 202 and creates one AgentRun", async () => {
    const issue = world.github.createIssue(REPO, { ...ISSUE, labels: ["ai-agent"] });
    const payload = issuesLabeled(world.scope(REPO), issue, "ai-agent");
    const res = await world.deliver("issues", payload, "delivery-1");
    expect(res.status).toBe(202);
    // GitHub redelivers the same delivery: still one run.
    const again = await world.deliver("issues", payload, "delivery-1");
    expect(again.status).toBe(202);
    agentRun = await world.waitFor("the AgentRun", () => world.runs()[0]);
    expect(agentRun.spec.ticket).toMatchObject({ repo: REPO, number: issue.number, source: "github" });
  }, 60_000);

  it("runs triage, write and review and ends Ready", async () => {
    const done = await world.waitFor(
      "a terminal phase",
      () => {
        const r = world.run(agentRun.metadata.name);
        return r && isTerminal(r.status?.phase) ? r : undefined;
      },
      420_000,
    );
    const stages = done.status?.stages ?? [];
    expect(done.status?.phase, JSON.stringify(done.status, null, 2)).toBe("Ready");
    expect(stages.map((s) => `${s.name}:${s.outcome}`)).toEqual([
      "triage:Succeeded",
      "write:Succeeded",
      "review:Succeeded",
    ]);
    expect(done.status?.costUsd).toBeGreaterThan(0);
    expect(world.runs()).toHaveLength(1);
    // One Job per stage attempt, named <run>-<stage>-<attempt>.
    const jobs = (world.kube.list("jobs", NAMESPACE) as Array<{ metadata: { name: string } }>).map(
      (j) => j.metadata.name,
    );
    expect(jobs.sort()).toEqual(["review", "triage", "write"].map((s) => `${agentRun.metadata.name}-${s}-1`));
    agentRun = done;
  }, 480_000);

  it("leaves a ready PR whose branch makes the fixture's tests pass", async () => {
    const pulls = await world.github.pulls(REPO);
    expect(pulls).toHaveLength(1);
    const pr = pulls[0]!;
    expect(pr.head.ref).toBe("agent/1-add-returns-the-wrong-result");
    expect(pr.body).toContain("Closes #1");
    expect(agentRun.status?.pullRequest).toMatchObject({ number: pr.number, branch: pr.head.ref });
    await world.waitFor(
      "the PR marked ready",
      async () => (await world.github.pull(REPO, pr.number))?.draft === false,
      30_000,
    );
    // Real git: clone the branch and run its tests.
    const dir = await mkdtemp(join(tmpdir(), "af-e2e-clone-"));
    const token = world.github.mintToken(REPO);
    await run("git", ["clone", "-q", "--branch", pr.head.ref, world.github.cloneUrl(REPO, token), dir]);
    const { stdout } = await run("git", ["-C", dir, "log", "--format=%s", "-1"]);
    expect(stdout).toMatch(/^feat\(agent\): add\(\) returns the wrong result/);
    const tests = await run("npm", ["test"], { cwd: dir });
    expect(tests.stdout).toMatch(/pass 1\b/);
    expect(tests.stdout).toMatch(/fail 0\b/);
  }, 60_000);

  it("shows the run in the real `kubectl get agentruns` with phase and cost", async () => {
    const { stdout } = await run(KUBECTL, [
      "--kubeconfig",
      world.kube.kubeconfigPath,
      "-n",
      NAMESPACE,
      "get",
      "agentruns",
    ]);
    const [header, row] = stdout.trim().split("\n");
    expect(header).toMatch(/^NAME\s+REPO\s+TICKET\s+PHASE\s+ROUND\s+COST\s+PR\s+AGE/);
    expect(row).toContain(agentRun.metadata.name);
    expect(row).toContain(REPO);
    expect(row).toContain("Ready");
    expect(row).toContain(String(agentRun.status?.costUsd));
    const short = await run(KUBECTL, [
      "--kubeconfig",
      world.kube.kubeconfigPath,
      "-n",
      NAMESPACE,
      "get",
      "ar",
      "-o",
      "name",
    ]);
    expect(short.stdout.trim()).toBe(`agentrun.agentfactory.dev/${agentRun.metadata.name}`);
  }, 30_000);
});
