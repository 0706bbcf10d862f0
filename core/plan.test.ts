import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AgentRun,
  AgentRunSpec,
  type AgentRunSpecInput,
  AgentRunStatus,
  isTerminal,
  type Phase,
} from "./agentrun.ts";
import { jobName } from "./names.ts";
import { type Action, DEFAULT_PLAN_OPTIONS, type ObservedJob, type Plan, type PlanOptions, plan } from "./plan.ts";
import { type StageName, StageResult, type StageResultInput } from "./result.ts";
import { reportedVerification, type Verification } from "./verify.ts";

const RUN = "demo-7-0123abcd";
const T0 = Date.parse("2026-03-01T10:00:00.000Z");
const job = (stage: StageName, attempt: number) => jobName(RUN, stage, attempt);

const res = (stage: StageName, extra: Partial<StageResultInput> = {}): StageResult =>
  StageResult.parse({
    stage,
    outcome: "succeeded",
    summary: `${stage} done`,
    model: "claude-x",
    costUsd: 0.1,
    ...extra,
  });

const R = {
  clear: res("triage", { triage: { verdict: "clear", riskTier: "low" } }),
  unclear: res("triage", {
    triage: { verdict: "unclear", question: "Which endpoint?", defaultAssumption: "the public one" },
  }),
  write: res("write", {
    costUsd: 1.25,
    turns: 30,
    usage: { input: 1000, output: 200, cacheRead: 5000, cacheWrite: 300 },
    write: {
      prNumber: 42,
      prUrl: "https://github.com/acme/demo/pull/42",
      branch: "agent/7-add-a-health-endpoint", // branchName() of the run's ticket
      headSha: "aaa111",
    },
  }),
  clean: res("review", {
    review: { riskTier: "medium", checks: { gate: "success", tests: "success" }, findings: { total: 1, blocking: 0 } },
  }),
  blocking: res("review", {
    review: { riskTier: "high", checks: { gate: "success", review: "failure" }, findings: { total: 3, blocking: 2 } },
  }),
  remediate: res("remediate", { remediate: { headSha: "bbb222" } }),
  failed: (stage: StageName) => res(stage, { outcome: "failed", summary: "cannot do it" }),
};

/** The operator's loop in miniature: applies createJob/deleteJob to a set of Jobs and keeps the status. */
class World {
  run: AgentRun;
  jobs = new Map<string, ObservedJob>();
  nowMs = T0;
  last!: Plan;
  created: string[] = [];

  constructor(
    spec: Partial<AgentRunSpecInput> = {},
    readonly opts: PlanOptions = DEFAULT_PLAN_OPTIONS,
  ) {
    this.run = {
      apiVersion: "agentfactory.dev/v1alpha1",
      kind: "AgentRun",
      metadata: { name: RUN, namespace: "agentfactory", generation: 1 },
      spec: AgentRunSpec.parse({
        ticket: {
          source: "github",
          id: "github:delivery-1",
          workItem: "gh-7",
          url: "https://github.com/acme/demo/issues/7",
          repo: "acme/demo",
          number: 7,
          title: "Add a health endpoint",
          body: "Please add /healthz",
          author: "alice",
        },
        model: { name: "claude-x" },
        ...spec,
      }),
    };
  }

  get now(): Date {
    return new Date(this.nowMs);
  }

  /** Plans, checks that planning again is a fixed point, applies the actions and stores the status. */
  plan(): Plan {
    const p = plan(this.run, [...this.jobs.values()], this.now, this.opts);
    const again = plan({ ...this.run, status: p.status }, [...this.jobs.values()], this.now, this.opts);
    expect(again.actions.filter((a) => a.type === "createJob" || a.type === "deleteJob")).toEqual([]);
    expect(again.status).toEqual(p.status);
    for (const a of p.actions) {
      if (a.type === "createJob") {
        expect(this.jobs.has(a.jobName), `${a.jobName} created twice`).toBe(false);
        expect(a.jobName).toBe(job(a.stage, a.attempt));
        this.jobs.set(a.jobName, {
          name: a.jobName,
          stage: a.stage,
          attempt: a.attempt,
          state: "Active",
          startTime: this.now.toISOString(),
        });
        this.created.push(`${a.stage}-${a.attempt}`);
      }
      if (a.type === "deleteJob") this.jobs.delete(a.jobName);
    }
    // What the API server stores: JSON, without undefined members.
    this.run = { ...this.run, status: JSON.parse(JSON.stringify(p.status)) };
    this.last = p;
    return p;
  }

  private activeJob(): ObservedJob {
    const active = [...this.jobs.values()].filter((j) => j.state === "Active");
    expect(active).toHaveLength(1);
    return active[0]!;
  }

