import {
  type AgentRun,
  type AgentRunStatus,
  type Condition,
  isTerminal,
  type Phase,
  type StageStatus,
} from "./agentrun.ts";
import { jobName } from "./names.ts";
import type { StageName, StageResult } from "./result.ts";
import { zeroTokens } from "./usage.ts";
import { UNVERIFIED_REASON, VERIFIED_STAGES, type Verification, type VerifiedReview } from "./verify.ts";

/** A stage Job as the operator observed it (Job conditions + the pod's termination message). */
export interface ObservedJob {
  name: string;
  stage: StageName;
  attempt: number;
  state: "Active" | "Succeeded" | "Failed";
  startTime?: string;
  completionTime?: string;
  /** The decoded termination message, when the runner wrote a valid one. */
  result?: StageResult;
  /** Why the pod ended without a valid result: OOMKilled, Evicted, DeadlineExceeded, an invalid message… */
  infraError?: string;
  /**
   * What the forge confirmed of a succeeded write, remediate or review result (core/verify.ts). The
   * pull request and the review verdict come from here, never from `result`; a succeeded result of
   * those stages without an `ok` verification fails the run (ResultUnverified).
   */
  verification?: Verification;
}

export type Action =
  | { type: "createJob"; stage: StageName; attempt: number; jobName: string }
  | { type: "deleteJob"; jobName: string }
  /** Reconcile again after this many seconds (timeouts, retry backoff, reply wait). */
  | { type: "requeue"; afterSeconds: number }
  /** The run reached a terminal phase: finalize on the forge and record the outcome (idempotent). */
  | { type: "finalize"; phase: Phase };

export interface PlanEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export interface PlanOptions {
  /** Attempts per stage for infrastructure failures (the agent's own "failed" verdict is not retried). */
  maxAttempts: number;
  backoffBaseSeconds: number;
  backoffMaxSeconds: number;
  /** A stage is not started unless this much budget remains. */
  minStageBudgetUsd: number;
  maxQuestions: number;
  /** After this long without a reply the run proceeds on the stated default assumption. */
  replyWaitSeconds: number;
}

export const DEFAULT_PLAN_OPTIONS: PlanOptions = {
  maxAttempts: 3,
  backoffBaseSeconds: 10,
  backoffMaxSeconds: 300,
  minStageBudgetUsd: 0.05,
  maxQuestions: 3,
  replyWaitSeconds: 24 * 3600,
};

export interface Plan {
  status: AgentRunStatus;
  actions: Action[];
  events: PlanEvent[];
}

const STAGE_PHASE: Record<StageName, Phase> = {
  triage: "Triaging",
  write: "Writing",
  review: "Reviewing",
  remediate: "Remediating",
};

/**
 * The whole AgentRun lifecycle as one pure function: given the run, the Jobs observed for it and
 * the time, return the next status and the side effects to apply. Level-triggered: calling it again
 * with the same inputs yields the same plan, and a Job that exists but is missing from status
 * (a crash between create and status write) is adopted instead of created again.
 */
export function plan(run: AgentRun, jobs: ObservedJob[], now: Date, opts: PlanOptions = DEFAULT_PLAN_OPTIONS): Plan {
  const ctx = new Planner(run, jobs, now, opts);
  ctx.run();
  return { status: ctx.status, actions: ctx.actions, events: ctx.events };
}

class Planner {
  status: AgentRunStatus;
  actions: Action[] = [];
  events: PlanEvent[] = [];
  private readonly nowIso: string;
  /** Jobs whose succeeded result the forge did not confirm, in this plan. */
  private readonly unverified = new Set<string>();
  /** Failed stages whose model requests the gateway refused for budget. */
  private readonly budgetRefused = new Set<string>();

  constructor(
    private readonly agentRun: AgentRun,
    private readonly jobs: ObservedJob[],
    private readonly now: Date,
    private readonly opts: PlanOptions,
  ) {
    this.nowIso = now.toISOString();
    const s = agentRun.status;
    this.status = {
      phase: s?.phase ?? "Pending",
      conditions: [...(s?.conditions ?? [])],
      round: s?.round ?? 0,
      questions: s?.questions ?? 0,
      stages: (s?.stages ?? []).map((st) => ({ ...st })),
      costUsd: s?.costUsd ?? 0,
      ...(s?.riskTier ? { riskTier: s.riskTier } : {}),
      ...(s?.pullRequest ? { pullRequest: s.pullRequest } : {}),
      startTime: s?.startTime ?? this.nowIso,
      ...(s?.completionTime ? { completionTime: s.completionTime } : {}),
      ...(s?.message ? { message: s.message } : {}),
      observedGeneration: agentRun.metadata.generation ?? s?.observedGeneration,
    };
  }

