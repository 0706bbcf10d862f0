import type { CoreV1Event } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { CONFIG_GRACE_SECONDS, FAILED_CREATE, observeJob, POD_GRACE_SECONDS } from "./observe.ts";
import { agentRun, finishedJob } from "./testing.ts";

const run = agentRun();
/** A pending pod whose runner container waits for `waiting.reason`. */
const waitingStatus = (waiting: { reason: string; message?: string }) => ({
  phase: "Pending",
  containerStatuses: [{ name: "runner", image: "", imageID: "", ready: false, restartCount: 0, state: { waiting } }],
});
const now = new Date("2026-01-01T00:05:10Z");
const triage = {
  stage: "triage" as const,
  outcome: "succeeded" as const,
  summary: "clear",
  triage: { verdict: "clear" as const },
};

describe("observeJob", () => {
  const cases: {
    name: string;
    make: () => ReturnType<typeof finishedJob>;
    state: string;
    infra?: RegExp;
    result?: boolean;
    stuck?: boolean;
  }[] = [
    {
      name: "succeeded with a valid result",
      make: () => finishedJob(run, "triage", 1, triage),
      state: "Succeeded",
      result: true,
    },
    {
      name: "the agent's own failure verdict",
      make: () =>
        finishedJob(run, "write", 1, { stage: "write", outcome: "failed", summary: "tests red" }, { failed: true }),
      state: "Failed",
      result: true,
    },
    {
      name: "OOMKilled is infrastructure",
      make: () => finishedJob(run, "write", 1, undefined, { failed: true, reason: "OOMKilled", message: "killed" }),
      state: "Failed",
      infra: /OOMKilled/,
    },
    {
      name: "evicted pod is infrastructure",
      make: () => finishedJob(run, "write", 1, undefined, { failed: true, podReason: "Evicted", message: "" }),
      state: "Failed",
      infra: /evicted/,
    },
    {
      name: "deadline exceeded is infrastructure",
      make: () => finishedJob(run, "review", 1, undefined, { failed: true, reason: "DeadlineExceeded" }),
      state: "Failed",
      infra: /DeadlineExceeded/,
    },
    {
      name: "a runner stopped by SIGTERM (typed Terminated result) is infrastructure, retried",
      make: () =>
        finishedJob(
          run,
          "write",
          1,
          { stage: "write", outcome: "failed", failure: "Terminated", summary: "terminated by SIGTERM" },
          { failed: true },
        ),
      state: "Failed",
      infra: /^Terminated: terminated by SIGTERM$/,
    },
    {
      name: "an invalid termination message is infrastructure",
      make: () => finishedJob(run, "triage", 1, undefined, { message: "panic: segfault" }),
      state: "Succeeded",
      infra: /not JSON/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { job, pod } = c.make();
      const o = observeJob(job, [pod], now)!;
      expect(o.job.state).toBe(c.state);
      expect(o.stuck).toBe(false);
      if (c.infra) expect(o.job.infraError).toMatch(c.infra);
      else expect(o.job.infraError).toBeUndefined();
      expect(!!o.job.result).toBe(!!c.result);
      expect(o.job.completionTime).toBe("2026-01-01T00:05:00.000Z");
    });
  }

  it("reads stage and attempt from labels", () => {
    const { job, pod } = finishedJob(run, "remediate", 2, { stage: "remediate", outcome: "succeeded" });
    expect(observeJob(job, [pod], now)!.job).toMatchObject({ stage: "remediate", attempt: 2 });
  });

  it("a running Job is Active", () => {
    const { job, pod } = finishedJob(run, "triage", 1, triage);
    job.status = { active: 1, startTime: new Date("2026-01-01T00:01:00Z") };
    pod.status = {
      phase: "Running",
      containerStatuses: [
        { name: "runner", image: "", imageID: "", ready: true, restartCount: 0, state: { running: {} } },
      ],
    };
    expect(observeJob(job, [pod], now)!.job.state).toBe("Active");
  });

  it("an image that cannot be pulled is stuck: infrastructure, delete the Job", () => {
    const { job, pod } = finishedJob(run, "triage", 1, triage);
    job.status = { active: 1 };
    pod.status = waitingStatus({ reason: "ImagePullBackOff" });
    const o = observeJob(job, [pod], now)!;
    expect(o).toMatchObject({
      stuck: true,
      job: { state: "Failed", infraError: expect.stringMatching(/ImagePullBackOff/) },
    });
  });

  it("a container config error is stuck only once it outlasts the grace (a real kubelet shows it for a moment)", () => {
    const { job, pod } = finishedJob(run, "triage", 1, triage);
    job.status = { active: 1 };
    pod.metadata = { ...pod.metadata, creationTimestamp: new Date(now.getTime() - 5_000) };
    pod.status = waitingStatus({ reason: "CreateContainerConfigError", message: 'secret "s" not found' });
    expect(observeJob(job, [pod], now)!).toMatchObject({ stuck: false, job: { state: "Active" } });
    const later = new Date(now.getTime() + CONFIG_GRACE_SECONDS * 1000);
    expect(observeJob(job, [pod], later)!).toMatchObject({
      stuck: true,
      job: { state: "Failed", infraError: expect.stringMatching(/CreateContainerConfigError: secret "s" not found/) },
    });
  });

  it("waits for the pod's final status before calling a finished Job a failure", () => {
    const { job } = finishedJob(run, "triage", 1, triage);
    expect(observeJob(job, [], now)!.job.state).toBe("Active");
    const later = new Date(Date.parse("2026-01-01T00:05:00Z") + (POD_GRACE_SECONDS + 1) * 1000);
    expect(observeJob(job, [], later)!.job).toMatchObject({ state: "Succeeded", infraError: "pod not found" });
  });

  it("a Job whose pod the API server refuses (FailedCreate) fails at once: infrastructure, delete the Job", () => {
    const { job, pod } = finishedJob(run, "triage", 1, triage);
    job.metadata = { ...job.metadata, uid: "job-uid" };
    job.status = { active: 0, startTime: new Date("2026-01-01T00:05:00Z") };
    const refused = (uid: string, message: string, at: string): CoreV1Event => ({
      metadata: { name: `e-${uid}-${at}`, namespace: "agentfactory" },
      involvedObject: { kind: "Job", name: job.metadata!.name!, namespace: "agentfactory", uid },
      reason: FAILED_CREATE,
      type: "Warning",
      message,
      lastTimestamp: new Date(at),
    });
    const events = [
      refused("job-uid", 'Error creating: pods "x" is forbidden: exceeded quota: q', "2026-01-01T00:05:01Z"),
      refused(
        "job-uid",
        'Error creating: pods "x" is forbidden: violates PodSecurity "restricted"',
        "2026-01-01T00:05:03Z",
      ),
      // The same name, another Job (an earlier one, deleted): not this Job's.
      refused("old-uid", "Error creating: older", "2026-01-01T00:05:09Z"),
    ];
    expect(observeJob(job, [], now, events)!).toEqual({
      stuck: true,
      job: {
        name: job.metadata!.name,
        stage: "triage",
        attempt: 1,
        state: "Failed",
        startTime: "2026-01-01T00:05:00.000Z",
        completionTime: now.toISOString(),
        infraError: 'FailedCreate: Error creating: pods "x" is forbidden: violates PodSecurity "restricted"',
      },
    });
    // Without the Event the Job is only waiting; with a pod, an earlier refusal was transient.
    expect(observeJob(job, [], now, events.slice(2))!).toMatchObject({ stuck: false, job: { state: "Active" } });
    pod.status = { phase: "Pending" };
    expect(observeJob(job, [pod], now, events)!).toMatchObject({ stuck: false, job: { state: "Active" } });
  });

  it("ignores Jobs without stage labels", () => {
    const { job, pod } = finishedJob(run, "triage", 1, triage);
    job.metadata!.labels = {};
    expect(observeJob(job, [pod], now)).toBeUndefined();
  });
});
