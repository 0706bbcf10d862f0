import type { CoreV1Event, V1Job, V1Pod, V1Secret } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { type AgentRun, type AgentRunStatus, type Condition, isTerminal } from "../core/agentrun.ts";
import { branchName, LABELS } from "../core/names.ts";
import { type Action, type ObservedJob, type PlanEvent, type PlanOptions, plan } from "../core/plan.ts";
import type { StageName } from "../core/result.ts";
import {
  reportedVerification,
  VERIFIED_STAGES,
  type Verification,
  verifyRemediate,
  verifyReview,
  verifyWrite,
} from "../core/verify.ts";
import type { EgressAdmin } from "./egress.ts";
import type { Finalizer } from "./finalize.ts";
import { type Forge, STAGE_PERMISSIONS } from "./forge.ts";
import { ATTEMPT_TOKEN_KEY, buildJob, buildTokenSecret, DEADLINE_MARGIN_SECONDS, type JobSettings } from "./job.ts";
import { isAlreadyExists, isConflict, isNotFound, type KubeClient } from "./kube/client.ts";
import { type Metrics, runOutcome, stageFinished, stageStarted } from "./metrics.ts";
import { observeJob } from "./observe.ts";

/** Annotation the consumer sets on a run: when the gateway received the ticket (ticket-to-Job latency). */
export const RECEIVED_AT_ANNOTATION = "agentfactory.dev/received-at";

export interface Cache<T> {
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): readonly T[];
  /** Objects labelled `key=value`, from an index (else the reconciler filters list()). */
  byLabel?(key: string, value: string, namespace?: string): readonly T[];
}

/** Objects of a run by its label: through the cache's index when it has one. */
function ofRun<T extends { metadata?: { labels?: Record<string, string> } }>(
  cache: Cache<T>,
  run: AgentRun,
): readonly T[] {
  const ns = run.metadata.namespace;
  return cache.byLabel
    ? cache.byLabel(LABELS.run, run.metadata.name, ns)
    : cache.list(ns).filter((o) => o.metadata?.labels?.[LABELS.run] === run.metadata.name);
}

export interface ReconcilerDeps {
  kube: Pick<
    KubeClient,
    "createJob" | "deleteJob" | "createSecret" | "replaceSecret" | "replaceRunStatus" | "createEvent"
  >;
  runs: Cache<AgentRun>;
  jobs: Cache<V1Job>;
  pods: Cache<V1Pod>;
  /** The Job controller's FailedCreate Events (unset: a refused pod is noticed at the stage timeout). */
  events?: Cache<CoreV1Event>;
  jobSettings: JobSettings;
  planOptions: PlanOptions;
  forge?: Forge;
  finalizer?: Finalizer;
  metrics?: Metrics;
  /** Set when the egress gateway is on: attempts are reserved and ended there, spend is read from its ledger. */
  egress?: EgressAdmin;
  log: Logger;
  now?: () => Date;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

/** A status write lost a race with another writer (stale cache): reconcile again soon. */
export class StaleError extends Error {}

/**
 * Reconciles one AgentRun: reads it and its Jobs and Pods from the informer caches, asks `plan()`
 * what to do, applies the actions (all idempotent: deterministic names, 409 = done) and writes the
 * status once, only when it changed, through the /status subresource.
 */
export class Reconciler {
  /** The last status this process wrote, per key, until the cache catches up (avoids acting on a stale read). */
  private readonly written = new Map<string, { basedOn: string | undefined; run: AgentRun }>();
  private readonly now: () => Date;
  /** Events are sent in the background, a few at a time, so they never delay Jobs (client-go does the same). */
  private readonly events = new BackgroundQueue(2, 5000);

  constructor(private readonly d: ReconcilerDeps) {
    this.now = d.now ?? (() => new Date());
  }

  /** Resolves once the queued events are sent (tests, shutdown). */
  flushEvents(): Promise<void> {
    return this.events.idle();
  }

  /** Jobs of a run: labelled with it and controlled by it. */
  jobsOf(run: AgentRun): V1Job[] {
    return ofRun(this.d.jobs, run).filter(
      (j) =>
        j.metadata?.labels?.[LABELS.run] === run.metadata.name &&
        (j.metadata?.ownerReferences ?? []).some((o) => o.controller && o.uid === run.metadata.uid),
    );
  }

  observe(run: AgentRun, now: Date): { observed: ObservedJob[]; stuck: string[] } {
    const pods = ofRun(this.d.pods, run);
    const events = this.d.events?.list(run.metadata.namespace) ?? [];
    const observed: ObservedJob[] = [];
    const stuck: string[] = [];
    for (const job of this.jobsOf(run)) {
      if (job.metadata?.deletionTimestamp) continue;
      const o = observeJob(job, pods, now, events);
      if (!o) continue;
      observed.push(o.job);
      if (o.stuck) stuck.push(o.job.name);
    }
    return { observed, stuck };
  }