  /**
   * The running Job ends with `result` (state from its outcome) after `seconds`. A succeeded write,
   * remediate or review result carries what the operator checked on the forge: by default what the
   * pod reported (core/verify.ts `reportedVerification`), or `verification`.
   */
  finish(result: StageResult, seconds = 60, verification?: Verification): void {
    this.nowMs += seconds * 1000;
    const j = this.activeJob();
    expect(j.stage).toBe(result.stage);
    Object.assign(j, {
      state: result.outcome === "succeeded" ? "Succeeded" : "Failed",
      completionTime: this.now.toISOString(),
      result,
      ...(result.outcome === "succeeded" && result.stage !== "triage"
        ? { verification: verification ?? reportedVerification(this.run.spec.ticket, result, this.run.status) }
        : {}),
    });
  }

  /** The running Job's pod dies without a result. */
  crash(infraError = "OOMKilled", seconds = 30): void {
    this.nowMs += seconds * 1000;
    Object.assign(this.activeJob(), { state: "Failed", completionTime: this.now.toISOString(), infraError });
  }

  wait(seconds: number): void {
    this.nowMs += seconds * 1000;
  }

  reply(body = "the admin one"): void {
    const spec = this.run.spec;
    this.run = {
      ...this.run,
      metadata: { ...this.run.metadata, generation: (this.run.metadata.generation ?? 1) + 1 },
      spec: {
        ...spec,
        clarifications: [...spec.clarifications, { author: "alice", body, at: this.now.toISOString() }],
      },
    };
  }

  suspend(): void {
    this.run = { ...this.run, spec: { ...this.run.spec, suspend: true } };
  }
}

const creates = (p: Plan) =>
  p.actions.flatMap((a) => (a.type === "createJob" ? [`${a.stage}-${a.attempt}`] : ([] as string[])));
const deletes = (p: Plan) => p.actions.flatMap((a) => (a.type === "deleteJob" ? [a.jobName] : ([] as string[])));
const requeue = (p: Plan) => p.actions.find((a): a is Extract<Action, { type: "requeue" }> => a.type === "requeue");
const succeeded = (p: Plan) => p.status.conditions.find((c) => c.type === "Succeeded");

interface Step {
  /** What happens in the world before the operator plans. */
  do: (w: World) => void;
  phase: Phase;
  creates?: string[];
  deletes?: string[];
  requeueAfter?: number;
  /** Reason of the Succeeded condition. */
  reason?: string;
  finalize?: boolean;
}

interface Scenario {
  name: string;
  spec?: Partial<AgentRunSpecInput>;
  opts?: Partial<PlanOptions>;
  steps: Step[];
}

const start: Step = { do: () => {}, phase: "Triaging", creates: ["triage-1"], reason: "Triaging" };
const toWriting: Step = { do: (w) => w.finish(R.clear), phase: "Writing", creates: ["write-1"], reason: "Writing" };
const toReview: Step = { do: (w) => w.finish(R.write), phase: "Reviewing", creates: ["review-1"] };

