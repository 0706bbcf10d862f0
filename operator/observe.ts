import type { CoreV1Event, V1Job, V1Pod } from "@kubernetes/client-node";
import { LABELS } from "../core/names.ts";
import type { ObservedJob } from "../core/plan.ts";
import { decodeResult, StageName } from "../core/result.ts";
import { RUNNER_CONTAINER } from "./job.ts";

/** Pod waiting reasons that never resolve by themselves: the attempt is an infrastructure failure. */
const STUCK_REASONS = new Set([
  "ImagePullBackOff",
  "ErrImagePull",
  "InvalidImageName",
  "CreateContainerConfigError",
  "CreateContainerError",
  "ErrImageNeverPull",
]);

/**
 * Waiting reasons a real kubelet also shows for a moment and then clears by itself (a Secret or
 * ConfigMap that arrives just after the pod, a Node authorizer that has not seen the binding yet):
 * stuck only once they outlast this grace, counted from the pod's creation.
 */
const TRANSIENT_REASONS = new Set(["CreateContainerConfigError", "CreateContainerError"]);
export const CONFIG_GRACE_SECONDS = 90;

/**
 * The Job controller's Warning Event when the API server refuses a Job's pod (Pod Security, ResourceQuota,
 * a missing RuntimeClass or ServiceAccount, a LimitRange): no pod ever appears, so without it the attempt would
 * only end at the stage timeout. The controller keeps retrying with backoff; the operator fails the attempt.
 */
export const FAILED_CREATE = "FailedCreate";
/** The field selector of the operator's Event informer: only the Job controller's FailedCreate Events. */
export const FAILED_CREATE_SELECTOR = `involvedObject.kind=Job,reason=${FAILED_CREATE}`;

/** The newest FailedCreate Event about this Job (matched by uid: a recreated Job of the same name is another Job). */
export function failedCreateOf(job: V1Job, events: readonly CoreV1Event[]): CoreV1Event | undefined {
  const uid = job.metadata?.uid;
  const name = job.metadata?.name;
  return events
    .filter(
      (e) =>
        e.reason === FAILED_CREATE &&
        e.involvedObject?.kind === "Job" &&
        (uid && e.involvedObject.uid ? e.involvedObject.uid === uid : e.involvedObject?.name === name),
    )
    .sort((a, b) => eventTime(b) - eventTime(a))[0];
}

const eventTime = (e: CoreV1Event): number =>
  Date.parse(
    iso(e.lastTimestamp) ?? iso(e.eventTime as Date | string | undefined) ?? iso(e.metadata?.creationTimestamp) ?? "0",
  );

/** How long a finished Job may wait for its pod's final status to reach the cache. */
export const POD_GRACE_SECONDS = 60;

export interface Observation {
  job: ObservedJob;
  /** The Job is still running in Kubernetes but can never succeed (e.g. image pull): delete it. */
  stuck: boolean;
}

/** The pods that belong to a Job: controller owner reference, or the Job's name label. */
export function podsOfJob(job: V1Job, pods: readonly V1Pod[]): V1Pod[] {
  const name = job.metadata?.name;
  const uid = job.metadata?.uid;
  return pods.filter((p) => {
    const owners = p.metadata?.ownerReferences ?? [];
    if (owners.some((o) => o.kind === "Job" && (o.uid === uid || o.name === name))) return true;
    const l = p.metadata?.labels ?? {};
    return l["batch.kubernetes.io/job-name"] === name || l["job-name"] === name;
  });
}

function condition(job: V1Job, type: string) {
  return job.status?.conditions?.find((c) => c.type === type && c.status === "True");
}

const iso = (d: Date | string | undefined): string | undefined =>
  d === undefined ? undefined : typeof d === "string" ? d : d.toISOString();

/**
 * Folds a stage Job and its pods into what `plan()` reads. Pure. The runner's verdict comes from the
 * termination message; a pod that ended without a valid one is an infrastructure failure.
 */