  private current(key: string): AgentRun | undefined {
    const [namespace, name] = key.split("/") as [string, string];
    const cached = this.d.runs.get(name, namespace);
    const mine = this.written.get(key);
    if (!cached) {
      this.written.delete(key);
      return undefined;
    }
    if (mine && cached.metadata.resourceVersion === mine.basedOn) return mine.run;
    this.written.delete(key);
    return cached;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const run = this.current(key);
    if (!run || run.metadata.deletionTimestamp) return {};
    const log = this.d.log.child({ run: run.metadata.name });
    const now = this.now();
    const { observed, stuck } = this.observe(run, now);
    await this.verify(run, observed, log);
    await this.endAttempts(run, observed, log);
    const p = plan(run, observed, now, this.d.planOptions);
    const status = p.status;
    let requeueMs: number | undefined;
    const requeue = (ms: number) => {
      requeueMs = requeueMs === undefined ? ms : Math.min(requeueMs, ms);
    };

    await this.crossCheckSpend(run, status, p.events, log);
    // Deletes first: if the status write below fails, the next reconcile recomputes them anyway.
    for (const name of stuck) await this.deleteJob(run, name);
    for (const a of p.actions) if (a.type === "deleteJob") await this.deleteJob(run, a.jobName);
    for (const a of p.actions) {
      if (a.type === "createJob") await this.createJob(run, status, a, now, log);
      else if (a.type === "requeue") requeue(a.afterSeconds * 1000);
    }
    let finalizeError: unknown;
    if (p.actions.some((a) => a.type === "finalize")) {
      try {
        await this.d.finalizer?.finalize(run, status, observed, now);
        setCondition(status, {
          type: "Finalized",
          status: "True",
          reason: "Finalized",
          message: `finalized as ${status.phase}`,
          lastTransitionTime: now.toISOString(),
        });
        p.events.push({ type: "Normal", reason: "Finalized", message: `finalized as ${status.phase}` });
      } catch (err) {
        finalizeError = err;
        log.warn({ err: errMessage(err) }, "finalize failed; will retry");
        p.events.push({ type: "Warning", reason: "FinalizeFailed", message: errMessage(err) });
      }
    }

    if (!sameStatus(run.status, status)) {
      const body: AgentRun = { ...run, status };
      try {
        const updated = await this.d.kube.replaceRunStatus(body);
        this.written.set(key, { basedOn: run.metadata.resourceVersion, run: updated });
      } catch (err) {
        if (isConflict(err)) throw new StaleError(`status of ${key} changed meanwhile`);
        throw err;
      }
      this.afterWrite(run, run.status, status, p.events, log, observed, now);
    }
    if (finalizeError) throw finalizeError;
    return requeueMs === undefined ? {} : { requeueAfterMs: requeueMs };
  }

  /**
   * Checks on the forge what each newly finished write, remediate or review pod claims (core/verify.ts),
   * before plan() acts on it: only a verified pull request and the App's own review move the run.
   * Results already folded into the status are not checked again. Forge errors propagate (retried).
   */
  private async verify(run: AgentRun, observed: ObservedJob[], log: Logger): Promise<void> {
    for (const o of observed) {
      const r = o.result;
      if (o.state === "Active" || r?.outcome !== "succeeded" || !VERIFIED_STAGES.has(o.stage)) continue;
      const folded = run.status?.stages.find((s) => s.jobName === o.name);
      if (folded && folded.outcome !== "Running") continue;
      const forge = this.d.forge;
      let v: Verification;
      if (!forge) v = reportedVerification(run.spec.ticket, r, run.status);
      else {
        const { ticket } = run.spec;
        const app = await forge.botLogin();
        const number = o.stage === "write" ? r.write?.prNumber : run.status?.pullRequest?.number;
        const pull = number ? await forge.pull(ticket.repo, number, ticket.installationId) : undefined;
        if (o.stage === "write") v = verifyWrite(ticket, r, pull, app);
        else if (o.stage === "remediate") v = verifyRemediate(ticket, run.status, pull, app);
        else {
          const reviews = number ? await forge.reviews(ticket.repo, number, ticket.installationId) : [];
          v = verifyReview(
            { name: run.metadata.name, ticket, ...(run.status ? { status: run.status } : {}) },
            o.attempt,
            r,
            pull,
            reviews,
            app,
          );
        }
      }
      if (!v.ok) log.warn({ job: o.name, reason: v.reason }, "stage result not verified on the forge");
      o.verification = v;
    }
  }

  /** Attempts this process already ended on the egress gateway (job names); ending again is harmless. */
  private readonly ended = new Set<string>();

