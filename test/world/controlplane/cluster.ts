/**
 * The test world's cluster on the real control plane: startControlPlane(), the chart `helm install`ed into it
 * (CRD, the runs namespace labeled Pod Security "restricted", ServiceAccounts, Roles and RoleBindings), the
 * world's kubelet registered as a Node, the operator's in-cluster credentials (a TokenRequest token of the
 * chart's operator ServiceAccount, the CA and KUBERNETES_SERVICE_HOST/PORT, as a pod gets them), and a watch cache
 * of AgentRuns, Jobs and Pods in the runs namespace for tests to read synchronously.
 *
 * @example
 *   const cluster = await startCluster({ kubeletMode: "process" });
 *   cluster.operatorEnv; // SERVICE_ACCOUNT_ROOT, KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT
 *   cluster.list("jobs", "agentfactory");
 *   await cluster.stop();
 */
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  ApiextensionsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubernetesObject,
  type V1Secret,
} from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION } from "../../../core/agentrun.ts";
import { PooledKubeConfig, statusCode } from "../../../operator/kube/client.ts";
import { ResilientInformer } from "../../../operator/kube/informer.ts";
import { type ApiKubelet, type KubeletMode, startApiKubelet } from "../kube/api-kubelet.ts";
import { REPO_ROOT } from "../kube/server.ts";
import { type ControlPlane, type ControlPlaneOptions, startControlPlane } from "./controlplane.ts";

const exec = promisify(execFile);
export const HELM = join(REPO_ROOT, ".cache/bin/helm");
export const KUBECTL = join(REPO_ROOT, ".cache/bin/kubectl");
export const CHART_DIR = join(REPO_ROOT, "charts/agentfactory");
export const WORLD_VALUES = join(REPO_ROOT, "test/world/controlplane/values.yaml");
export const RELEASE = "agentfactory";
export const RELEASE_NAMESPACE = "agentfactory-system";
/** The runs namespace of WORLD_VALUES. */
export const RUNS_NAMESPACE = "agentfactory";
/** The chart's names for release "agentfactory" (fullname = release name, as it contains the chart name). */
export const OPERATOR_SERVICE_ACCOUNT = "agentfactory-operator";
export const RUNNER_SERVICE_ACCOUNT = "agentfactory-runner";
export const OPERATOR_ROLE = "agentfactory-operator";

// biome-ignore lint/suspicious/noExplicitAny: API objects read loosely by tests
type Obj = Record<string, any>;
export type CachedResource = "agentruns" | "jobs" | "pods";

export interface ClusterOptions extends ControlPlaneOptions {
  kubeletMode?: KubeletMode;
  /** Process-mode kubelet: the command each container runs. */
  processCommand?: string[];
  /** Extra `helm install` values, as --set key=value. */
  set?: Record<string, string>;
}

