/**
 * The Job controller of kube-controller-manager, for non-indexed Jobs with one completion: one Pod per attempt
 * (`<job>-<5 chars>`, the template's labels incl. job-name / controller-uid, controller ownerReference),
 * active/ready/succeeded/failed counts, backoffLimit, activeDeadlineSeconds, ttlSecondsAfterFinished, and the
 * SuccessCriteriaMet+Complete or FailureTarget+Failed conditions.
 */
import { recordEvent } from "./events.ts";
import type { KubeSim } from "./server.ts";
import { meta, now, type Obj, type StoreEvent } from "./store.ts";

export interface JobController {
  stop(): void;
}

function o(v: unknown): Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {};
}

function condition(type: string, reason: string, message: string): Obj {
  const t = now();
  return { type, status: "True", lastProbeTime: t, lastTransitionTime: t, reason, message };
}

export function isJobFinished(job: Obj): boolean {
  const conds = (o(job.status).conditions as Obj[]) ?? [];
  return conds.some((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True");
}

export function startJobController(sim: KubeSim, nodeName: string): JobController {
  const store = sim.store;
  const jobs = sim.resource("jobs.batch");
  const pods = sim.resource("pods");
  const timers = new Map<string, NodeJS.Timeout>();
  const queued = new Set<string>();
  /** Pods a Job has counted, by job uid (the real controller tracks this with pod finalizers). */
  const accounting = new Map<string, { succeeded: Set<string>; failed: Set<string> }>();
  let stopped = false;

  const acct = (jobUid: string) => {
    let a = accounting.get(jobUid);
    if (!a) {
      a = { succeeded: new Set(), failed: new Set() };
      accounting.set(jobUid, a);
    }
    return a;
  };

  const event = (obj: Obj, type: "Normal" | "Warning", reason: string, message: string) =>
    recordEvent(sim, obj, type, reason, message, "job-controller");
  const writeStatus = (ns: string, name: string, mutate: (st: Obj) => void) =>
    store.mutateStatus(jobs, ns, name, mutate);

  /** Pod keys (`ns/name`) by controller uid, kept from the store's events: listing every pod per sync was O(pods). */
  const podsByOwner = new Map<string, Set<string>>();
  const indexPod = (e: Pick<StoreEvent, "type" | "object">) => {
    const m = meta(e.object);
    const owner = (m.ownerReferences ?? []).find((r) => r.controller)?.uid;
    if (!owner) return;
    const key = `${m.namespace}/${m.name}`;
    if (e.type === "DELETED") {
      const set = podsByOwner.get(owner);
      set?.delete(key);
      if (set?.size === 0) podsByOwner.delete(owner);
    } else {
      const set = podsByOwner.get(owner) ?? new Set<string>();
      podsByOwner.set(owner, set);
      set.add(key);
    }
  };

  function jobPods(job: Obj): Obj[] {
    const uid = meta(job).uid!;
    const out: Obj[] = [];
    for (const key of [...(podsByOwner.get(uid) ?? [])].sort()) {
      const [ns, name] = key.split("/") as [string, string];
      const p = store.tryGet(pods, ns, name);
      if (p && ns === meta(job).namespace) out.push(p);
    }
    return out;
  }

  function enqueue(ns: string, name: string): void {
    const key = `${ns}/${name}`;
    if (queued.has(key) || stopped) return;
    queued.add(key);
    setImmediate(() => {
      queued.delete(key);
      if (stopped) return;
      try {
        reconcile(ns, name);
      } catch (e) {
        console.error(`job controller: reconciling ${key} failed:`, e);
      }
    });
  }

  function fail(ns: string, name: string, reason: string, message: string): void {
    const job = store.tryGet(jobs, ns, name);
    if (!job) return;
    const active = jobPods(job).filter((p) => !["Succeeded", "Failed"].includes(String(o(p.status).phase)));
    writeStatus(ns, name, (st) => {
      st.conditions = [
        ...((st.conditions as Obj[]) ?? []),
        condition("FailureTarget", reason, message),
        condition("Failed", reason, message),
      ];
      Object.assign(st, {
        active: 0,
        ready: 0,
        terminating: active.length,
        failed: Number(st.failed ?? 0) + active.length,
      });
    });
    // Like the real controller: the remaining pods are deleted, which kills their containers.
    for (const p of active) {
      if (store.tryGet(pods, ns, meta(p).name!))
        store.delete(pods, ns, meta(p).name!, { propagationPolicy: "Background" });
    }
    finished(ns, name);
  }

  function finished(ns: string, name: string): void {
    const key = `${ns}/${name}`;
    clearTimeout(timers.get(key));
    timers.delete(key);
    const ttl = o(store.tryGet(jobs, ns, name)?.spec).ttlSecondsAfterFinished;
    if (typeof ttl !== "number") return;
    timers.set(
      `${key}/ttl`,
      setTimeout(() => {
        timers.delete(`${key}/ttl`);
        if (store.tryGet(jobs, ns, name)) store.delete(jobs, ns, name, { propagationPolicy: "Background" });
      }, ttl * 1000),
    );
  }

  function startDeadline(ns: string, name: string, seconds: number): void {
    const key = `${ns}/${name}`;
    if (timers.has(key)) return;
    timers.set(
      key,
      setTimeout(() => {
        timers.delete(key);
        const j = store.tryGet(jobs, ns, name);
        if (j && !isJobFinished(j)) fail(ns, name, "DeadlineExceeded", "Job was active longer than specified deadline");
      }, seconds * 1000),
    );
  }

  function reconcile(ns: string, name: string): void {
    const job = store.tryGet(jobs, ns, name);
    if (!job || isJobFinished(job) || o(job.spec).suspend === true) return;
    const spec = o(job.spec);
    const a = acct(meta(job).uid!);
    const owned = jobPods(job);
    for (const p of owned) {
      const phase = o(p.status).phase;
      if (phase === "Succeeded") a.succeeded.add(meta(p).uid!);
      if (phase === "Failed") a.failed.add(meta(p).uid!);
    }
    const succeeded = a.succeeded.size;
    const failed = a.failed.size;
    const live = owned.filter((p) => !a.succeeded.has(meta(p).uid!) && !a.failed.has(meta(p).uid!));
    if (!o(job.status).startTime) {
      writeStatus(ns, name, (st) => {
        st.startTime = now();
      });
      if (typeof spec.activeDeadlineSeconds === "number") startDeadline(ns, name, spec.activeDeadlineSeconds);
    }
    if (succeeded >= Number(spec.completions ?? 1)) {
      writeStatus(ns, name, (st) => {
        const msg = "Reached expected number of succeeded pods";
        st.conditions = [
          ...((st.conditions as Obj[]) ?? []),
          condition("SuccessCriteriaMet", "CompletionsReached", msg),
          condition("Complete", "CompletionsReached", msg),
        ];
        Object.assign(st, { active: 0, ready: 0, terminating: 0, succeeded, failed, completionTime: now() });
      });
      event(job, "Normal", "Completed", "Job completed");
      finished(ns, name);
      return;
    }
    if (failed > Number(spec.backoffLimit ?? 6)) {
      writeStatus(ns, name, (st) => {
        Object.assign(st, { succeeded, failed });
      });
      fail(ns, name, "BackoffLimitExceeded", "Job has reached the specified backoff limit");
      return;
    }
    if (live.length === 0) live.push(createPod(job));
    writeStatus(ns, name, (st) => {
      const ready = live.filter((p) => o(p.status).phase === "Running").length;
      Object.assign(st, { active: live.length, ready, terminating: 0, uncountedTerminatedPods: {} });
      if (succeeded) st.succeeded = succeeded;
      if (failed) st.failed = failed;
    });
  }

  function createPod(job: Obj): Obj {
    const m = meta(job);
    const template = o(o(job.spec).template);
    const tm = o(template.metadata);
    const pod = store.create(pods, m.namespace, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        generateName: `${m.name!.slice(0, 57)}-`,
        labels: { ...(tm.labels as Obj) },
        ...(tm.annotations ? { annotations: tm.annotations } : {}),
        ownerReferences: [
          { apiVersion: "batch/v1", kind: "Job", name: m.name, uid: m.uid, controller: true, blockOwnerDeletion: true },
        ],
      },
      spec: { ...structuredClone(o(template.spec)), nodeName },
    });
    event(job, "Normal", "SuccessfulCreate", `Created pod: ${meta(pod).name}`);
    return pod;
  }

  function onEvent(e: StoreEvent): void {
    if (stopped) return;
    const m = meta(e.object);
    if (e.storageKey === jobs.storageKey) {
      if (e.type !== "DELETED") return enqueue(m.namespace!, m.name!);
      clearTimeout(timers.get(`${m.namespace}/${m.name}`));
      timers.delete(`${m.namespace}/${m.name}`);
      accounting.delete(m.uid!);
      return;
    }
    if (e.storageKey !== pods.storageKey) return;
    indexPod(e);
    const owner = (m.ownerReferences ?? []).find((r) => r.kind === "Job" && r.controller);
    if (!owner) return;
    // A pod deleted before it finished counts as failed (podReplacementPolicy TerminatingOrFailed).
    if (e.type === "DELETED" && o(e.object.status).phase !== "Succeeded") acct(owner.uid).failed.add(m.uid!);
    enqueue(m.namespace!, owner.name);
  }

  const unsubscribe = store.subscribe(onEvent);
  for (const p of store.list(pods)) indexPod({ type: "ADDED", object: p });
  for (const j of store.list(jobs)) enqueue(meta(j).namespace!, meta(j).name!);

  return {
    stop() {
      stopped = true;
      unsubscribe();
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
  };
}
