import { describe, expect, it } from "vitest";
import { LABELS } from "../core/names.ts";
import { restrictedViolations } from "../test/chart/pod-security.ts";
import { loadConfig } from "./config.ts";
import {
  ATTEMPT_TOKEN_KEY,
  buildJob,
  buildTokenSecret,
  DEADLINE_MARGIN_SECONDS,
  SANDBOX_CONTAINER,
  SANDBOX_DEFAULTS,
  SANDBOX_SOCKET,
  SANDBOX_UID,
  stageContext,
  TOKEN_KEY,
  VOLUME_SIZE_LIMITS,
} from "./job.ts";
import { jobSettings, volumeSizeLimits } from "./main.ts";
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
    expect(pod.volumes!.map((v) => v.name).sort()).toEqual([
      "home",
      "sandbox",
      "sandbox-home",
      "sandbox-tmp",
      "tmp",
      "workspace",
    ]);
    expect(c.volumeMounts!.map((v) => v.mountPath).sort()).toEqual([
      "/home/runner",
      "/run/agentfactory",
      "/tmp",
      "/workspace",
    ]);
    expect(c.command).toBeUndefined();
    expect(restrictedViolations(pod)).toEqual([]);
  });

  it("runs the agent's commands in a sandbox sidecar: another uid, no secrets, its own PID namespace", () => {
    expect(pod.shareProcessNamespace).toBe(false);
    expect(pod.securityContext!.fsGroup).toBe(10001);
    const sandbox = pod.initContainers!.find((x) => x.name === SANDBOX_CONTAINER)!;
    expect(sandbox).toMatchObject({
      restartPolicy: "Always",
      image: SETTINGS.image,
      command: ["/opt/agentfactory/agentfactory-init"],
      args: ["sandbox"],
    });
    expect(sandbox.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: SANDBOX_UID,
      runAsGroup: SANDBOX_UID,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(SANDBOX_UID).not.toBe(c.securityContext!.runAsUser);
    // No secret: no reference in its environment, no secret volume, not the runner's HOME or /tmp.
    expect(sandbox.env!.filter((e) => e.valueFrom !== undefined)).toEqual([]);
    expect(sandbox.envFrom).toBeUndefined();
    expect(JSON.stringify(sandbox.env)).not.toMatch(/TOKEN|KEY|SECRET/);
    expect(pod.volumes!.filter((v) => !v.emptyDir)).toEqual([]);
    expect(Object.fromEntries(sandbox.volumeMounts!.map((m) => [m.name, m.mountPath]))).toEqual({
      workspace: "/workspace",
      sandbox: "/run/agentfactory",
      "sandbox-home": "/home/runner",
      "sandbox-tmp": "/tmp",
    });
    const sandboxEnv = Object.fromEntries(sandbox.env!.map((e) => [e.name, e.value]));
    expect(sandboxEnv.AGENTFACTORY_SANDBOX_SOCKET).toBe(SANDBOX_SOCKET);
    expect(sandboxEnv.AGENTFACTORY_SANDBOX_NPROC).toBe(String(SANDBOX_DEFAULTS.maxProcesses));
    expect(env.AGENTFACTORY_SANDBOX_SOCKET!.value).toBe(SANDBOX_SOCKET);
  });

  it("limits storage and processes: emptyDir sizeLimits, ephemeral storage, RLIMIT_NPROC from the settings", () => {
    expect(Object.fromEntries(pod.volumes!.map((v) => [v.name, v.emptyDir!.sizeLimit]))).toEqual(VOLUME_SIZE_LIMITS);
    const sandbox = pod.initContainers![0]!;
    expect(sandbox.resources!.limits!["ephemeral-storage"]).toBe(SANDBOX_DEFAULTS.resources.ephemeralStorageLimit);
    const tuned = buildJob(
      { run, stage: "write", attempt: 1, jobName: "x", secretName: "x", budgetUsd: 1 },
      {
        ...SETTINGS,
        resources: { ...SETTINGS.resources, ephemeralStorageRequest: "1Gi", ephemeralStorageLimit: "3Gi" },
        sandbox: { maxProcesses: 200 },
        volumeSizeLimits: { workspace: "20Gi" },
      },
    ).spec!.template.spec!;
    expect(tuned.containers[0]!.resources).toEqual({
      limits: { cpu: "1", memory: "1Gi", "ephemeral-storage": "3Gi" },
      requests: { cpu: "100m", memory: "128Mi", "ephemeral-storage": "1Gi" },
    });
    expect(tuned.initContainers![0]!.env!.find((e) => e.name === "AGENTFACTORY_SANDBOX_NPROC")!.value).toBe("200");
    expect(tuned.volumes!.find((v) => v.name === "workspace")!.emptyDir!.sizeLimit).toBe("20Gi");
    expect(tuned.volumes!.find((v) => v.name === "home")!.emptyDir!.sizeLimit).toBe(VOLUME_SIZE_LIMITS.home);
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

describe("jobSettings (the chart's environment)", () => {
  it("maps the sandbox, ephemeral storage and volume limits, with the job builder's defaults", () => {
    const defaults = jobSettings(loadConfig({}));
    expect(defaults.sandbox).toEqual(SANDBOX_DEFAULTS);
    expect(defaults.volumeSizeLimits).toEqual({});
    expect(defaults.resources).toMatchObject({ ephemeralStorageRequest: "1Gi", ephemeralStorageLimit: "6Gi" });
    const tuned = jobSettings(
      loadConfig({
        SANDBOX_CPU_LIMIT: "4",
        SANDBOX_MEMORY_LIMIT: "8Gi",
        SANDBOX_EPHEMERAL_STORAGE_LIMIT: "20Gi",
        SANDBOX_MAX_PROCESSES: "300",
        RUNNER_VOLUME_SIZE_LIMITS: JSON.stringify({ workspace: "20Gi", "sandbox-tmp": "4Gi" }),
      }),
    );
    expect(tuned.sandbox).toEqual({
      resources: {
        ...SANDBOX_DEFAULTS.resources,
        cpuLimit: "4",
        memoryLimit: "8Gi",
        ephemeralStorageLimit: "20Gi",
      },
      maxProcesses: 300,
    });
    expect(tuned.volumeSizeLimits).toEqual({ workspace: "20Gi", "sandbox-tmp": "4Gi" });
    expect(defaults.imagePullSecrets).toBeUndefined();
    expect(defaults.terminationGracePeriodSeconds).toBe(15);
    expect(
      buildJob(
        { run: agentRun(), stage: "write", attempt: 1, jobName: "j", secretName: "j", budgetUsd: 1 },
        jobSettings(loadConfig({ RUNNER_TERMINATION_GRACE_SECONDS: "20" })),
      ).spec!.template.spec!.terminationGracePeriodSeconds,
    ).toBe(20);
    expect(() => volumeSizeLimits(JSON.stringify({ scratch: "1Gi" }))).toThrow(/unknown volume scratch/);
  });
});

describe("buildJob with the egress gateway", () => {
  const run = agentRun();
  const settings = {
    ...SETTINGS,
    anthropicBaseUrl: "https://api.anthropic.com",
    egress: { url: "http://egress:8080/" },
  };
  const job = buildJob(
    { run, stage: "write", attempt: 2, jobName: "j-write-2", secretName: "j-write-2", budgetUsd: 3 },
    settings,
  );
  const pod = job.spec!.template.spec!;
  const env = Object.fromEntries(pod.containers[0]!.env!.map((e) => [e.name, e]));

  it("points the model and the forge at the egress Service", () => {
    expect(env.ANTHROPIC_BASE_URL!.value).toBe("http://egress:8080");
    expect(env.GITHUB_API_URL!.value).toBe("http://egress:8080/api/v3");
    expect(env.GITHUB_SERVER_URL!.value).toBe("http://egress:8080");
  });

  it("gives the pod only the attempt token: no model key Secret, no forge token", () => {
    const attempt = { secretKeyRef: { name: "j-write-2", key: ATTEMPT_TOKEN_KEY } };
    expect(env.ANTHROPIC_API_KEY!.valueFrom).toEqual(attempt);
    expect(env.GITHUB_TOKEN!.valueFrom).toEqual(attempt);
    const refs = JSON.stringify([...pod.containers, ...(pod.initContainers ?? [])]);
    expect(refs).not.toContain(SETTINGS.modelSecretName);
    expect(refs).not.toContain(`"key":"${TOKEN_KEY}"`);
    const secret = buildTokenSecret(run, "j-write-2", "write", 2, "attempt.jwt", ATTEMPT_TOKEN_KEY);
    expect(Object.keys(secret.data!)).toEqual([ATTEMPT_TOKEN_KEY]);
  });

  it("off: the model key Secret and the forge token as before", () => {
    const direct = buildJob(
      { run, stage: "write", attempt: 2, jobName: "j-write-2", secretName: "j-write-2", budgetUsd: 3 },
      SETTINGS,
    );
    const e = Object.fromEntries(direct.spec!.template.spec!.containers[0]!.env!.map((x) => [x.name, x]));
    expect(e.ANTHROPIC_API_KEY!.valueFrom).toEqual({
      secretKeyRef: { name: SETTINGS.modelSecretName, key: SETTINGS.modelSecretKey },
    });
    expect(e.GITHUB_TOKEN!.valueFrom).toEqual({ secretKeyRef: { name: "j-write-2", key: TOKEN_KEY } });
    expect(e.GITHUB_API_URL!.value).toBe(SETTINGS.githubApiUrl);
  });

  it("is configured by EGRESS_* and refuses to start half-configured", () => {
    const c = loadConfig({
      EGRESS_ENABLED: "true",
      EGRESS_URL: "http://agentfactory-egress:8080",
      EGRESS_ADMIN_URL: "http://agentfactory-egress:8081",
      EGRESS_ADMIN_TOKEN: "admin-token-0123456789",
      EGRESS_ATTEMPT_TOKEN_KEY: "k".repeat(32),
    });
    expect(jobSettings(c).egress).toEqual({ url: "http://agentfactory-egress:8080" });
    expect(jobSettings(loadConfig({})).egress).toBeUndefined();
    expect(() => loadConfig({ EGRESS_ENABLED: "true", EGRESS_URL: "http://e:8080" })).toThrow(/EGRESS_ADMIN_URL/);
  });
});

describe("image pull secrets", () => {
  const input = { run: agentRun(), stage: "write" as const, attempt: 1, jobName: "j", secretName: "j", budgetUsd: 1 };
  it("puts the chart's imagePullSecrets on every stage pod, and none when there are none", () => {
    const settings = jobSettings(loadConfig({ RUNNER_IMAGE_PULL_SECRETS: " regcred, mirror ,," }));
    expect(settings.imagePullSecrets).toEqual(["regcred", "mirror"]);
    expect(buildJob(input, settings).spec!.template.spec!.imagePullSecrets).toEqual([
      { name: "regcred" },
      { name: "mirror" },
    ]);
    expect(buildJob(input, jobSettings(loadConfig({}))).spec!.template.spec!.imagePullSecrets).toBeUndefined();
  });
});
