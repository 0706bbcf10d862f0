/**
 * The egress gateway wired in (issue 11): with EGRESS_ENABLED the operator reserves each stage attempt
 * on the real egress gateway (egress/main.ts as a process, its ledger in the real nats-server) and gives
 * the stage pod only an attempt token; the runner reaches the simulated model and forge through the
 * gateway. A labeled issue still becomes a reviewed PR; the pods held no model key and no forge token;
 * the run's spend is the ledger's; a run whose budget cannot cover one request ends BudgetExhausted on
 * the gateway's refusal. Kubelet mode from KUBELET_MODE (default podman: the runner image, host network).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentRun, isTerminal } from "../../core/agentrun.ts";
import { attemptTokenKey, verifyAttemptToken } from "../../core/attempt-token.ts";
import { ATTEMPT_TOKEN_KEY } from "../../operator/job.ts";
import { ATTEMPT_KEY, logged, readRun } from "../egress/harness.ts";
import { issuesLabeled } from "../world/github/index.ts";
import { CALC_FILES, ISSUE, REPO, SCENARIO } from "./scenario.ts";
import { MODEL_KEY, NAMESPACE, startWorld, type World } from "./world.ts";

const mode = (process.env.KUBELET_MODE as "process" | "podman" | undefined) ?? "podman";

// biome-ignore lint/suspicious/noExplicitAny: API objects read loosely by tests
type Obj = Record<string, any>;

async function labeledRun(world: World, delivery: string): Promise<AgentRun> {
  const issue = world.github.createIssue(REPO, { ...ISSUE, labels: ["ai-agent"] });
  const res = await world.deliver("issues", issuesLabeled(world.scope(REPO), issue, "ai-agent"), delivery);
  expect(res.status).toBe(202);
  const run = await world.waitFor("the AgentRun", () => world.runs()[0]);
  return world.waitFor(
    "a terminal phase",
    () => {
      const r = world.run(run.metadata.name);
      return r && isTerminal(r.status?.phase) ? r : undefined;
    },
    300_000,
  );
}

describe(`with the egress gateway on, a labeled issue becomes a reviewed PR (kubelet: ${mode})`, () => {
  let world: World;
  let done: AgentRun;

  beforeAll(async () => {
    world = await startWorld({ kubeletMode: mode, controlPlane: "sim", scenario: SCENARIO, egress: true });
    await world.github.createRepo(REPO, CALC_FILES);
    done = await labeledRun(world, "egress-1");
  }, 360_000);
  afterAll(async () => {
    await world?.stop();
  });

  it("ends Ready with a PR opened through the gateway", async () => {
    expect(done.status?.phase, JSON.stringify(done.status, null, 2)).toBe("Ready");
    expect(done.status?.stages.map((s) => `${s.name}:${s.outcome}`)).toEqual([
      "triage:Succeeded",
      "write:Succeeded",
      "review:Succeeded",
    ]);
    const pulls = await world.github.pulls(REPO);
    expect(pulls.map((p) => p.head.ref)).toEqual([done.status?.pullRequest?.branch]);
    // The model calls, the git fetches and pushes and the forge API calls of the stages went through the gateway.
    const allowed = await world.waitFor("the gateway's log lines", () => {
      const kinds = new Set(world.egress!.entries().flatMap((e) => (e.decision === "allowed" ? [e.kind] : [])));
      return kinds.size === 3 ? kinds : undefined;
    });
    expect([...allowed].sort()).toEqual(["api", "git", "model"]);
    expect(world.egress!.entries().some((e) => e.kind === "git" && String(e.path).endsWith("git-receive-pack"))).toBe(
      true,
    );
  });

  it("gave the stage pods only an attempt token: no model key, no forge token", async () => {
    const sim = world.kube.sim!;
    const jobs = sim.list("jobs", NAMESPACE) as Obj[];
    expect(jobs).toHaveLength(3);
    const key = attemptTokenKey(ATTEMPT_KEY);
    for (const job of jobs) {
      const spec = JSON.stringify(job.spec.template.spec);
      expect(spec).not.toContain("agentfactory-model"); // the model key Secret is not referenced
      expect(spec).not.toContain(MODEL_KEY);
      const env = Object.fromEntries(
        (job.spec.template.spec.containers[0].env as Obj[]).map((e) => [e.name, e.value ?? e.valueFrom]),
      );
      expect(env.ANTHROPIC_BASE_URL).toBe(world.egress!.url);
      expect(env.GITHUB_API_URL).toBe(`${world.egress!.url}/api/v3`);
      expect(env.GITHUB_SERVER_URL).toBe(world.egress!.url);
      for (const name of ["ANTHROPIC_API_KEY", "GITHUB_TOKEN"]) {
        expect(env[name]).toEqual({ secretKeyRef: { name: job.metadata.name, key: ATTEMPT_TOKEN_KEY } });
      }
      const secret = sim.get("secrets", NAMESPACE, job.metadata.name) as Obj;
      expect(Object.keys(secret.data)).toEqual([ATTEMPT_TOKEN_KEY]);
      const token = Buffer.from(secret.data[ATTEMPT_TOKEN_KEY], "base64").toString();
      expect(token).not.toBe(MODEL_KEY);
      // It is an attempt token for exactly this stage attempt (so it is not an installation token).
      const verified = await verifyAttemptToken(token, key);
      expect(verified).toMatchObject({
        run: { namespace: NAMESPACE, name: done.metadata.name, uid: done.metadata.uid },
        stage: job.metadata.labels["agentfactory.dev/stage"],
        attempt: Number(job.metadata.labels["agentfactory.dev/attempt"]),
        repo: REPO,
      });
    }
  });

  it("reports the ledger's spend in the AgentRun status, and ended every attempt", async () => {
    const ledger = await readRun(world.egress!.adminUrl, { namespace: NAMESPACE, name: done.metadata.name, uid: "" });
    expect(ledger.spentUsd).toBeGreaterThan(0);
    expect(done.status?.costUsd).toBeCloseTo(ledger.spentUsd, 6);
    await world.waitFor(
      "every attempt ended on the gateway",
      async () => {
        const v = await readRun(world.egress!.adminUrl, { namespace: NAMESPACE, name: done.metadata.name, uid: "" });
        return Object.values(v.stages).every((s) => s.ended && !s.forgeToken) ? v : undefined;
      },
      30_000,
    );
  });
});

describe("with the egress gateway on, a budget too small for one request", () => {
  let world: World;
  let done: AgentRun;

  beforeAll(async () => {
    world = await startWorld({
      kubeletMode: mode,
      controlPlane: "sim",
      scenario: SCENARIO,
      egress: true,
      // Enough to start a stage; not enough for the gateway's worst-case hold of one request.
      operatorEnv: { DEFAULT_BUDGET_USD: "0.02", MIN_STAGE_BUDGET_USD: "0.01" },
    });
    await world.github.createRepo(REPO, CALC_FILES);
    done = await labeledRun(world, "egress-budget-1");
  }, 360_000);
  afterAll(async () => {
    await world?.stop();
  });

  it("ends BudgetExhausted on the gateway's refusal, with nothing sent to the model", async () => {
    expect(done.status?.phase, JSON.stringify(done.status, null, 2)).toBe("Escalated");
    const ready = done.status?.conditions.find((c) => c.reason === "BudgetExhausted");
    expect(ready, JSON.stringify(done.status?.conditions)).toBeDefined();
    expect(done.status?.stages.map((s) => `${s.name}:${s.outcome}`)).toEqual(["triage:Failed"]);
    expect(done.status?.stages[0]?.message).toMatch(/budget exhausted: the model gateway refused/);
    // The gateway's own log line of the refusal (logs are written asynchronously: waited for).
    const refusal = await logged(
      world.egress!,
      (e) => e.kind === "model" && e.decision === "refused" && e.reason === "budget_exhausted",
    );
    expect(refusal).toMatchObject({ status: 402, run: `${NAMESPACE}/${done.metadata.name}`, stage: "triage" });
    const ledger = await readRun(world.egress!.adminUrl, { namespace: NAMESPACE, name: done.metadata.name, uid: "" });
    expect(ledger.refused).toBeGreaterThanOrEqual(1);
    expect(ledger.spentUsd).toBe(0);
    expect(world.model.requests).toHaveLength(0);
    expect(done.status?.costUsd).toBe(0);
  });
});
