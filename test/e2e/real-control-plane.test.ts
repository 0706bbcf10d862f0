/**
 * The walking skeleton on the real Kubernetes control plane: a signed `issues.labeled` webhook → gateway → real
 * nats-server → the operator (on its chart ServiceAccount's token, in-cluster path) → AgentRun in the real API
 * server → triage, write and review Jobs admitted under Pod Security "restricted", bound by kube-scheduler, run
 * by the world's kubelet (Podman containers of the runner image, or processes), finished by the real Job
 * controller → a ready PR on the simulated GitHub, and the real kubectl reading the run from the real API server.
 */
import { execFile } from "node:child_process";
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
  world = await startWorld({ kubeletMode: mode, scenario: SCENARIO, controlPlane: "real" });
  await world.github.createRepo(REPO, CALC_FILES);
}, 180_000);

afterAll(async () => {
  await world?.stop();
});

describe(`on the real control plane, a labeled issue becomes a reviewed PR (kubelet: ${mode})`, () => {
  let agentRun: AgentRun;

  it("serves the world from kube-apiserver v1.34.4", () => {
    expect(world.kube.kind).toBe("real");
    expect(world.kube.version).toBe("v1.34.4");
  });

  it("runs triage, write and review as real Jobs and ends Ready with a ready PR", async () => {
    const issue = world.github.createIssue(REPO, { ...ISSUE, labels: ["ai-agent"] });
    const res = await world.deliver("issues", issuesLabeled(world.scope(REPO), issue, "ai-agent"), "delivery-1");
    expect(res.status).toBe(202);
    const created = await world.waitFor("the AgentRun", () => world.runs()[0], 60_000);
    agentRun = await world.waitFor(
      "a terminal phase",
      () => {
        const r = world.run(created.metadata.name);
        return r && isTerminal(r.status?.phase) ? r : undefined;
      },
      420_000,
    );
    expect(agentRun.status?.phase, JSON.stringify(agentRun.status, null, 2)).toBe("Ready");
    expect(agentRun.status?.stages.map((s) => `${s.name}:${s.outcome}`)).toEqual([
      "triage:Succeeded",
      "write:Succeeded",
      "review:Succeeded",
    ]);
    // One Job per stage attempt, each marked Complete by the real Job controller.
    const jobs = world.kube.list("jobs", NAMESPACE);
    expect(jobs.map((j) => j.metadata.name).sort()).toEqual(
      ["review", "triage", "write"].map((s) => `${agentRun.metadata.name}-${s}-1`),
    );
    for (const j of jobs)
      expect(j.status.conditions.map((c: { type: string }) => c.type)).toEqual(
        expect.arrayContaining(["SuccessCriteriaMet", "Complete"]),
      );
    // Every runner pod was bound by the scheduler and carries the admission's defaults (restricted namespace).
    const pods = world.kube.list("pods", NAMESPACE);
    expect(pods).toHaveLength(3);
    for (const p of pods) {
      expect(p.spec.nodeName).toBe(world.kube.cluster?.cp.nodeName);
      expect(p.spec.automountServiceAccountToken).toBe(false);
      expect(p.status.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 0, reason: "Completed" });
      // The agent's commands ran in the sandbox sidecar, stopped by the kubelet once the runner had ended.
      expect(p.status.initContainerStatuses).toHaveLength(1);
      expect(p.status.initContainerStatuses[0]).toMatchObject({ name: "sandbox", restartCount: 0, ready: false });
      expect(p.status.initContainerStatuses[0].state.terminated).toMatchObject({ exitCode: 0 });
    }
    const pulls = await world.github.pulls(REPO);
    expect(pulls).toHaveLength(1);
    expect(agentRun.status?.pullRequest).toMatchObject({ number: pulls[0]!.number, branch: pulls[0]!.head.ref });
    await world.waitFor(
      "the PR marked ready",
      async () => (await world.github.pull(REPO, pulls[0]!.number))?.draft === false,
      30_000,
    );
  }, 480_000);

  it("shows the run in the real kubectl against the real API server", async () => {
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
    expect(row).toContain("Ready");
  }, 30_000);
});