const scenarios: Scenario[] = [
  {
    name: "happy path: triage clear, write, review clean → Ready",
    steps: [
      start,
      { do: () => {}, phase: "Triaging", creates: [], requeueAfter: 1800 },
      { do: (w) => w.wait(600), phase: "Triaging", creates: [], requeueAfter: 1200 },
      toWriting,
      toReview,
      { do: (w) => w.finish(R.clean), phase: "Ready", creates: [], reason: "Clean", finalize: true },
      { do: (w) => w.wait(5), phase: "Ready", creates: [], reason: "Clean", finalize: true },
    ],
  },
  {
    name: "unclear triage waits for a reply, then triages again with it",
    steps: [
      start,
      { do: (w) => w.finish(R.unclear), phase: "AwaitingReply", creates: [], requeueAfter: 24 * 3600 },
      { do: (w) => w.wait(3600), phase: "AwaitingReply", creates: [], requeueAfter: 23 * 3600 },
      { do: (w) => w.reply(), phase: "Triaging", creates: ["triage-2"] },
      toWriting,
      toReview,
      { do: (w) => w.finish(R.clean), phase: "Ready", finalize: true },
    ],
  },
  {
    name: "no reply within 24h: proceed on the default assumption",
    steps: [
      start,
      { do: (w) => w.finish(R.unclear), phase: "AwaitingReply", creates: [] },
      { do: (w) => w.wait(24 * 3600 - 1), phase: "AwaitingReply", creates: [], requeueAfter: 1 },
      { do: (w) => w.wait(1), phase: "Writing", creates: ["write-1"] },
    ],
  },
  {
    name: "a shorter reply wait is honoured",
    opts: { replyWaitSeconds: 600 },
    steps: [
      start,
      { do: (w) => w.finish(R.unclear), phase: "AwaitingReply", requeueAfter: 600 },
      { do: (w) => w.wait(600), phase: "Writing", creates: ["write-1"] },
    ],
  },
  {
    name: "after the third question the run proceeds on its default",
    steps: [
      start,
      { do: (w) => w.finish(R.unclear), phase: "AwaitingReply" },
      { do: (w) => w.reply(), phase: "Triaging", creates: ["triage-2"] },
      { do: (w) => w.finish(R.unclear), phase: "AwaitingReply" },
      { do: (w) => w.reply(), phase: "Triaging", creates: ["triage-3"] },
      { do: (w) => w.finish(R.unclear), phase: "Writing", creates: ["write-1"] },
    ],
  },
  {
    name: "blocking findings: two remediation rounds, then Escalated",
    steps: [
      start,
      toWriting,
      toReview,
      { do: (w) => w.finish(R.blocking), phase: "Remediating", creates: ["remediate-1"], reason: "Remediating" },
      { do: (w) => w.finish(R.remediate), phase: "Reviewing", creates: ["review-2"] },
      { do: (w) => w.finish(R.blocking), phase: "Remediating", creates: ["remediate-2"] },
      { do: (w) => w.finish(R.remediate), phase: "Reviewing", creates: ["review-3"] },
      { do: (w) => w.finish(R.blocking), phase: "Escalated", creates: [], reason: "RemediationLimit", finalize: true },
    ],
  },
  {
    name: "remediation fixes the findings in round 1 → Ready",
    steps: [
      start,
      toWriting,
      toReview,
      { do: (w) => w.finish(R.blocking), phase: "Remediating", creates: ["remediate-1"] },
      { do: (w) => w.finish(R.remediate), phase: "Reviewing", creates: ["review-2"] },
      { do: (w) => w.finish(R.clean), phase: "Ready", reason: "Clean", finalize: true },
    ],
  },
  {
    name: "maxRemediationRounds 0 escalates on the first blocking review",
    spec: { maxRemediationRounds: 0 },
    steps: [
      start,
      toWriting,
      toReview,
      { do: (w) => w.finish(R.blocking), phase: "Escalated", creates: [], reason: "RemediationLimit", finalize: true },
    ],
  },
  ...(["triage", "write", "review", "remediate"] as const).map(
    (stage): Scenario => ({
      name: `the agent's own failure in ${stage} → Failed (not retried)`,
      steps: [
        start,
        ...(stage === "triage" ? [] : [toWriting]),
        ...(stage === "triage" || stage === "write" ? [] : [toReview]),
        ...(stage === "remediate"
          ? [{ do: (w: World) => w.finish(R.blocking), phase: "Remediating" as const, creates: ["remediate-1"] }]
          : []),
        { do: (w) => w.finish(R.failed(stage)), phase: "Failed", creates: [], reason: "StageFailed", finalize: true },
      ],
    }),
  ),
  {
    name: "the model gateway's budget refusal in write → Escalated BudgetExhausted (not retried)",
    steps: [
      start,
      toWriting,
      {
        do: (w) => w.finish(res("write", { outcome: "failed", summary: "budget exhausted", budgetExhausted: true })),
        phase: "Escalated",
        creates: [],
        reason: "BudgetExhausted",
        finalize: true,
      },
    ],
  },
  {
    name: "infrastructure errors are retried after 10s, 20s, then RetriesExhausted",
    steps: [
      start,
      { do: (w) => w.crash(), phase: "Triaging", creates: [], requeueAfter: 10 },
      { do: (w) => w.wait(9), phase: "Triaging", creates: [], requeueAfter: 1 },
      { do: (w) => w.wait(1), phase: "Triaging", creates: ["triage-2"] },
      { do: (w) => w.crash("Evicted"), phase: "Triaging", creates: [], requeueAfter: 20 },
      { do: (w) => w.wait(20), phase: "Triaging", creates: ["triage-3"] },
      { do: (w) => w.crash(), phase: "Failed", creates: [], reason: "RetriesExhausted", finalize: true },
    ],
  },
  {
    name: "a retried stage that then succeeds carries on",
    steps: [
      start,
      toWriting,
      { do: (w) => w.crash(), phase: "Writing", requeueAfter: 10 },
      { do: (w) => w.wait(10), phase: "Writing", creates: ["write-2"] },
      { do: (w) => w.finish(R.write), phase: "Reviewing", creates: ["review-1"] },
    ],
  },
  {
    name: "backoff is exponential and capped",
    opts: { maxAttempts: 10, backoffBaseSeconds: 10, backoffMaxSeconds: 60 },
    steps: [
      start,
      { do: (w) => w.crash(), phase: "Triaging", requeueAfter: 10 },
      { do: (w) => w.wait(10), phase: "Triaging", creates: ["triage-2"] },
      { do: (w) => w.crash(), phase: "Triaging", requeueAfter: 20 },
      { do: (w) => w.wait(20), phase: "Triaging", creates: ["triage-3"] },
      { do: (w) => w.crash(), phase: "Triaging", requeueAfter: 40 },
      { do: (w) => w.wait(40), phase: "Triaging", creates: ["triage-4"] },
      { do: (w) => w.crash(), phase: "Triaging", requeueAfter: 60 },
      { do: (w) => w.wait(60), phase: "Triaging", creates: ["triage-5"] },
      { do: (w) => w.crash(), phase: "Triaging", requeueAfter: 60 },
    ],
  },
  {
    name: "a stage past its timeout is deleted and retried",
    spec: { stageTimeoutSeconds: 300 },
    steps: [
      start,
      { do: () => {}, phase: "Triaging", creates: [], requeueAfter: 300 },
      { do: (w) => w.wait(299), phase: "Triaging", creates: [], deletes: [], requeueAfter: 1 },
      { do: (w) => w.wait(1), phase: "Triaging", creates: [], deletes: [job("triage", 1)], requeueAfter: 10 },
      { do: (w) => w.wait(10), phase: "Triaging", creates: ["triage-2"], deletes: [] },
      { do: (w) => w.finish(R.clear), phase: "Writing", creates: ["write-1"] },
    ],
  },
  {
    name: "budget: a stage is not started with less than minStageBudgetUsd left",
    spec: { budgetUsd: 1.3 },
    steps: [
      start,
      toWriting,
      // write costs 1.25 after triage's 0.10: 1.35 spent of 1.30.
      { do: (w) => w.finish(R.write), phase: "Escalated", creates: [], reason: "BudgetExhausted", finalize: true },
    ],
  },
  {
    name: "budget: exactly the minimum left still starts the stage",
    spec: { budgetUsd: 0.15 },
    opts: { minStageBudgetUsd: 0.05 },
    steps: [start, { do: (w) => w.finish(R.clear), phase: "Writing", creates: ["write-1"] }],
  },
  {
    name: "suspend while a stage runs: its Job is deleted, Cancelled",
    steps: [
      start,
      toWriting,
      {
        do: (w) => w.suspend(),
        phase: "Cancelled",
        creates: [],
        deletes: [job("write", 1)],
        reason: "Cancelled",
        finalize: true,
      },
      { do: (w) => w.wait(30), phase: "Cancelled", creates: [], deletes: [], finalize: true },
    ],
  },
  {
    name: "suspend while awaiting a reply: Cancelled, nothing to delete",
    steps: [
      start,
      { do: (w) => w.finish(R.unclear), phase: "AwaitingReply" },
      { do: (w) => w.suspend(), phase: "Cancelled", creates: [], deletes: [], reason: "Cancelled", finalize: true },
    ],
  },
  {
    name: "suspend before anything started",
    steps: [{ do: (w) => w.suspend(), phase: "Cancelled", creates: [], deletes: [], finalize: true }],
  },
];