  /** Egress on: each finished Job's attempt is ended on the gateway (its token stops working at once). */
  private async endAttempts(run: AgentRun, observed: ObservedJob[], log: Logger): Promise<void> {
    const egress = this.d.egress;
    if (!egress) return;
    for (const o of observed) {
      if (o.state === "Active" || this.ended.has(o.name)) continue;
      try {
        await egress.end(run.metadata.namespace!, run.metadata.name, o.stage, o.attempt);
        if (this.ended.size >= 10_000) this.ended.clear(); // bounded: ending again is harmless
        this.ended.add(o.name);
      } catch (err) {
        log.warn({ job: o.name, err: errMessage(err) }, "ending the attempt on the egress gateway failed");
      }
    }
  }

  /**
   * Egress on: the run's spend is the ledger's (what the gateway metered), not the pods' own count; the
   * pods' count is a cross-check, and a disagreement above the tolerance is a Warning Event.
   */
  private async crossCheckSpend(
    run: AgentRun,
    status: AgentRunStatus,
    events: PlanEvent[],
    log: Logger,
  ): Promise<void> {
    const egress = this.d.egress;
    if (!egress || !status.stages.length) return;
    // A finished run keeps the figure written when it finished (no ledger read on every resync).
    if (isTerminal(run.status?.phase) && run.status) {
      status.costUsd = run.status.costUsd;
      return;
    }
    let ledger: Awaited<ReturnType<EgressAdmin["read"]>>;
    try {
      ledger = await egress.read(run.metadata.namespace!, run.metadata.name);
    } catch (err) {
      log.warn({ err: errMessage(err) }, "reading the egress ledger failed; keeping the runner's count");
      return;
    }
    if (!ledger) return;
    const reported = status.costUsd;
    const metered = Math.round(ledger.spentUsd * 1e6) / 1e6;
    const tolerance = egress.settings.spendToleranceUsd ?? 0.01;
    const justFinished = status.stages.some(
      (s) => s.outcome !== "Running" && run.status?.stages.find((b) => b.jobName === s.jobName)?.outcome === "Running",
    );
    if (justFinished && Math.abs(metered - reported) > tolerance) {
      events.push({
        type: "Warning",
        reason: "SpendMismatch",
        message: `the egress ledger metered $${metered.toFixed(4)}, the stages reported $${reported.toFixed(4)}`,
      });
    }
    status.costUsd = metered;
  }

