/** Test helpers for operator unit tests (fixtures only; no I/O). */
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import type { AgentRun } from "../core/agentrun.ts";
import { encodeResult, type StageResultInput } from "../core/result.ts";
import { runFromTicket } from "../core/run-from-ticket.ts";
import { Ticket, type TicketInput } from "../core/ticket.ts";
import { buildJob, type JobSettings } from "./job.ts";

export const SETTINGS: JobSettings = {
  image: "localhost/agentfactory-runner:dev",
  resources: { cpuLimit: "1", memoryLimit: "1Gi", cpuRequest: "100m", memoryRequest: "128Mi" },
  maxTurns: 30,
  ttlSecondsAfterFinished: 3600,
  githubApiUrl: "http://127.0.0.1:1/api/v3",
  githubServerUrl: "http://127.0.0.1:1",
  modelSecretName: "agentfactory-model",
  modelSecretKey: "ANTHROPIC_API_KEY",
};

export function ticket(over: Partial<TicketInput> = {}): Ticket {
  return Ticket.parse({
    id: "github:d-1",
    source: "github",
    deliveryId: "d-1",
    requestId: "req-1",
    receivedAt: "2026-01-01T00:00:00.000Z",
    repo: "acme/web",
    number: 7,
    workItem: "gh-7",
    url: "http://forge/acme/web/issues/7",
    title: "Add a health endpoint",
    body: "Please add /healthz",
    author: "alice",
    ...over,
  });
}

export function agentRun(over: Partial<TicketInput> = {}): AgentRun {
  const run = runFromTicket(ticket(over), {
    namespace: "agentfactory",
    model: { provider: "anthropic", name: "claude-test" },
    budgetUsd: 5,
    maxRemediationRounds: 2,
    stageTimeoutSeconds: 600,
  });
  run.metadata.uid = "uid-1";
  run.metadata.resourceVersion = "1";
  run.metadata.generation = 1;
  return run;
}

/** A Job as the API would return it, with a pod that terminated with `result` (or `terminated` overrides). */
export function finishedJob(
  run: AgentRun,
  stage: "triage" | "write" | "review" | "remediate",
  attempt: number,
  result: StageResultInput | undefined,
  opts: { failed?: boolean; reason?: string; message?: string; podReason?: string; at?: string } = {},
): { job: V1Job; pod: V1Pod } {
  const name = `${run.metadata.name}-${stage}-${attempt}`;
  const job = buildJob({ run, stage, attempt, jobName: name, secretName: name, budgetUsd: 1 }, SETTINGS);
  const at = opts.at ?? "2026-01-01T00:05:00Z";
  job.metadata!.uid = `job-${name}`;
  job.status = {
    startTime: new Date("2026-01-01T00:01:00Z"),
    ...(opts.failed
      ? {
          failed: 1,
          conditions: [
            {
              type: "Failed",
              status: "True",
              reason: opts.reason ?? "BackoffLimitExceeded",
              lastTransitionTime: new Date(at),
            },
          ],
        }
      : {
          succeeded: 1,
          completionTime: new Date(at),
          conditions: [{ type: "Complete", status: "True", lastTransitionTime: new Date(at) }],
        }),
  } as never;
  const pod: V1Pod = {
    metadata: {
      name: `${name}-abcde`,
      namespace: run.metadata.namespace,
      labels: { ...job.spec!.template.metadata!.labels, "batch.kubernetes.io/job-name": name },
      ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name, uid: `job-${name}`, controller: true }],
    },
    status: {
      phase: opts.failed ? "Failed" : "Succeeded",
      ...(opts.podReason ? { reason: opts.podReason } : {}),
      containerStatuses: [
        {
          name: "runner",
          image: "x",
          imageID: "x",
          ready: false,
          restartCount: 0,
          state: {
            terminated: {
              exitCode: opts.failed ? 1 : 0,
              reason: opts.reason === "OOMKilled" ? "OOMKilled" : opts.failed ? "Error" : "Completed",
              message: opts.message ?? (result ? encodeResult(result) : ""),
            },
          },
        },
      ],
    },
  };
  return { job, pod };
}

/** Equality-only label selector matching, for fakes in unit tests. */
export function matchesSelector(selector: string, labels: Record<string, string>): boolean {
  return selector
    .split(",")
    .filter(Boolean)
    .every((req) => {
      const [k, v] = req.split("=") as [string, string];
      return labels[k] === v;
    });
}