export function observeJob(
  job: V1Job,
  pods: readonly V1Pod[],
  now: Date,
  events: readonly CoreV1Event[] = [],
): Observation | undefined {
  const labels = job.metadata?.labels ?? {};
  const stage = StageName.safeParse(labels[LABELS.stage]);
  const attempt = Number(labels[LABELS.attempt]);
  if (!stage.success || !Number.isInteger(attempt) || attempt < 1 || !job.metadata?.name) return undefined;
  const base: ObservedJob = {
    name: job.metadata.name,
    stage: stage.data,
    attempt,
    state: "Active",
  };
  const startTime = iso(job.status?.startTime) ?? iso(job.metadata.creationTimestamp);
  if (startTime) base.startTime = startTime;

  const mine = podsOfJob(job, pods).sort(
    (a, b) =>
      Date.parse(iso(b.metadata?.creationTimestamp) ?? "0") - Date.parse(iso(a.metadata?.creationTimestamp) ?? "0"),
  );
  const pod = mine[0];
  const status =
    pod?.status?.containerStatuses?.find((c) => c.name === RUNNER_CONTAINER) ?? pod?.status?.containerStatuses?.[0];
  const terminated = status?.state?.terminated;
  const waiting = status?.state?.waiting;

  const complete =
    condition(job, "Complete") ?? (job.status?.succeeded ? { lastTransitionTime: undefined } : undefined);
  const failed =
    condition(job, "Failed") ?? (job.status?.failed ? { lastTransitionTime: undefined, reason: undefined } : undefined);
  const finishedAt =
    iso(job.status?.completionTime) ??
    iso(complete?.lastTransitionTime) ??
    iso(failed?.lastTransitionTime) ??
    iso(terminated?.finishedAt);

  const end = (infraError?: string): Observation => {
    const result = infraError ? undefined : decodeResult(terminated?.message);
    const job: ObservedJob = {
      ...base,
      state: complete ? "Succeeded" : "Failed",
      ...(finishedAt ? { completionTime: finishedAt } : {}),
    };
    if (infraError) job.infraError = infraError;
    else if (result?.ok && result.result.failure === "Terminated")
      // The pod was stopped mid-stage (deletion, drain, preemption): infrastructure, not the agent's verdict.
      job.infraError = `Terminated: ${result.result.summary}`;
    else if (result?.ok) job.result = result.result;
    else job.infraError = result ? result.error : "no result";
    return { job, stuck: false };
  };

  if (pod?.status?.reason === "Evicted") return end(`pod evicted: ${pod.status.message ?? ""}`.trim());
  if (terminated?.reason === "OOMKilled") return end("OOMKilled");
  if (!complete && !failed) {
    // No pod, and the Job controller says the API server refused it: it never will be created.
    const refused = mine.length === 0 ? failedCreateOf(job, events) : undefined;
    if (refused) {
      const job: ObservedJob = {
        ...base,
        state: "Failed",
        completionTime: now.toISOString(),
        infraError: `${FAILED_CREATE}: ${refused.message ?? "the API server refused the pod"}`.trim(),
      };
      return { job, stuck: true };
    }
    const created = iso(pod?.metadata?.creationTimestamp) ?? startTime;
    const age = created ? (now.getTime() - Date.parse(created)) / 1000 : Number.POSITIVE_INFINITY;
    const transient = waiting?.reason !== undefined && TRANSIENT_REASONS.has(waiting.reason);
    if (waiting?.reason && STUCK_REASONS.has(waiting.reason) && (!transient || age >= CONFIG_GRACE_SECONDS)) {
      const job: ObservedJob = {
        ...base,
        state: "Failed",
        completionTime: now.toISOString(),
        infraError: `${waiting.reason}: ${waiting.message ?? ""}`.trim(),
      };
      return { job, stuck: true };
    }
    return { job: base, stuck: false };
  }
  const failedReason = (failed as { reason?: string } | undefined)?.reason;
  if (failed && failedReason === "DeadlineExceeded") return end("DeadlineExceeded");
  if (!terminated) {
    // The Job finished but its pod's final status is not in the cache (yet): wait a little, then give up.
    const waited = finishedAt ? (now.getTime() - Date.parse(finishedAt)) / 1000 : POD_GRACE_SECONDS;
    if (waited < POD_GRACE_SECONDS) return { job: base, stuck: false };
    return end(pod ? "pod ended without a terminated container status" : "pod not found");
  }
  return end();
}
