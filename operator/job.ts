import type { V1Job, V1OwnerReference, V1Secret } from "@kubernetes/client-node";
import type { AgentRun } from "../core/agentrun.ts";
import { ANNOTATIONS, LABELS, MANAGED_BY } from "../core/names.ts";
import type { StageName } from "../core/result.ts";

/** The part of the operator's configuration the Job builder reads. */
export interface JobSettings {
  image: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /** Names of the Secrets the kubelet pulls the runner image with (the chart's imagePullSecrets). */
  imagePullSecrets?: string[];
  runtimeClassName?: string;
  /** Seconds between SIGTERM and SIGKILL (the runner writes its "Terminated" result at once). */
  terminationGracePeriodSeconds?: number;
  serviceAccountName?: string;
  /** The runner container's resources (ephemeral storage: its writable layer and logs). */
  resources: ContainerResources;
  /** The sandbox container, where every command the agent can influence runs (defaults: SANDBOX_DEFAULTS). */
  sandbox?: Partial<SandboxSettings>;
  /** emptyDir sizeLimits (defaults: VOLUME_SIZE_LIMITS). */
  volumeSizeLimits?: Partial<Record<VolumeName, string>>;
  maxTurns: number;
  testCommand?: string;
  ttlSecondsAfterFinished: number;
  githubApiUrl: string;
  githubServerUrl: string;
  modelSecretName: string;
  modelSecretKey: string;
  anthropicBaseUrl?: string;
  /**
   * Set when the egress gateway is on: the runner's model base URL and forge API/git URLs point at this
   * URL (the egress Service), and the attempt token from the stage Secret is its model key and forge
   * token. No model key Secret is referenced.
   */
  egress?: { url: string };
}

export interface ContainerResources {
  cpuLimit: string;
  memoryLimit: string;
  cpuRequest: string;
  memoryRequest: string;
  ephemeralStorageRequest?: string;
  ephemeralStorageLimit?: string;
}

export interface SandboxSettings {
  resources: ContainerResources;
  /** RLIMIT_NPROC of the sandbox's uid (counted by the kernel per uid, across the node). */
  maxProcesses: number;
}

export const SANDBOX_DEFAULTS: SandboxSettings = {
  resources: {
    cpuRequest: "500m",
    memoryRequest: "1Gi",
    cpuLimit: "2",
    memoryLimit: "4Gi",
    ephemeralStorageRequest: "2Gi",
    ephemeralStorageLimit: "12Gi",
  },
  maxProcesses: 1024,
};

type VolumeName = "workspace" | "home" | "tmp" | "sandbox" | "sandbox-home" | "sandbox-tmp";
export const VOLUME_SIZE_LIMITS: Record<VolumeName, string> = {
  workspace: "8Gi",
  home: "4Gi",
  tmp: "1Gi",
  sandbox: "16Mi",
  "sandbox-home": "2Gi",
  "sandbox-tmp": "2Gi",
};

export interface JobInput {
  run: AgentRun;
  stage: StageName;
  attempt: number;
  jobName: string;
  /** The per-stage Secret holding GITHUB_TOKEN. */
  secretName: string;
  /** What this stage may spend: the run's remaining budget. */
  budgetUsd: number;
  /** The App's login (`<slug>[bot]`), so the runner counts only the App's own comments and reviews. */
  botLogin?: string;
}

/** Key of the forge token in the per-stage Secret. */
export const TOKEN_KEY = "GITHUB_TOKEN";
/** Key of the attempt token in the per-stage Secret (egress on: the only secret the pod gets). */
export const ATTEMPT_TOKEN_KEY = "AGENTFACTORY_ATTEMPT_TOKEN";
/** Extra seconds the Job deadline grants beyond the controller-enforced stage timeout. */
export const DEADLINE_MARGIN_SECONDS = 120;
export const RUNNER_CONTAINER = "runner";
export const SANDBOX_CONTAINER = "sandbox";
/** The sandbox's uid: not the runner's (10001), so it can neither signal nor read the runner's processes. */
export const SANDBOX_UID = 10002;
/** The sandbox's socket, in the emptyDir both containers mount. */
export const SANDBOX_SOCKET = "/run/agentfactory/sandbox.sock";

export function ownerReference(run: AgentRun): V1OwnerReference {
  return {
    apiVersion: run.apiVersion,
    kind: run.kind,
    name: run.metadata.name,
    uid: run.metadata.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function stageLabels(run: AgentRun, stage: StageName, attempt: number): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.component]: "runner",
    [LABELS.run]: run.metadata.name,
    [LABELS.stage]: stage,
    [LABELS.attempt]: String(attempt),
    ...(run.metadata.labels?.[LABELS.repo] ? { [LABELS.repo]: run.metadata.labels[LABELS.repo] } : {}),
  };
}

