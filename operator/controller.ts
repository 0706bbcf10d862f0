import type { CoreV1Event, KubernetesObject, V1Job, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { type AgentRun, isTerminal } from "../core/agentrun.ts";
import { LABELS, MANAGED_BY } from "../core/names.ts";
import type { PlanOptions } from "../core/plan.ts";
import type { EgressAdmin } from "./egress.ts";
import type { Finalizer } from "./finalize.ts";
import type { Forge } from "./forge.ts";
import type { JobSettings } from "./job.ts";
import { type KubeClient, paths } from "./kube/client.ts";
import { ResilientInformer } from "./kube/informer.ts";
import { WorkQueue } from "./kube/workqueue.ts";
import { ACTIVE_PHASES, type Metrics, workQueueMetrics } from "./metrics.ts";
import { FAILED_CREATE_SELECTOR } from "./observe.ts";
import { type Cache, errMessage, Reconciler, StaleError } from "./reconciler.ts";

export interface ControllerOptions {
  kube: KubeClient;
  namespace: string;
  jobSettings: JobSettings;
  planOptions: PlanOptions;
  forge?: Forge;
  /** The egress gateway's admin API, when egress is on. */
  egress?: EgressAdmin;
  finalizer?: Finalizer;
  metrics: Metrics;
  log: Logger;
  concurrency: number;
  qps: number;
  burst: number;
  resyncMs: number;
  watchdogMs: number;
}

/**
 * Wiring only (Tekton's controller.go): informers on AgentRuns, their Jobs and Pods feed one work
 * queue of run keys; workers call the Reconciler.
 */
export class Controller {
  readonly runs: ResilientInformer<KubernetesObject>;
  readonly jobs: ResilientInformer<V1Job>;
  readonly pods: ResilientInformer<V1Pod>;
  /** Only the Job controller's FailedCreate Events (FAILED_CREATE_SELECTOR). */
  readonly events: ResilientInformer<CoreV1Event>;
  readonly queue: WorkQueue;
  readonly reconciler: Reconciler;
  private workers?: Promise<void>;
  private gaugeTimer?: NodeJS.Timeout;

  constructor(private readonly o: ControllerOptions) {
    const { kube, namespace: ns, metrics, log } = o;
    const common = {
      kc: kube.kc,
      resyncMs: o.resyncMs,
      watchdogMs: o.watchdogMs,
      log,
      onRestart: (name: string) => metrics.informerRestarts.inc({ informer: name }),
    };
    this.runs = new ResilientInformer<KubernetesObject>({
      ...common,
      name: "agentruns",
      path: paths.runs(ns),
      list: () => kube.listRuns(ns) as never,
    });
    const managed = `${LABELS.managedBy}=${MANAGED_BY}`;
    this.jobs = new ResilientInformer<V1Job>({
      ...common,
      name: "jobs",
      path: paths.jobs(ns),
      labelSelector: managed,
      list: () => kube.batch.listNamespacedJob({ namespace: ns, labelSelector: managed }) as never,
    });
    this.pods = new ResilientInformer<V1Pod>({
      ...common,
      name: "pods",
      path: paths.pods(ns),
      labelSelector: LABELS.run,
      list: () => kube.core.listNamespacedPod({ namespace: ns, labelSelector: LABELS.run }) as never,
    });
    this.events = new ResilientInformer<CoreV1Event>({
      ...common,
      name: "events",
      path: paths.events(ns),
      fieldSelector: FAILED_CREATE_SELECTOR,
      list: () => kube.core.listNamespacedEvent({ namespace: ns, fieldSelector: FAILED_CREATE_SELECTOR }) as never,
    });
    this.queue = new WorkQueue({
      name: metrics.controller,
      qps: o.qps,
      burst: o.burst,
      metrics: workQueueMetrics(metrics),
    });
    this.reconciler = new Reconciler({
      kube,
      runs: this.runs as unknown as Cache<AgentRun>,
      jobs: this.jobs,
      pods: this.pods,
      events: this.events,
      jobSettings: o.jobSettings,
      planOptions: o.planOptions,
      forge: o.forge,
      ...(o.egress ? { egress: o.egress } : {}),
      finalizer: o.finalizer,
      metrics,
      log,
    });
    this.runs.on((run, kind) => {
      // A run without status waits for its first Job: ahead of the runs already under way.
      const fresh = !(run as unknown as AgentRun).status;
      if (kind !== "delete") this.queue.add(`${run.metadata?.namespace}/${run.metadata?.name}`, { front: fresh });
    });
    const byLabel = (obj: V1Job | V1Pod) => {
      const run = obj.metadata?.labels?.[LABELS.run];
      if (run) this.queue.add(`${obj.metadata?.namespace}/${run}`);
    };
    this.jobs.on(byLabel);
    this.pods.on(byLabel);
    // An Event names its Job; the Job's label names the run.
    this.events.on((e, kind) => {
      const o = e.involvedObject;
      if (kind === "delete" || !o?.name) return;
      const job = this.jobs.get(o.name, o.namespace ?? e.metadata?.namespace);
      if (job) byLabel(job);
    });
  }

  /** Fills the caches, then starts the workers. */
  async start(): Promise<void> {
    await Promise.all([this.jobs.start(), this.pods.start(), this.events.start()]);
    await this.runs.start(); // last: its adds enqueue every run against full Job/Pod caches
    const { metrics: m, log } = this.o;
    this.workers = this.queue.run(
      this.o.concurrency,
      async (key) => {
        const end = m.reconcileTime.startTimer({ controller: m.controller });
        m.activeWorkers.inc({ controller: m.controller });
        try {
          const res = await this.reconciler.reconcile(key);
          m.reconcileTotal.inc({ controller: m.controller, result: res.requeueAfterMs ? "requeue_after" : "success" });
          return res;
        } catch (err) {
          m.reconcileTotal.inc({ controller: m.controller, result: "error" });
          m.reconcileErrors.inc({ controller: m.controller });
          throw err;
        } finally {
          m.activeWorkers.dec({ controller: m.controller });
          end();
        }
      },
      (key, err) => {
        if (err instanceof StaleError) log.debug({ key }, err.message);
        else log.warn({ key, err: errMessage(err) }, "reconcile failed");
      },
    );
    this.gaugeTimer = setInterval(() => this.updateGauges(), 5000);
    this.gaugeTimer.unref();
    this.updateGauges();
  }

  private updateGauges(): void {
    const counts = new Map<string, number>();
    for (const r of this.runs.list() as unknown as AgentRun[]) {
      const phase = r.status?.phase ?? "Pending";
      if (!isTerminal(phase)) counts.set(phase, (counts.get(phase) ?? 0) + 1);
    }
    // Every working phase, at 0 when empty: "no runs" is a value, not a missing series.
    for (const phase of ACTIVE_PHASES) this.o.metrics.runsActive.set({ phase }, counts.get(phase) ?? 0);
  }

  get synced(): boolean {
    return this.runs.hasSynced && this.jobs.hasSynced && this.pods.hasSynced && this.events.hasSynced;
  }

  async stop(timeoutMs = 10_000): Promise<void> {
    clearInterval(this.gaugeTimer);
    this.queue.shutDown();
    await Promise.race([this.workers, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    await Promise.allSettled([this.runs.stop(), this.jobs.stop(), this.pods.stop(), this.events.stop()]);
  }
}