describe("plan(): lifecycle table", () => {
  it.each(scenarios)("$name", ({ spec, opts, steps }) => {
    const w = new World(spec, { ...DEFAULT_PLAN_OPTIONS, ...opts });
    steps.forEach((step, i) => {
      step.do(w);
      const p = w.plan();
      const where = `step ${i}`;
      expect(p.status.phase, where).toBe(step.phase);
      if (step.creates) expect(creates(p), where).toEqual(step.creates);
      if (step.deletes) expect(deletes(p), where).toEqual(step.deletes);
      if (step.requeueAfter !== undefined) expect(requeue(p)?.afterSeconds, where).toBe(step.requeueAfter);
      if (step.reason) expect(succeeded(p)?.reason, where).toBe(step.reason);
      const fin = p.actions.filter((a) => a.type === "finalize");
      expect(fin, where).toEqual(step.finalize ? [{ type: "finalize", phase: step.phase }] : []);
    });
  });
});

/** Runs a world through `n` steps of the happy path. */
function writing(spec: Partial<AgentRunSpecInput> = {}, opts: Partial<PlanOptions> = {}): World {
  const w = new World(spec, { ...DEFAULT_PLAN_OPTIONS, ...opts });
  w.plan();
  w.finish(R.clear);
  w.plan();
  return w;
}