/** What the runner needs besides the ticket, as the contract's AGENTFACTORY_CONTEXT. */
export function stageContext(run: AgentRun): Record<string, unknown> {
  const s = run.status;
  const triage = s?.stages.filter((st) => st.name === "triage" && st.outcome === "Succeeded").at(-1);
  return {
    clarifications: run.spec.clarifications,
    ...(triage?.message ? { triageSpec: triage.message } : {}),
    ...(s?.pullRequest ? { pullRequest: s.pullRequest } : {}),
    ...(s?.round ? { round: s.round } : {}),
    ...(s?.riskTier ? { riskTier: s.riskTier } : {}),
  };
}

/** The batch/v1 Job of one stage attempt. Pure: the same input always yields the same object. */
export function buildJob(input: JobInput, settings: JobSettings): V1Job {
  const { run, stage, attempt, jobName } = input;
  const labels = stageLabels(run, stage, attempt);
  const requestId = run.metadata.annotations?.[ANNOTATIONS.requestId] ?? run.metadata.name;
  const env: { name: string; value?: string; valueFrom?: object }[] = [
    { name: "AGENTFACTORY_STAGE", value: stage },
    { name: "AGENTFACTORY_RUN", value: run.metadata.name },
    { name: "AGENTFACTORY_ATTEMPT", value: String(attempt) },
    { name: "AGENTFACTORY_TICKET", value: JSON.stringify(run.spec.ticket) },
    { name: "AGENTFACTORY_CONTEXT", value: JSON.stringify(stageContext(run)) },
    { name: "AGENTFACTORY_REQUEST_ID", value: requestId },
    { name: "AGENTFACTORY_PROVIDER", value: run.spec.model.provider },
    { name: "AGENTFACTORY_MODEL", value: run.spec.model.name },
    { name: "AGENTFACTORY_BUDGET_USD", value: String(Math.max(0, round4(input.budgetUsd))) },
    { name: "AGENTFACTORY_MAX_TURNS", value: String(settings.maxTurns) },
    { name: "AGENTFACTORY_WORKSPACE", value: "/workspace" },
    { name: "AGENTFACTORY_TERMINATION_LOG", value: "/dev/termination-log" },
    ...(settings.testCommand ? [{ name: "AGENTFACTORY_TEST_COMMAND", value: settings.testCommand }] : []),
    ...(input.botLogin ? [{ name: "AGENTFACTORY_BOT_LOGIN", value: input.botLogin }] : []),
    ...(settings.egress ? egressEnv(settings.egress.url, input.secretName) : directEnv(settings, input.secretName)),
    { name: "HOME", value: "/home/runner" },
    { name: "AGENTFACTORY_SANDBOX_SOCKET", value: SANDBOX_SOCKET },
  ];
  const dirs = { workspace: "/workspace", home: "/home/runner", tmp: "/tmp", sandbox: "/run/agentfactory" };
  const sandbox = { ...SANDBOX_DEFAULTS, ...settings.sandbox };
  const sizeLimits = { ...VOLUME_SIZE_LIMITS, ...settings.volumeSizeLimits };
  const restricted = (uid: number, gid: number) => ({
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: gid,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  });
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: jobName,
      namespace: run.metadata.namespace,
      labels,
      annotations: { [ANNOTATIONS.requestId]: requestId },
      ownerReferences: [ownerReference(run)],
    },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: run.spec.stageTimeoutSeconds + DEADLINE_MARGIN_SECONDS,
      ttlSecondsAfterFinished: settings.ttlSecondsAfterFinished,
      template: {
        metadata: { labels, annotations: { [ANNOTATIONS.requestId]: requestId } },
        spec: {
          restartPolicy: "Never",
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          ...(settings.imagePullSecrets?.length
            ? { imagePullSecrets: settings.imagePullSecrets.map((name) => ({ name })) }
            : {}),
          ...(settings.terminationGracePeriodSeconds
            ? { terminationGracePeriodSeconds: settings.terminationGracePeriodSeconds }
            : {}),
          ...(settings.runtimeClassName ? { runtimeClassName: settings.runtimeClassName } : {}),
          ...(settings.serviceAccountName ? { serviceAccountName: settings.serviceAccountName } : {}),
          // Each container has its own PID namespace: the sandbox cannot see, signal or ptrace the runner.
          shareProcessNamespace: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 10001,
            runAsGroup: 10001,
            // The shared workspace is group-owned by fsGroup (setgid) and both containers have it.
            fsGroup: 10001,
            seccompProfile: { type: "RuntimeDefault" },
          },
          // A native sidecar: started before the runner, stopped after it; restarted if the agent kills it.
          initContainers: [
            {
              name: SANDBOX_CONTAINER,
              image: settings.image,
              imagePullPolicy: settings.imagePullPolicy ?? "IfNotPresent",
              restartPolicy: "Always",
              command: ["/opt/agentfactory/agentfactory-init"],
              args: ["sandbox"],
              // No secret: not in the environment, not in a mount.
              env: [
                { name: "AGENTFACTORY_SANDBOX_SOCKET", value: SANDBOX_SOCKET },
                { name: "AGENTFACTORY_SANDBOX_NPROC", value: String(sandbox.maxProcesses) },
                { name: "AGENTFACTORY_WORKSPACE", value: "/workspace" },
                { name: "HOME", value: "/home/runner" },
              ],
              terminationMessagePolicy: "FallbackToLogsOnError",
              resources: containerResources(sandbox.resources),
              securityContext: restricted(SANDBOX_UID, SANDBOX_UID),
              volumeMounts: [
                { name: "workspace", mountPath: "/workspace" },
                { name: "sandbox", mountPath: "/run/agentfactory" },
                { name: "sandbox-home", mountPath: "/home/runner" },
                { name: "sandbox-tmp", mountPath: "/tmp" },
              ],
            },
          ],
          containers: [
            {
              name: RUNNER_CONTAINER,
              image: settings.image,
              imagePullPolicy: settings.imagePullPolicy ?? "IfNotPresent",
              env: env as never,
              terminationMessagePath: "/dev/termination-log",
              terminationMessagePolicy: "FallbackToLogsOnError",
              resources: containerResources(settings.resources),
              securityContext: restricted(10001, 10001),
              volumeMounts: Object.entries(dirs).map(([name, mountPath]) => ({ name, mountPath })),
            },
          ],
          volumes: Object.entries(sizeLimits).map(([name, sizeLimit]) => ({ name, emptyDir: { sizeLimit } })),
        },
      },
    },
  };
}