export interface Cluster {
  cp: ControlPlane;
  kubelet: ApiKubelet;
  url: string;
  version: string;
  /** Admin kubeconfig. */
  kubeconfigPath: string;
  /** Admin clients. */
  kc: PooledKubeConfig;
  core: CoreV1Api;
  batch: BatchV1Api;
  custom: CustomObjectsApi;
  /** What the operator process needs to take the in-cluster path with its own ServiceAccount's token. */
  operatorEnv: Record<string, string>;
  /** The cached objects of one kind in a namespace (watch cache; eventually consistent). */
  list(resource: CachedResource, namespace?: string): Obj[];
  /** A Secret in the runs namespace (admin). */
  createSecret(name: string, data: Record<string, string>, namespace?: string): Promise<void>;
  /** `helm <args>` against this cluster. */
  helm(args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** `kubectl <args>` against this cluster as admin. */
  kubectl(args: string[]): Promise<{ stdout: string; stderr: string }>;
  podLog(namespace: string, name: string): string | undefined;
  stop(): Promise<void>;
}

/** `helm install` of the chart with the world's values (and `set` overrides). */
export function helmInstallArgs(set: Record<string, string> = {}, verb: "install" | "upgrade" = "install"): string[] {
  return [
    verb,
    RELEASE,
    CHART_DIR,
    "--namespace",
    RELEASE_NAMESPACE,
    ...(verb === "install" ? ["--create-namespace"] : []),
    "--values",
    WORLD_VALUES,
    ...Object.entries(set).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
  ];
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const cp = await startControlPlane(opts);
  const stops: Array<() => Promise<void>> = [() => cp.stop()];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const kc = new PooledKubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const batch = kc.makeApiClient(BatchV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const run = async (bin: string, args: string[]) => {
      try {
        return await exec(bin, args, { env: { ...process.env, KUBECONFIG: cp.kubeconfigPath }, maxBuffer: 1 << 26 });
      } catch (e) {
        const err = e as { stderr?: string; message: string };
        throw new Error(`${bin.split("/").pop()} ${args.slice(0, 2).join(" ")} failed: ${err.stderr || err.message}`);
      }
    };
    const helm = (args: string[]) => run(HELM, ["--kubeconfig", cp.kubeconfigPath, ...args]);
    const kubectl = (args: string[]) => run(KUBECTL, ["--kubeconfig", cp.kubeconfigPath, ...args]);

    // The node first: the chart's objects need none, but runner pods do.
    const kubelet = await startApiKubelet({
      cp,
      ...(opts.kubeletMode ? { mode: opts.kubeletMode } : {}),
      ...(opts.processCommand ? { processCommand: opts.processCommand } : {}),
    });
    stops.push(() => kubelet.stop());

    await helm(helmInstallArgs(opts.set));
    await waitUntil("the AgentRun CRD to be established", async () => {
      const crd = await kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({
        name: `${PLURAL}.${GROUP}`,
      });
      return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
    });
    // The ServiceAccount controller's `default` account, and the node schedulable (node lifecycle removed the
    // not-ready taint): before either, runner pods would be refused or left Pending.
    await waitUntil(
      "the default ServiceAccount in the runs namespace",
      async () =>
        (await core.readNamespacedServiceAccount({ name: "default", namespace: RUNS_NAMESPACE })).metadata?.name,
    );
    await waitUntil("the node to be schedulable", async () => {
      const node = await core.readNode({ name: cp.nodeName });
      return !(node.spec?.taints ?? []).some((t) => t.effect === "NoSchedule" || t.effect === "NoExecute");
    });

    // The operator's in-cluster credentials, laid out under a directory standing for a pod's root filesystem.
    const saRoot = join(cp.dir, "operator-pod-root");
    const saDir = join(saRoot, "var/run/secrets/kubernetes.io/serviceaccount");
    await mkdir(saDir, { recursive: true, mode: 0o700 });
    const tr = await core.createNamespacedServiceAccountToken({
      name: OPERATOR_SERVICE_ACCOUNT,
      namespace: RELEASE_NAMESPACE,
      body: { spec: { audiences: [], expirationSeconds: 6 * 3600 } },
    });
    await writeFile(join(saDir, "token"), tr.status?.token ?? "", { mode: 0o600 });
    await writeFile(join(saDir, "ca.crt"), cp.caPem);
    await writeFile(join(saDir, "namespace"), RELEASE_NAMESPACE);

    const informers = new Map<CachedResource, ResilientInformer<KubernetesObject>>();
    const ns = RUNS_NAMESPACE;
    informers.set(
      "agentruns",
      new ResilientInformer({
        name: "world-agentruns",
        kc,
        path: `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`,
        list: () =>
          custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL }) as never,
      }),
    );
    informers.set(
      "jobs",
      new ResilientInformer({
        name: "world-jobs",
        kc,
        path: `/apis/batch/v1/namespaces/${ns}/jobs`,
        list: () => batch.listNamespacedJob({ namespace: ns }) as never,
      }),
    );
    informers.set(
      "pods",
      new ResilientInformer({
        name: "world-pods",
        kc,
        path: `/api/v1/namespaces/${ns}/pods`,
        list: () => core.listNamespacedPod({ namespace: ns }) as never,
      }),
    );
    for (const inf of informers.values()) await inf.start();
    stops.push(async () => {
      for (const inf of informers.values()) await inf.stop();
    });

    return {
      cp,
      kubelet,
      url: cp.url,
      version: cp.version,
      kubeconfigPath: cp.kubeconfigPath,
      kc,
      core,
      batch,
      custom,
      operatorEnv: {
        SERVICE_ACCOUNT_ROOT: saRoot,
        KUBERNETES_SERVICE_HOST: cp.host,
        KUBERNETES_SERVICE_PORT: String(cp.port),
      },
      list: (resource, namespace) => (informers.get(resource)!.list(namespace) as Obj[]).map((o) => structuredClone(o)),
      async createSecret(name, data, namespace = RUNS_NAMESPACE) {
        const body: V1Secret = {
          metadata: { name, namespace },
          data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
        };
        try {
          await core.createNamespacedSecret({ namespace, body });
        } catch (err) {
          if (statusCode(err) !== 409) throw err;
          await core.replaceNamespacedSecret({ name, namespace, body });
        }
      },
      helm,
      kubectl,
      podLog: (namespace, name) => kubelet.logs(namespace, name),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

export async function waitUntil<T>(
  what: string,
  fn: () => Promise<T | undefined | false | null>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}