  private async deleteJob(run: AgentRun, name: string): Promise<void> {
    try {
      await this.d.kube.deleteJob(run.metadata.namespace!, name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async createJob(
    run: AgentRun,
    status: AgentRunStatus,
    a: Extract<Action, { type: "createJob" }>,
    now: Date,
    log: Logger,
  ): Promise<void> {
    if (this.d.jobs.get(a.jobName, run.metadata.namespace)) return;
    const stage: StageName = a.stage;
    // The Job sees the status as it will be written (PR, round, risk tier of the stages before).
    const view: AgentRun = { ...run, status };
    const token = this.d.forge
      ? await this.d.forge.mintToken(run.spec.ticket.repo, STAGE_PERMISSIONS[stage], run.spec.ticket.installationId)
      : "";
    const budget = run.spec.budgetUsd - status.costUsd;
    let secret: V1Secret;
    const egress = this.d.egress;
    if (egress) {
      // The forge token goes to the gateway; the pod gets only the attempt token.
      const ns = run.metadata.namespace!;
      const uid = run.metadata.uid ?? "";
      const repo = run.spec.ticket.repo;
      const branch = status.pullRequest?.branch ?? run.status?.pullRequest?.branch ?? branchName(run.spec.ticket);
      await egress.reserve(ns, run.metadata.name, stage, {
        uid,
        budgetUsd: budget,
        attempt: a.attempt,
        repo,
        branch,
        ...(token ? { forgeToken: token } : {}),
      });
      const attemptToken = await egress.mint(
        { run: { namespace: ns, name: run.metadata.name, uid }, stage, attempt: a.attempt, repo, branch },
        run.spec.stageTimeoutSeconds + DEADLINE_MARGIN_SECONDS,
      );
      secret = buildTokenSecret(view, a.jobName, stage, a.attempt, attemptToken, ATTEMPT_TOKEN_KEY);
    } else secret = buildTokenSecret(view, a.jobName, stage, a.attempt, token);
    try {
      await this.d.kube.createSecret(secret);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      await this.d.kube.replaceSecret(secret); // a crash left one behind: refresh its token
    }
    const botLogin = this.d.forge ? await this.d.forge.botLogin() : undefined;
    const job = buildJob(
      {
        run: view,
        stage,
        attempt: a.attempt,
        jobName: a.jobName,
        secretName: a.jobName,
        budgetUsd: budget,
        ...(botLogin ? { botLogin } : {}),
      },
      this.d.jobSettings,
    );
    try {
      await this.d.kube.createJob(job);
      log.info({ job: a.jobName, stage, attempt: a.attempt }, "job created");
      if (this.d.metrics) stageStarted(this.d.metrics, stage, run.spec.model.name);
      const received = run.metadata.annotations?.[RECEIVED_AT_ANNOTATION];
      if (stage === "triage" && a.attempt === 1 && received) {
        this.d.metrics?.ticketToJob.observe(Math.max(0, (now.getTime() - Date.parse(received)) / 1000));
      }
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }

  /** Metrics, events and a log line for what the written status changed. */
  private afterWrite(
    run: AgentRun,
    before: AgentRunStatus | undefined,
    after: AgentRunStatus,
    events: PlanEvent[],
    log: Logger,
    observed: readonly ObservedJob[],
    now: Date,
  ): void {
    const m = this.d.metrics;
    if (before?.phase !== after.phase) log.info({ from: before?.phase ?? "-", to: after.phase }, "phase changed");
    if (m) {
      for (const s of after.stages) {
        const old = before?.stages.find((b) => b.jobName === s.jobName);
        if (s.outcome === "Running" || (old && old.outcome !== "Running")) continue;
        const v = observed.find((j) => j.name === s.jobName)?.verification;
        const blocking = v?.ok ? (v.review?.blocking ?? 0) : 0; // the App's review, not the pod's figure
        stageFinished(m, s, s.model ?? run.spec.model.name, blocking);
      }
      // From ticket receipt (the gateway's clock) or, for runs created by hand, the run's start.
      const since = Date.parse(
        run.metadata.annotations?.[RECEIVED_AT_ANNOTATION] ?? after.startTime ?? run.metadata.creationTimestamp ?? "",
      );
      const elapsed = Number.isNaN(since) ? undefined : Math.max(0, (now.getTime() - since) / 1000);
      if (elapsed !== undefined && !before?.pullRequest && after.pullRequest) m.timeToPr.observe(elapsed);
      if (!isTerminal(before?.phase) && isTerminal(after.phase)) {
        m.runsTotal.inc({ outcome: runOutcome(after.phase), risk_tier: after.riskTier ?? "unknown" });
        m.remediationRounds.observe(after.round);
        if (elapsed !== undefined && after.phase === "Ready") m.timeToReady.observe(elapsed);
      }
    }
    for (const e of events) this.events.push(() => this.recordEvent(run, e));
  }

  private async recordEvent(run: AgentRun, e: PlanEvent): Promise<void> {
    const now = this.now();
    const ts = now.toISOString();
    await this.d.kube.createEvent(run.metadata.namespace!, {
      apiVersion: "v1",
      kind: "Event",
      metadata: {
        name: `${run.metadata.name}.${now.getTime().toString(16)}${Math.random().toString(16).slice(2, 8)}`,
        namespace: run.metadata.namespace,
      },
      involvedObject: {
        apiVersion: run.apiVersion,
        kind: run.kind,
        name: run.metadata.name,
        namespace: run.metadata.namespace,
        uid: run.metadata.uid,
      },
      reason: e.reason,
      message: e.message.slice(0, 1024),
      type: e.type,
      firstTimestamp: ts,
      lastTimestamp: ts,
      count: 1,
      source: { component: "agentfactory-operator" },
      reportingComponent: "agentfactory-operator",
    });
  }
}

/** A bounded FIFO of fire-and-forget tasks run `concurrency` at a time; beyond `limit` tasks are dropped. */
export class BackgroundQueue {
  private readonly tasks: (() => Promise<unknown>)[] = [];
  private running = 0;
  private waiters: (() => void)[] = [];
  dropped = 0;

  constructor(
    private readonly concurrency: number,
    private readonly limit: number,
  ) {}

  push(task: () => Promise<unknown>): void {
    if (this.tasks.length >= this.limit) {
      this.dropped += 1;
      return;
    }
    this.tasks.push(task);
    this.pump();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.tasks.length > 0) {
      const task = this.tasks.shift()!;
      this.running += 1;
      void task()
        .catch(() => {})
        .finally(() => {
          this.running -= 1;
          this.pump();
        });
    }
    if (this.running === 0 && this.tasks.length === 0) for (const w of this.waiters.splice(0)) w();
  }

  idle(): Promise<void> {
    if (this.running === 0 && this.tasks.length === 0) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }
}

function setCondition(status: AgentRunStatus, c: Condition): void {
  status.conditions = [...status.conditions.filter((x) => x.type !== c.type), c];
}

/** Structural equality of two statuses, ignoring key order. */
export function sameStatus(a: AgentRunStatus | undefined, b: AgentRunStatus): boolean {
  return a !== undefined && canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v)
            .filter(([, x]) => x !== undefined)
            .sort(([x], [y]) => (x < y ? -1 : 1)),
        )
      : v,
  );
}

export const errMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));