describe("plan(): details", () => {
  it("creates the triage Job named by jobName() on a fresh run and records the start", () => {
    const w = new World();
    const p = w.plan();
    expect(p.actions).toContainEqual({ type: "createJob", stage: "triage", attempt: 1, jobName: job("triage", 1) });
    expect(p.status.startTime).toBe(new Date(T0).toISOString());
    expect(p.status.stages).toEqual([
      expect.objectContaining({ name: "triage", attempt: 1, jobName: job("triage", 1), outcome: "Running" }),
    ]);
    expect(p.status.observedGeneration).toBe(1);
    expect(p.events.map((e) => e.reason)).toEqual(["StageStarted", "PhaseChanged"]);
  });

  it("records the pull request from write and the new head from remediation", () => {
    const w = writing();
    w.finish(R.write);
    expect(w.plan().status.pullRequest).toEqual({
      number: 42,
      url: "https://github.com/acme/demo/pull/42",
      branch: "agent/7-add-a-health-endpoint",
      headSha: "aaa111",
    });
    w.finish(R.blocking);
    expect(w.plan().status.round).toBe(1);
    w.finish(R.remediate);
    const p = w.plan();
    expect(p.status.pullRequest?.headSha).toBe("bbb222");
    expect(p.status.pullRequest?.number).toBe(42);
  });

  it("takes the risk tier from triage, then from review", () => {
    const w = writing();
    expect(w.last.status.riskTier).toBe("low");
    w.finish(R.write);
    w.plan();
    w.finish(R.blocking);
    expect(w.plan().status.riskTier).toBe("high");
  });

  it("folds stage cost, tokens, turns, model and duration into status and totals the cost", () => {
    const w = writing();
    w.finish(R.write, 90);
    const p = w.plan();
    const write = p.status.stages.find((s) => s.name === "write")!;
    expect(write).toMatchObject({
      outcome: "Succeeded",
      costUsd: 1.25,
      turns: 30,
      model: "claude-x",
      tokens: { input: 1000, output: 200, cacheRead: 5000, cacheWrite: 300 },
      durationSeconds: 90,
      message: "write done",
    });
    expect(p.status.costUsd).toBe(1.35);
  });

  it("prefers the runner's own durationMs over the Job's wall clock", () => {
    const w = writing();
    w.finish({ ...R.write, durationMs: 45_500 }, 90);
    expect(w.plan().status.stages.find((s) => s.name === "write")?.durationSeconds).toBe(45.5);
  });

  it("sums costs without floating point noise", () => {
    const w = new World();
    w.plan();
    w.finish({ ...R.clear, costUsd: 0.1 });
    w.plan();
    w.finish({ ...R.write, costUsd: 0.2 });
    expect(w.plan().status.costUsd).toBe(0.3);
  });

  it("counts a question once however often the waiting run is planned", () => {
    const w = new World();
    w.plan();
    w.finish(R.unclear);
    for (let i = 0; i < 5; i++) {
      w.wait(600);
      expect(w.plan().status.questions).toBe(1);
    }
    const asked = w.last.status.conditions.find((c) => c.type === "AwaitingReply");
    expect(asked).toMatchObject({ status: "True", reason: "QuestionAsked" });
    w.reply();
    const p = w.plan();
    expect(p.status.questions).toBe(1);
    expect(p.status.conditions.find((c) => c.type === "AwaitingReply")).toMatchObject({
      status: "False",
      reason: "Replied",
    });
    w.finish(R.unclear);
    expect(w.plan().status.questions).toBe(2);
  });

  it("emits QuestionAsked once, with the question", () => {
    const w = new World();
    w.plan();
    w.finish(R.unclear);
    expect(w.plan().events.filter((e) => e.reason === "QuestionAsked")).toEqual([
      { type: "Normal", reason: "QuestionAsked", message: "Which endpoint?" },
    ]);
    w.wait(60);
    expect(w.plan().events).toEqual([]);
  });

  it("keeps waiting for a reply after the finished triage Job was removed (TTL)", () => {
    const w = new World();
    w.plan();
    w.finish(R.unclear);
    w.plan();
    w.jobs.clear();
    w.wait(7200);
    const p = w.plan();
    expect(p.status.phase).toBe("AwaitingReply");
    expect(creates(p)).toEqual([]);
    expect(p.status.questions).toBe(1);
    w.reply();
    expect(creates(w.plan())).toEqual(["triage-2"]);
  });

  it("after the wait, proceeds on the default with a ProceededOnDefault condition", () => {
    const w = new World();
    w.plan();
    w.finish(R.unclear);
    w.plan();
    w.wait(24 * 3600);
    const p = w.plan();
    expect(p.status.conditions.find((c) => c.type === "AwaitingReply")).toMatchObject({
      status: "False",
      reason: "ProceededOnDefault",
    });
    expect(p.events).toContainEqual({ type: "Normal", reason: "ProceedingOnDefault", message: "the public one" });
  });

  it("retries count only consecutive errors, not errors of earlier rounds", () => {
    const w = writing();
    w.finish(R.write);
    w.plan();
    w.crash(); // review-1 errors
    w.wait(10);
    w.plan();
    expect(creates(w.last)).toEqual(["review-2"]);
    w.finish(R.blocking);
    w.plan();
    w.finish(R.remediate);
    w.plan();
    w.crash(); // review-3 errors
    const p = w.plan();
    expect(p.status.phase).toBe("Reviewing");
    expect(requeue(p)?.afterSeconds).toBe(10);
    w.wait(10);
    w.plan();
    w.crash(); // review-4 errors: 2 in a row, 3 in all
    expect(w.plan().status.phase).toBe("Reviewing");
  });

  it("records why a stage errored and warns about it", () => {
    const w = new World();
    w.plan();
    w.crash("invalid stage result: expected object");
    const p = w.plan();
    expect(p.status.stages[0]).toMatchObject({ outcome: "Error", message: "invalid stage result: expected object" });
    expect(p.events).toContainEqual({
      type: "Warning",
      reason: "StageError",
      message: `${job("triage", 1)}: invalid stage result: expected object`,
    });
  });

  it("a Job that ends Succeeded without a result is an infrastructure error", () => {
    const w = new World();
    w.plan();
    w.wait(30);
    Object.assign(w.jobs.get(job("triage", 1))!, { state: "Succeeded", completionTime: w.now.toISOString() });
    const p = w.plan();
    expect(p.status.stages[0]).toMatchObject({ outcome: "Error", message: "pod ended without a result" });
    expect(p.status.phase).toBe("Triaging");
  });

  it("RetriesExhausted reports the stage and the last error", () => {
    const w = new World({}, { ...DEFAULT_PLAN_OPTIONS, maxAttempts: 1 });
    w.plan();
    w.crash("Evicted");
    const p = w.plan();
    expect(p.status).toMatchObject({ phase: "Failed", message: "triage failed 1 times: Evicted" });
    expect(succeeded(p)).toMatchObject({ status: "False", reason: "RetriesExhausted" });
  });

  it("a timed-out Job still listed while it is being deleted is not deleted or retried again", () => {
    const w = new World({ stageTimeoutSeconds: 60 });
    w.plan();
    w.wait(60);
    const jobsBefore = [...w.jobs.values()];
    const p = plan(w.run, jobsBefore, w.now);
    expect(deletes(p)).toEqual([job("triage", 1)]);
    expect(p.events.map((e) => e.reason)).toContain("StageTimeout");
    const again = plan({ ...w.run, status: p.status }, jobsBefore, new Date(w.nowMs + 5000));
    expect(again.actions).toEqual([{ type: "requeue", afterSeconds: 5 }]);
    expect(again.status.stages[0]?.message).toBe("timed out after 60s");
  });

  it("does not start a stage when the budget is gone and says how much was left", () => {
    const w = writing({ budgetUsd: 1 });
    w.finish({ ...R.write, costUsd: 0.88 });
    const p = w.plan();
    expect(p.status.phase).toBe("Escalated");
    expect(p.status.message).toBe("$0.0200 left of $1");
    expect(succeeded(p)).toMatchObject({ status: "False", reason: "BudgetExhausted" });
    expect(creates(p)).toEqual([]);
  });

  it("checks the budget before each remediation round too", () => {
    const w = writing({ budgetUsd: 1.48 }); // 1.45 spent after the first review
    w.finish(R.write);
    w.plan();
    w.finish(R.blocking);
    const p = w.plan();
    expect(p.status.phase).toBe("Escalated");
    expect(succeeded(p)?.reason).toBe("BudgetExhausted");
  });

  it("marks every running stage cancelled on suspend", () => {
    const w = writing();
    w.suspend();
    const p = w.plan();
    expect(p.status.stages.at(-1)).toMatchObject({ outcome: "Error", message: "cancelled" });
    expect(p.status.completionTime).toBe(w.now.toISOString());
    expect(p.status.message).toBe("spec.suspend was set");
  });

  it("a terminal run only finalizes, until the Finalized condition is True", () => {
    const w = writing();
    w.finish(R.write);
    w.plan();
    w.finish(R.clean);
    const done = w.plan();
    expect(done.status.completionTime).toBe(w.now.toISOString());
    // Jobs and spec changes no longer matter.
    w.wait(3600);
    w.jobs.set("stray", { name: "stray", stage: "write", attempt: 9, state: "Active" });
    w.suspend();
    const p = plan(w.run, [...w.jobs.values()], w.now);
    expect(p.actions).toEqual([{ type: "finalize", phase: "Ready" }]);
    expect(p.status).toEqual(w.run.status);
    const finalized = {
      ...w.run,
      status: {
        ...w.run.status!,
        conditions: [
          ...w.run.status!.conditions,
          {
            type: "Finalized",
            status: "True" as const,
            reason: "Done",
            message: "",
            lastTransitionTime: w.now.toISOString(),
          },
        ],
      },
    };
    expect(plan(finalized, [], w.now).actions).toEqual([]);
    const notYet = structuredClone(finalized);
    notYet.status.conditions.at(-1)!.status = "False";
    expect(plan(notYet, [], w.now).actions).toEqual([{ type: "finalize", phase: "Ready" }]);
  });
});

