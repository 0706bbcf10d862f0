/**
 * On the real control plane, a stage Job whose pod admission refuses (here the RuntimeClass admission plugin: the
 * configured RuntimeClass does not exist) never gets a pod. The real Job controller records a FailedCreate Warning
 * Event on the Job; the operator's Event informer sees it and fails the stage at once, typed, in the run's status
 * and an Event — not at the stage timeout (30 minutes here).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTerminal } from "../../core/agentrun.ts";
import { issuesLabeled } from "../world/github/index.ts";
import { CALC_FILES, ISSUE, REPO, SCENARIO } from "./scenario.ts";
import { KUBECTL, NAMESPACE, startWorld, type World } from "./world.ts";

const run = promisify(execFile);
let world: World;

beforeAll(async () => {
  world = await startWorld({
    kubeletMode: "process",
    scenario: SCENARIO,
    controlPlane: "real",
    operatorEnv: { RUNTIME_CLASS_NAME: "no-such-runtime", MAX_ATTEMPTS: "1", STAGE_TIMEOUT_SECONDS: "1800" },
  });
  await world.github.createRepo(REPO, CALC_FILES);
}, 180_000);

afterAll(async () => {
  await world?.stop();
});

describe("a stage pod that admission refuses (real control plane)", () => {
  it("fails the stage with FailedCreate from the Job controller's Event, long before the stage timeout", async () => {
    const issue = world.github.createIssue(REPO, { ...ISSUE, labels: ["ai-agent"] });
    const res = await world.deliver("issues", issuesLabeled(world.scope(REPO), issue, "ai-agent"), "delivery-fc");
    expect(res.status).toBe(202);
    const created = await world.waitFor("the AgentRun", () => world.runs()[0], 60_000);
    const done = await world.waitFor(
      "a terminal phase",
      () => {
        const r = world.run(created.metadata.name);
        return r && isTerminal(r.status?.phase) ? r : undefined;
      },
      120_000,
    );
    expect(done.status?.phase).toBe("Failed");
    const [triage] = done.status!.stages;
    expect(triage).toMatchObject({ name: "triage", outcome: "Error" });
    expect(triage!.message).toMatch(/^FailedCreate: .*RuntimeClass "no-such-runtime" not found/);
    // No pod was ever created; the Job is deleted (it would retry forever).
    expect(world.kube.list("pods", NAMESPACE)).toHaveLength(0);
    // The stage's Warning Event on the run names the typed reason.
    const { stdout } = await run(KUBECTL, [
      "--kubeconfig",
      world.kube.kubeconfigPath,
      "-n",
      NAMESPACE,
      "get",
      "events",
      "--field-selector",
      `involvedObject.kind=AgentRun,involvedObject.name=${created.metadata.name},reason=StageError`,
      "-o",
      "jsonpath={.items[*].message}",
    ]);
    expect(stdout).toMatch(/-triage-1: FailedCreate: /);
  }, 200_000);
});
