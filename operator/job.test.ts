import { describe, expect, it } from "vitest";
import { LABELS } from "../core/names.ts";
import { buildJob, buildTokenSecret, DEADLINE_MARGIN_SECONDS, stageContext } from "./job.ts";
import { agentRun, SETTINGS } from "./testing.ts";

describe("buildJob", () => {
  const run = agentRun();
  const job = buildJob(
    { run, stage: "triage", attempt: 1, jobName: "j-triage-1", secretName: "j-triage-1", budgetUsd: 4.5 },
    SETTINGS,
  );
  const pod = job.spec!.template.spec!;
  const c = pod.containers[0]!;
  const env = Object.fromEntries(c.env!.map((e) => [e.name, e]));

  it("names, labels and owns the Job", () => {
    expect(job.metadata!.name).toBe("j-triage-1");
    expect(job.metadata!.labels![LABELS.run]).toBe(run.metadata.name);
    expect(job.metadata!.labels![LABELS.stage]).toBe("triage");
    expect(job.metadata!.labels![LABELS.attempt]).toBe("1");
    expect(pod.securityContext).toBeDefined();
    expect(job.spec!.template.metadata!.labels![LABELS.run]).toBe(run.metadata.name);
    expect(job.metadata!.ownerReferences).toEqual([
      expect.objectContaining({ kind: "AgentRun", name: run.metadata.name, uid: "uid-1", controller: true }),
    ]);
  });

  it("leaves retries and deadlines to the operator, with a backstop", () => {
    expect(job.spec!.backoffLimit).toBe(0);
    expect(job.spec!.activeDeadlineSeconds).toBe(run.spec.stageTimeoutSeconds + DEADLINE_MARGIN_SECONDS);
    expect(job.spec!.ttlSecondsAfterFinished).toBe(3600);
    expect(pod.restartPolicy).toBe("Never");
  });

  it("runs under the restricted Pod Security Standard without a service account token", () => {
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(c.terminationMessagePolicy).toBe("FallbackToLogsOnError");
    expect(c.resources!.limits).toEqual({ cpu: "1", memory: "1Gi" });
    expect(pod.volumes!.map((v) => v.name).sort()).toEqual(["home", "tmp", "workspace"]);
    expect(c.volumeMounts!.map((v) => v.mountPath).sort()).toEqual(["/home/runner", "/tmp", "/workspace"]);
    expect(c.command).toBeUndefined();
  });

  it("passes the runner contract's environment, secrets by reference only", () => {
    expect(env.AGENTFACTORY_STAGE!.value).toBe("triage");
    expect(env.AGENTFACTORY_RUN!.value).toBe(run.metadata.name);
    expect(env.AGENTFACTORY_ATTEMPT!.value).toBe("1");
    expect(JSON.parse(env.AGENTFACTORY_TICKET!.value!)).toMatchObject({ repo: "acme/web", number: 7 });
    expect(JSON.parse(env.AGENTFACTORY_CONTEXT!.value!)).toEqual({ clarifications: [] });
    expect(env.AGENTFACTORY_REQUEST_ID!.value).toBe("req-1");
    expect(env.AGENTFACTORY_BUDGET_USD!.value).toBe("4.5");
    expect(env.AGENTFACTORY_MODEL!.value).toBe("claude-test");
    expect(env.HOME!.value).toBe("/home/runner");
    expect(env.GITHUB_TOKEN!.value).toBeUndefined();
    expect(env.GITHUB_TOKEN!.valueFrom).toEqual({ secretKeyRef: { name: "j-triage-1", key: "GITHUB_TOKEN" } });
    expect(env.ANTHROPIC_API_KEY!.valueFrom).toEqual({
      secretKeyRef: { name: "agentfactory-model", key: "ANTHROPIC_API_KEY" },
    });
    expect(env.ANTHROPIC_BASE_URL).toBeUndefined();
  });

  it("is deterministic and sets the optional runtime class", () => {
    const input = { run, stage: "write" as const, attempt: 2, jobName: "x", secretName: "x", budgetUsd: 1 };
    expect(buildJob(input, SETTINGS)).toEqual(buildJob(input, SETTINGS));
    expect(buildJob(input, { ...SETTINGS, runtimeClassName: "gvisor" }).spec!.template.spec!.runtimeClassName).toBe(
      "gvisor",
    );
  });
});

describe("stageContext", () => {
  it("carries clarifications, the triage spec, PR, round and risk tier", () => {
    const run = agentRun();
    run.spec.clarifications = [{ author: "bob", body: "use JSON", at: "t" }];
    run.status = {
      phase: "Reviewing",
      conditions: [],
      round: 1,
      questions: 1,
      riskTier: "medium",
      costUsd: 0,
      pullRequest: { number: 3, url: "u", branch: "agent/7-x", headSha: "abc" },
      stages: [
        {
          name: "triage",
          attempt: 1,
          jobName: "t",
          outcome: "Succeeded",
          costUsd: 0,
          tokens: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
          turns: 0,
          durationSeconds: 0,
          message: "the spec",
        },
      ],
    };
    expect(stageContext(run)).toEqual({
      clarifications: [{ author: "bob", body: "use JSON", at: "t" }],
      triageSpec: "the spec",
      pullRequest: { number: 3, url: "u", branch: "agent/7-x", headSha: "abc" },
      round: 1,
      riskTier: "medium",
    });
  });
});

describe("buildTokenSecret", () => {
  it("holds the token base64-encoded and is owned by the run", () => {
    const s = buildTokenSecret(agentRun(), "j-1", "write", 1, "ghs_secret");
    expect(Buffer.from(s.data!.GITHUB_TOKEN!, "base64").toString()).toBe("ghs_secret");
    expect(s.metadata!.ownerReferences![0]!.uid).toBe("uid-1");
  });
});