describe("plan(): results the forge does not confirm", () => {
  const unverified = (reason: string): Verification => ({ ok: false, reason });

  it("fails the run on an unverified write: no pull request recorded, no review started, never Ready", () => {
    const w = writing();
    w.finish(R.write, 60, unverified("pull request #42 is on main, not the run's branch"));
    const p = w.plan();
    expect(p.status.phase).toBe("Failed");
    expect(p.status.pullRequest).toBeUndefined();
    expect(creates(p)).toEqual([]);
    expect(succeeded(p)).toMatchObject({ status: "False", reason: "ResultUnverified" });
    expect(p.status.conditions.find((c) => c.type === "ResultVerified")).toMatchObject({
      status: "False",
      reason: "ResultUnverified",
    });
    expect(p.events).toContainEqual(
      expect.objectContaining({
        type: "Warning",
        reason: "ResultUnverified",
        message: expect.stringContaining("main"),
      }),
    );
    expect(p.status.stages.at(-1)).toMatchObject({ outcome: "Failed", costUsd: 1.25 });
    expect(p.actions).toEqual([{ type: "finalize", phase: "Failed" }]);
  });

  it("fails the run on an unverified clean review instead of marking it Ready", () => {
    const w = writing();
    w.finish(R.write);
    w.plan();
    w.finish(R.clean, 60, unverified("the App posted no review for review attempt 1"));
    const p = w.plan();
    expect(p.status.phase).toBe("Failed");
    expect(succeeded(p)?.reason).toBe("ResultUnverified");
  });

  it("takes the pull request and the verdict from the verification, not from the pod's result", () => {
    const w = writing();
    const forgePr = {
      number: 42,
      url: "https://forge/pull/42",
      branch: "agent/7-add-a-health-endpoint",
      headSha: "f0",
    };
    w.finish({ ...R.write, write: { ...R.write.write!, headSha: "pod-says" } }, 60, { ok: true, pullRequest: forgePr });
    expect(w.plan().status.pullRequest).toEqual(forgePr);
    // The pod claims a clean review; the App's review on the forge has a blocking finding.
    const forgeReview = { riskTier: "high" as const, checks: {}, blocking: 1, total: 1 };
    w.finish(R.clean, 60, { ok: true, pullRequest: forgePr, review: forgeReview });
    const p = w.plan();
    expect(p.status.phase).toBe("Remediating");
    expect(p.status.riskTier).toBe("high");
  });

  it("fails a succeeded result that carries no verification at all", () => {
    const w = writing();
    w.finish(R.write);
    w.plan();
    const j = [...w.jobs.values()].find((x) => x.state === "Active")!;
    Object.assign(j, { state: "Succeeded", completionTime: w.now.toISOString(), result: R.clean });
    const p = w.plan();
    expect(p.status.phase).toBe("Failed");
    expect(succeeded(p)?.reason).toBe("ResultUnverified");
  });

  it("without the App, takes the pod's figures but never its branch", () => {
    const w = writing();
    const elsewhere = { ...R.write, write: { ...R.write.write!, branch: "main" } };
    w.finish(elsewhere);
    const p = w.plan();
    expect(p.status.phase).toBe("Failed");
    expect(p.status.message).toContain("the run's branch is agent/7-add-a-health-endpoint");
  });
});