  run(): void {
    if (isTerminal(this.status.phase)) {
      // Finalization is idempotent and retried until the operator records it done.
      if (!this.hasCondition("Finalized")) this.actions.push({ type: "finalize", phase: this.status.phase });
      return;
    }
    this.observeJobs();
    if (this.agentRun.spec.suspend) return this.cancel();
    const current = this.current();
    if (!current) return this.start("triage", "Triaging");
    if (current.outcome === "Running") return this.watchRunning(current);
    if (current.outcome === "Error") return this.retryOrFail(current);
    if (current.outcome === "Failed") {
      if (this.budgetRefused.has(current.jobName)) {
        return this.finish("Escalated", "BudgetExhausted", `${current.name}: ${current.message}`);
      }
      const reason = this.unverified.has(current.jobName) ? UNVERIFIED_REASON : "StageFailed";
      return this.finish("Failed", reason, `${current.name}: ${current.message}`);
    }
    this.advance(current);
  }

  /** Folds every observed Job into `status.stages`. */
  private observeJobs(): void {
    // Adopted Jobs are appended in start order: an informer lists them by name, not by age.
    for (const job of [...this.jobs].sort(byStart)) {
      let entry = this.status.stages.find((s) => s.jobName === job.name);
      if (!entry) {
        // Without a start time the stage deadline would move with every reconcile and never fire.
        entry = this.newStage(job.stage, job.attempt, job.name, job.startTime ?? this.nowIso);
        this.status.stages.push(entry);
      }
      if (entry.outcome !== "Running" || job.state === "Active") continue;
      entry.completionTime = job.completionTime ?? this.nowIso;
      if (entry.startTime)
        entry.durationSeconds = round2((Date.parse(entry.completionTime) - Date.parse(entry.startTime)) / 1000);
      const r = job.result;
      if (r) {
        entry.outcome = r.outcome === "succeeded" ? "Succeeded" : "Failed";
        entry.costUsd = r.costUsd;
        entry.tokens = r.usage;
        entry.turns = r.turns;
        entry.model = r.model || undefined;
        entry.message = r.summary;
        if (r.budgetExhausted && r.outcome === "failed") this.budgetRefused.add(job.name);
        if (r.durationMs) entry.durationSeconds = round2(r.durationMs / 1000);
        const v = job.verification;
        if (entry.outcome === "Succeeded" && VERIFIED_STAGES.has(job.stage) && !v?.ok) {
          // The pod says it succeeded; the forge does not show it. Never acted on, never retried.
          entry.outcome = "Failed";
          entry.message = `${UNVERIFIED_REASON}: ${v?.reason ?? "the result was not checked on the forge"}`;
          this.unverified.add(job.name);
          this.setCondition("ResultVerified", "False", UNVERIFIED_REASON, `${job.name}: ${entry.message}`);
          this.event("Warning", UNVERIFIED_REASON, `${job.name}: ${entry.message}`);
          continue;
        }
        this.event(
          entry.outcome === "Succeeded" ? "Normal" : "Warning",
          `Stage${entry.outcome}`,
          `${job.name}: ${r.summary}`,
        );
      } else {
        entry.outcome = "Error";
        entry.message = job.infraError ?? "pod ended without a result";
        this.event("Warning", "StageError", `${job.name}: ${entry.message}`);
      }
    }
    this.status.costUsd = round6(this.status.stages.reduce((sum, s) => sum + s.costUsd, 0));
  }

  private current(): StageStatus | undefined {
    return this.status.stages.at(-1);
  }

  private watchRunning(current: StageStatus): void {
    const started = Date.parse(current.startTime ?? this.nowIso);
    const deadline = started + this.agentRun.spec.stageTimeoutSeconds * 1000;
    if (this.now.getTime() >= deadline) {
      current.outcome = "Error";
      current.completionTime = this.nowIso;
      current.durationSeconds = round2((this.now.getTime() - started) / 1000);
      current.message = `timed out after ${this.agentRun.spec.stageTimeoutSeconds}s`;
      this.actions.push({ type: "deleteJob", jobName: current.jobName });
      this.event("Warning", "StageTimeout", `${current.jobName}: ${current.message}`);
      return this.retryOrFail(current);
    }
    this.setPhase(STAGE_PHASE[current.name]);
    this.actions.push({
      type: "requeue",
      afterSeconds: Math.max(1, Math.ceil((deadline - this.now.getTime()) / 1000)),
    });
  }