/**
 * The per-stage Secret with the short-lived forge token (egress on: the attempt token under
 * ATTEMPT_TOKEN_KEY), owned by the AgentRun (garbage-collected with it).
 */
export function buildTokenSecret(
  run: AgentRun,
  name: string,
  stage: StageName,
  attempt: number,
  token: string,
  key: string = TOKEN_KEY,
): V1Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: {
      name,
      namespace: run.metadata.namespace,
      labels: stageLabels(run, stage, attempt),
      ownerReferences: [ownerReference(run)],
    },
    data: { [key]: Buffer.from(token).toString("base64") },
  };
}

/** Straight to the forge and the model provider: the forge token and the model key are in the pod. */
function directEnv(settings: JobSettings, secretName: string) {
  return [
    { name: "GITHUB_API_URL", value: settings.githubApiUrl },
    { name: "GITHUB_SERVER_URL", value: settings.githubServerUrl },
    { name: "GITHUB_TOKEN", valueFrom: { secretKeyRef: { name: secretName, key: TOKEN_KEY } } },
    {
      name: "ANTHROPIC_API_KEY",
      valueFrom: { secretKeyRef: { name: settings.modelSecretName, key: settings.modelSecretKey } },
    },
    ...(settings.anthropicBaseUrl ? [{ name: "ANTHROPIC_BASE_URL", value: settings.anthropicBaseUrl }] : []),
  ];
}

/**
 * Through the egress gateway: the attempt token is the model key and the forge token (the gateway swaps
 * in the real ones); the forge is reached in the GitHub Enterprise layout the gateway serves.
 */
function egressEnv(url: string, secretName: string) {
  const base = url.replace(/\/$/, "");
  const attempt = { secretKeyRef: { name: secretName, key: ATTEMPT_TOKEN_KEY } };
  return [
    { name: "GITHUB_API_URL", value: `${base}/api/v3` },
    { name: "GITHUB_SERVER_URL", value: base },
    { name: "GITHUB_TOKEN", valueFrom: attempt },
    { name: "ANTHROPIC_API_KEY", valueFrom: attempt },
    { name: "ANTHROPIC_BASE_URL", value: base },
  ];
}

const round4 = (n: number) => Math.round(n * 1e4) / 1e4;

function containerResources(r: ContainerResources): {
  limits: Record<string, string>;
  requests: Record<string, string>;
} {
  const storage = (v: string | undefined): Record<string, string> => (v ? { "ephemeral-storage": v } : {});
  return {
    limits: { cpu: r.cpuLimit, memory: r.memoryLimit, ...storage(r.ephemeralStorageLimit) },
    requests: { cpu: r.cpuRequest, memory: r.memoryRequest, ...storage(r.ephemeralStorageRequest) },
  };
}