describe("plan(): adoption and idempotency", () => {
  it("adopts a Job that exists but is missing from status instead of creating it again", () => {
    const w = new World();
    const first = w.plan();
    // The status write after creating the Job was lost.
    const lost: AgentRun = { ...w.run, status: undefined };
    const p = plan(lost, [...w.jobs.values()], w.now);
    expect(creates(p)).toEqual([]);
    expect(p.status.stages).toEqual(first.status.stages);
    expect(p.status.phase).toBe("Triaging");
  });

  it("adopts the next stage's Job when the status still shows the previous one running", () => {
    const w = new World();
    w.plan();
    const stale = w.run;
    w.finish(R.clear);
    w.plan(); // creates write-1, but this status is "lost"
    const p = plan(stale, [...w.jobs.values()], w.now);
    expect(creates(p)).toEqual([]);
    expect(p.status.phase).toBe("Writing");
    expect(p.status.stages.map((s) => [s.jobName, s.outcome])).toEqual([
      [job("triage", 1), "Succeeded"],
      [job("write", 1), "Running"],
    ]);
  });

  it("adopts several Jobs in the order they started, whatever order they are listed in", () => {
    const w = new World();
    w.plan();
    const stale = w.run;
    w.finish(R.clear);
    w.plan();
    w.finish(R.write);
    w.plan();
    const listed = [...w.jobs.values()].sort((a, b) => a.name.localeCompare(b.name)); // review, triage, write
    const p = plan(stale, listed, w.now);
    expect(creates(p)).toEqual([]);
    expect(p.status.stages.map((s) => s.name)).toEqual(["triage", "write", "review"]);
    expect(p.status.phase).toBe("Reviewing");
  });

  it("gives an adopted Job without a start time a deadline anyway", () => {
    const w = new World({ stageTimeoutSeconds: 100 });
    const bare: ObservedJob = { name: job("triage", 1), stage: "triage", attempt: 1, state: "Active" };
    const p1 = plan(w.run, [bare], w.now);
    expect(creates(p1)).toEqual([]);
    expect(p1.status.stages[0]?.startTime).toBe(w.now.toISOString());
    const p2 = plan({ ...w.run, status: p1.status }, [bare], new Date(w.nowMs + 100_000));
    expect(deletes(p2)).toEqual([job("triage", 1)]);
  });

  it("an observed Job never yields a createJob of the same name, at any point of a long run", () => {
    const w = writing();
    w.finish(R.write);
    w.plan();
    w.finish(R.blocking);
    w.plan();
    w.crash();
    w.plan();
    w.wait(10);
    w.plan();
    w.finish(R.remediate);
    w.plan();
    w.finish(R.clean);
    w.plan();
    expect(w.created).toEqual(["triage-1", "write-1", "review-1", "remediate-1", "remediate-2", "review-2"]);
    expect(new Set(w.created).size).toBe(w.created.length);
    expect(w.last.status.phase).toBe("Ready");
  });
});