  private retryOrFail(failed: StageStatus): void {
    const attemptsOfStage = this.consecutiveErrors(failed.name);
    if (attemptsOfStage >= this.opts.maxAttempts) {
      return this.finish(
        "Failed",
        "RetriesExhausted",
        `${failed.name} failed ${attemptsOfStage} times: ${failed.message}`,
      );
    }
    const backoff = Math.min(this.opts.backoffBaseSeconds * 2 ** (attemptsOfStage - 1), this.opts.backoffMaxSeconds);
    const readyAt = Date.parse(failed.completionTime ?? this.nowIso) + backoff * 1000;
    if (this.now.getTime() < readyAt) {
      this.actions.push({ type: "requeue", afterSeconds: Math.ceil((readyAt - this.now.getTime()) / 1000) });
      return;
    }
    this.start(failed.name, STAGE_PHASE[failed.name]);
  }

  /** Errors of `stage` in a row at the end of the run: an error in an earlier round is not held against this one. */
  private consecutiveErrors(stage: StageName): number {
    let count = 0;
    for (const s of [...this.status.stages].reverse()) {
      if (s.name !== stage || s.outcome !== "Error") break;
      count += 1;
    }
    return count;
  }

  /**
   * The last stage succeeded: decide what comes next. The pull request and the review verdict are the
   * forge's (the job's verification), not what the pod reported.
   */
  private advance(done: StageStatus): void {
    const job = this.jobs.find((j) => j.name === done.jobName);
    const verified = job?.verification?.ok ? job.verification : undefined;
    switch (done.name) {
      case "triage":
        return this.afterTriage(done, job?.result);
      case "write":
      case "remediate":
        if (verified?.pullRequest) this.status.pullRequest = verified.pullRequest;
        if (!this.status.pullRequest)
          return this.finish("Failed", UNVERIFIED_REASON, `${done.name}: no verified pull request`);
        return this.start("review", "Reviewing");
      case "review":
        return this.afterReview(verified?.review);
    }
  }

  private afterTriage(done: StageStatus, result: StageResult | undefined): void {
    const verdict = result?.triage;
    if (verdict?.riskTier) this.status.riskTier = verdict.riskTier;
    const answered = this.agentRun.spec.clarifications.length;
    // The triage that asked is counted once, by its job name (re-planning must not count it again).
    const askedBy = this.status.conditions.find((c) => c.type === "AwaitingReply")?.message;
    // While the run waits (up to a day) the finished triage Job may be gone (TTL): the condition
    // then remembers that it asked.
    const unclear = verdict ? verdict.verdict === "unclear" : askedBy === done.jobName;
    if (!unclear) return this.start("write", "Writing");
    if (askedBy !== done.jobName) {
      this.status.questions += 1;
      this.setCondition("AwaitingReply", "True", "QuestionAsked", done.jobName);
      this.event("Normal", "QuestionAsked", verdict?.question ?? "clarifying question posted");
    }
    if (answered >= this.status.questions) {
      // A reply arrived since the question: triage again with it.
      this.setCondition("AwaitingReply", "False", "Replied", done.jobName);
      return this.start("triage", "Triaging");
    }
    const askedAt = Date.parse(done.completionTime ?? this.nowIso);
    const proceedAt = askedAt + this.opts.replyWaitSeconds * 1000;
    if (this.status.questions >= this.opts.maxQuestions || this.now.getTime() >= proceedAt) {
      this.setCondition("AwaitingReply", "False", "ProceededOnDefault", done.jobName);
      this.event("Normal", "ProceedingOnDefault", verdict?.defaultAssumption ?? "no reply; proceeding on the default");
      return this.start("write", "Writing");
    }
    this.setPhase("AwaitingReply");
    this.actions.push({ type: "requeue", afterSeconds: Math.ceil((proceedAt - this.now.getTime()) / 1000) });
  }

