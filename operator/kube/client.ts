import {
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Job,
  type V1Secret,
} from "@kubernetes/client-node";
import { Agent } from "undici";
import { type AgentRun, GROUP, PLURAL, VERSION } from "../../core/agentrun.ts";

/** undici, the same major version client-node's fetch uses (a direct dependency, so bundles include it). */
const undici = { Agent };

/**
 * client-node 2.x builds a new undici Agent for every request: a TLS handshake per call, and the
 * idle sockets of every agent linger. One shared dispatcher per config keeps connections pooled
 * (credentials travel in headers, so sharing it is safe). A short `keepAliveTimeoutThreshold`
 * keeps reusing sockets of servers that advertise a short `Keep-Alive: timeout=` (undici's 2 s
 * default threshold would otherwise close every socket after one request).
 */
export class PooledKubeConfig extends KubeConfig {
  private shared?: unknown;
  constructor() {
    super();
    const self = this as unknown as {
      createDispatcher: (...args: unknown[]) => unknown;
      createDispatcherOptions: (...args: unknown[]) => { type: string; connect?: object };
    };
    const original = self.createDispatcher.bind(this);
    self.createDispatcher = (...args: unknown[]) => {
      if (this.shared) return this.shared;
      const opts = self.createDispatcherOptions(...args);
      this.shared =
        opts.type === "agent"
          ? new undici.Agent({ connect: opts.connect, keepAliveTimeoutThreshold: 250 })
          : original(...args);
      return this.shared;
    };
  }
}

/**
 * The Kubernetes configuration: an explicit kubeconfig file, else the pod's service account (token, CA and
 * namespace under /var/run/secrets/kubernetes.io/serviceaccount, KUBERNETES_SERVICE_HOST/PORT). `root` stands
 * for the pod's root filesystem (those files are read under it), for running the in-cluster path outside a pod.
 */
export function loadKubeConfig(path?: string, root?: string): KubeConfig {
  const kc = new PooledKubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromCluster(root ?? "");
  return kc;
}

/** HTTP status of a client-node error (ApiException `.code`, watch errors `.statusCode`). */
export function statusCode(err: unknown): number | undefined {
  if (!err || typeof err !== "object") return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === "number") return e.code;
  if (typeof e.statusCode === "number") return e.statusCode;
  return undefined;
}

export const isNotFound = (err: unknown) => statusCode(err) === 404;
export const isAlreadyExists = (err: unknown) => statusCode(err) === 409;
export const isConflict = (err: unknown) => statusCode(err) === 409;

const crd = { group: GROUP, version: VERSION, plural: PLURAL };
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** The typed API calls the operator makes, in one place (so tests and the bench see one surface). */
export class KubeClient {
  readonly custom: CustomObjectsApi;
  readonly batch: BatchV1Api;
  readonly core: CoreV1Api;
  readonly coordination: CoordinationV1Api;

  constructor(readonly kc: KubeConfig) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.batch = kc.makeApiClient(BatchV1Api);
    this.core = kc.makeApiClient(CoreV1Api);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
  }

  async createRun(run: AgentRun): Promise<AgentRun> {
    const namespace = run.metadata.namespace ?? "default";
    return (await this.custom.createNamespacedCustomObject({ ...crd, namespace, body: run })) as AgentRun;
  }

  async getRun(namespace: string, name: string): Promise<AgentRun> {
    return (await this.custom.getNamespacedCustomObject({ ...crd, namespace, name })) as AgentRun;
  }

  async listRuns(namespace: string, labelSelector?: string): Promise<{ items: AgentRun[]; metadata?: object }> {
    return (await this.custom.listNamespacedCustomObject({
      ...crd,
      namespace,
      ...(labelSelector ? { labelSelector } : {}),
    })) as { items: AgentRun[] };
  }

  /** Merge-patches the spec (bumps generation). */
  async patchRun(namespace: string, name: string, patch: object): Promise<AgentRun> {
    return (await this.custom.patchNamespacedCustomObject(
      { ...crd, namespace, name, body: patch },
      mergePatch,
    )) as AgentRun;
  }

  /**
   * Replaces the status through the /status subresource. The object carries its resourceVersion,
   * so a write based on a stale cache fails with 409 and the key is reconciled again.
   */
  async replaceRunStatus(run: AgentRun): Promise<AgentRun> {
    const namespace = run.metadata.namespace ?? "default";
    return (await this.custom.replaceNamespacedCustomObjectStatus({
      ...crd,
      namespace,
      name: run.metadata.name,
      body: run,
    })) as AgentRun;
  }

  async createJob(job: V1Job): Promise<V1Job> {
    return this.batch.createNamespacedJob({ namespace: job.metadata!.namespace!, body: job });
  }

  async deleteJob(namespace: string, name: string): Promise<void> {
    await this.batch.deleteNamespacedJob({ namespace, name, propagationPolicy: "Background" });
  }

  async createSecret(secret: V1Secret): Promise<V1Secret> {
    return this.core.createNamespacedSecret({ namespace: secret.metadata!.namespace!, body: secret });
  }

  async replaceSecret(secret: V1Secret): Promise<V1Secret> {
    return this.core.replaceNamespacedSecret({
      namespace: secret.metadata!.namespace!,
      name: secret.metadata!.name!,
      body: secret,
    });
  }

  async createEvent(namespace: string, body: object): Promise<void> {
    await this.core.createNamespacedEvent({ namespace, body: body as never });
  }
}

export const paths = {
  runs: (ns: string) => `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`,
  jobs: (ns: string) => `/apis/batch/v1/namespaces/${ns}/jobs`,
  pods: (ns: string) => `/api/v1/namespaces/${ns}/pods`,
  events: (ns: string) => `/api/v1/namespaces/${ns}/events`,
};