describe("plan(): conditions", () => {
  it("keeps Succeeded Unknown with the phase as reason while running", () => {
    const w = new World();
    expect(succeeded(w.plan())).toMatchObject({
      status: "Unknown",
      reason: "Triaging",
      message: "run is Triaging",
      observedGeneration: 1,
    });
  });

  it("keeps lastTransitionTime while the status stays Unknown, and moves it when it changes", () => {
    const w = new World();
    const t0 = succeeded(w.plan())?.lastTransitionTime;
    expect(t0).toBe(new Date(T0).toISOString());
    w.finish(R.clear);
    const writingCond = succeeded(w.plan());
    expect(writingCond).toMatchObject({ reason: "Writing", lastTransitionTime: t0 });
    w.finish(R.write);
    w.plan();
    w.finish(R.clean);
    const ready = succeeded(w.plan());
    expect(ready).toMatchObject({ status: "True", reason: "Clean", lastTransitionTime: w.now.toISOString() });
    expect(ready?.lastTransitionTime).not.toBe(t0);
  });

  it("returns an unchanged status object when nothing happened (so the operator writes nothing)", () => {
    const w = writing();
    w.wait(30);
    const before = w.run.status;
    const p = plan(w.run, [...w.jobs.values()], w.now);
    expect(p.status).toEqual(before);
    expect(p.events).toEqual([]);
  });

  it("stamps conditions with the generation planned from", () => {
    const w = new World();
    w.plan();
    w.finish(R.unclear);
    w.plan();
    w.reply();
    const p = w.plan();
    expect(p.status.observedGeneration).toBe(2);
    expect(p.status.conditions.find((c) => c.type === "AwaitingReply")?.observedGeneration).toBe(2);
  });

  it.each([
    ["Ready", R.clean, "True", "Clean"],
    ["Escalated", R.blocking, "False", "RemediationLimit"],
    ["Failed", R.failed("review"), "False", "StageFailed"],
  ] as const)("terminal %s sets Succeeded=%s", (phase, review, status, reason) => {
    const w = writing({ maxRemediationRounds: 0 });
    w.finish(R.write);
    w.plan();
    w.finish(review);
    const p = w.plan();
    expect(p.status.phase).toBe(phase);
    expect(succeeded(p)).toMatchObject({ status, reason });
    expect(p.events.at(-1)).toMatchObject({ type: phase === "Ready" ? "Normal" : "Warning", reason });
  });
});

describe("plan(): random walks", () => {
  type Event = "succeed" | "fail" | "crash" | "wait" | "reply" | "suspend";
  const results: Record<StageName, StageResult[]> = {
    triage: [R.clear, R.unclear],
    write: [R.write],
    review: [R.clean, R.blocking],
    remediate: [R.remediate],
  };

  it("keeps its invariants whatever happens, in any order", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            event: fc.constantFrom<Event>("succeed", "succeed", "succeed", "crash", "wait", "reply", "fail", "suspend"),
            pick: fc.nat(),
            seconds: fc.integer({ min: 1, max: 30 * 3600 }),
          }),
          { maxLength: 40 },
        ),
        fc.integer({ min: 1, max: 20 }),
        (events, budget) => {
          const w = new World({ budgetUsd: budget / 4, stageTimeoutSeconds: 3600 });
          w.plan();
          for (const { event, pick, seconds } of events) {
            const before = w.run.status!;
            const active = [...w.jobs.values()].find((j) => j.state === "Active");
            if (event === "succeed" && active) {
              const options = results[active.stage];
              w.finish(options[pick % options.length]!, seconds % 7200);
            } else if (event === "fail" && active && pick % 4 === 0) w.finish(R.failed(active.stage));
            else if (event === "crash" && active) w.crash("Evicted", seconds % 600);
            else if (event === "reply" && before.phase === "AwaitingReply") w.reply();
            else if (event === "suspend" && pick % 5 === 0) w.suspend();
            else w.wait(seconds);
            // World.plan() asserts: no Job created twice, names from jobName(), re-planning is a fixed point.
            const p = w.plan();
            const s = p.status;
            expect(AgentRunStatus.parse(s)).toEqual(AgentRunStatus.parse(JSON.parse(JSON.stringify(s))));
            if (isTerminal(before.phase)) {
              expect(s.phase).toBe(before.phase);
              expect(p.actions).toEqual([{ type: "finalize", phase: before.phase }]);
            }
            expect(s.stages.filter((st) => st.outcome === "Running").length).toBeLessThanOrEqual(1);
            expect(s.costUsd).toBeCloseTo(
              s.stages.reduce((sum, st) => sum + st.costUsd, 0),
              6,
            );
            expect(s.round).toBeLessThanOrEqual(w.run.spec.maxRemediationRounds);
            expect(s.questions).toBeLessThanOrEqual(DEFAULT_PLAN_OPTIONS.maxQuestions);
            expect(p.actions.filter((a) => a.type === "createJob").length).toBeLessThanOrEqual(1);
            expect(s.conditions.filter((c) => c.type === "Succeeded")).toHaveLength(1);
            const succeededStatus = succeeded(p)?.status;
            expect(succeededStatus).toBe(!isTerminal(s.phase) ? "Unknown" : s.phase === "Ready" ? "True" : "False");
          }
        },
      ),
      { numRuns: 150, seed: 20260301 },
    );
  });
});