  private afterReview(review: VerifiedReview | undefined): void {
    // Never Ready on the strength of a missing verdict.
    if (!review) return this.finish("Failed", UNVERIFIED_REASON, "review: no verified verdict");
    this.status.riskTier = review.riskTier;
    if (review.blocking === 0) return this.finish("Ready", "Clean", "all required checks passed");
    if (this.status.round >= this.agentRun.spec.maxRemediationRounds) {
      return this.finish(
        "Escalated",
        "RemediationLimit",
        `${review.blocking} blocking finding(s) remain after ${this.status.round} round(s)`,
      );
    }
    this.status.round += 1;
    this.start("remediate", "Remediating");
  }

  private start(stage: StageName, phase: Phase): void {
    // Rounded like the costs, so that 0.15 - 0.1 leaves 0.05 and not 0.04999….
    const remaining = round6(this.agentRun.spec.budgetUsd - this.status.costUsd);
    if (remaining < this.opts.minStageBudgetUsd) {
      return this.finish(
        "Escalated",
        "BudgetExhausted",
        `$${remaining.toFixed(4)} left of $${this.agentRun.spec.budgetUsd}`,
      );
    }
    const attempt = this.status.stages.filter((s) => s.name === stage).length + 1;
    const name = jobName(this.agentRun.metadata.name, stage, attempt);
    this.status.stages.push(this.newStage(stage, attempt, name, this.nowIso));
    this.actions.push({ type: "createJob", stage, attempt, jobName: name });
    this.event("Normal", "StageStarted", `${name}`);
    this.setPhase(phase);
  }

  private cancel(): void {
    for (const s of this.status.stages) {
      if (s.outcome !== "Running") continue;
      s.outcome = "Error";
      s.message = "cancelled";
      s.completionTime = this.nowIso;
      this.actions.push({ type: "deleteJob", jobName: s.jobName });
    }
    this.finish("Cancelled", "Cancelled", "spec.suspend was set");
  }

  private finish(phase: Phase, reason: string, message: string): void {
    this.setPhase(phase);
    this.status.completionTime = this.nowIso;
    this.status.message = message;
    const ok = phase === "Ready";
    this.setCondition("Succeeded", ok ? "True" : "False", reason, message);
    this.event(ok ? "Normal" : "Warning", reason, message);
    this.actions.push({ type: "finalize", phase });
  }

  private setPhase(phase: Phase): void {
    if (this.status.phase !== phase) {
      this.event("Normal", "PhaseChanged", `${this.status.phase} → ${phase}`);
      this.status.phase = phase;
    }
    if (!isTerminal(phase)) this.setCondition("Succeeded", "Unknown", phase, `run is ${phase}`);
  }

  private newStage(name: StageName, attempt: number, job: string, startTime: string | undefined): StageStatus {
    return {
      name,
      attempt,
      jobName: job,
      ...(startTime ? { startTime } : {}),
      outcome: "Running",
      costUsd: 0,
      tokens: zeroTokens(),
      turns: 0,
      durationSeconds: 0,
      message: "",
    };
  }

  private hasCondition(type: string): boolean {
    return this.status.conditions.some((c) => c.type === type && c.status === "True");
  }

  private setCondition(type: string, status: Condition["status"], reason: string, message: string): void {
    const existing = this.status.conditions.find((c) => c.type === type);
    const generation = this.agentRun.metadata.generation;
    if (existing && existing.status === status && existing.reason === reason && existing.message === message) return;
    const next: Condition = {
      type,
      status,
      reason,
      message,
      lastTransitionTime: existing && existing.status === status ? existing.lastTransitionTime : this.nowIso,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    };
    this.status.conditions = [...this.status.conditions.filter((c) => c.type !== type), next];
  }

  private event(type: PlanEvent["type"], reason: string, message: string): void {
    this.events.push({ type, reason, message });
  }
}

/** Jobs with a start time first, oldest first; then by attempt (a fresh Job may have no start time yet). */
function byStart(a: ObservedJob, b: ObservedJob): number {
  const ta = a.startTime ? Date.parse(a.startTime) : Number.POSITIVE_INFINITY;
  const tb = b.startTime ? Date.parse(b.startTime) : Number.POSITIVE_INFINITY;
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.attempt - b.attempt;
}

const round2 = (n: number) => Math.round(n * 100) / 100;
const round6 = (n: number) => Math.round(n * 1e6) / 1e6;
