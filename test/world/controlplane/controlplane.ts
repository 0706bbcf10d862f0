/**
 * A real Kubernetes control plane on loopback, in a temporary directory: etcd, kube-apiserver (Node and RBAC
 * authorizers, the default admission plugins — PodSecurity among them — plus NodeRestriction, a ServiceAccount
 * token issuer with a key made here), kube-controller-manager (Job, garbage collector, namespace, ServiceAccount
 * and token controllers, node lifecycle, TTL-after-finished, …) and kube-scheduler, all built from Go modules by
 * `.ci/install-control-plane` into .cache/bin. Nodes are not part of it: the test world's kubelet registers one.
 *
 * @example
 *   const cp = await startControlPlane();
 *   // cp.url, cp.version ("v1.34.4"), cp.kubeconfigPath (admin, system:masters), cp.nodeKubeconfigPath
 *   await cp.restart("kube-apiserver"); // SIGKILL and start again, same data
 *   await cp.stop();
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makePki, type Pki, writeKubeconfig } from "./pki.ts";
import { binaryPaths, type Component, freePort, httpsGet, Managed } from "./processes.ts";

export const NODE_NAME = "world-node";
export const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";

/** The controllers kube-controller-manager runs (everything a Job's life and the chart's objects need). */
export const CONTROLLERS = [
  "job-controller",
  "garbage-collector-controller",
  "namespace-controller",
  "serviceaccount-controller",
  "serviceaccount-token-controller",
  "ttl-after-finished-controller",
  "node-lifecycle-controller",
  "pod-garbage-collector-controller",
  "resourcequota-controller",
  "root-ca-certificate-publisher-controller",
  "clusterrole-aggregation-controller",
];

export interface ControlPlaneOptions {
  /** The node whose kubelet identity (client certificate) is made. Default "world-node". */
  nodeName?: string;
  /** kube-apiserver --max-requests-inflight (throttling tests); default the API server's own (400). */
  maxRequestsInflight?: number;
  /** Extra kube-apiserver flags. */
  apiserverArgs?: string[];
  /** Where the binaries are (default .cache/bin). */
  binDir?: string;
  /** Keep the temporary directory (logs, etcd data) after stop(). Also env KEEP_CONTROL_PLANE=1. */
  keep?: boolean;
}

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  url: string;
  host: string;
  port: number;
  /** kube-apiserver's gitVersion, e.g. "v1.34.4". */
  version: string;
  dir: string;
  pki: Pki;
  nodeName: string;
  /** Admin kubeconfig (client certificate in system:masters). */
  kubeconfigPath: string;
  /** The kubelet's kubeconfig (system:node:<nodeName>). */
  nodeKubeconfigPath: string;
  /** PEM of the cluster CA (what a pod finds in /var/run/secrets/kubernetes.io/serviceaccount/ca.crt). */
  caPem: string;
  /** SIGKILLs a component and starts it again with the same flags and data. */
  restart(component: Component): Promise<void>;
  /** SIGKILLs a component (start it again with `start`). */
  kill(component: Component): Promise<void>;
  start(component: Component): Promise<void>;
  /** The process id of each running component. */
  pids(): Partial<Record<Component, number>>;
  /** The last lines of a component's log. */
  logTail(component: Component, lines?: number): string;
  stop(): Promise<void>;
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const bins = binaryPaths(opts.binDir);
  const nodeName = opts.nodeName ?? NODE_NAME;
  const dir = await mkdtemp(join(tmpdir(), "af-controlplane-"));
  const procs = new Map<Component, Managed>();
  const stopAll = async () => {
    for (const c of ["kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"] as const)
      await procs.get(c)?.stop();
    if (!(opts.keep || process.env.KEEP_CONTROL_PLANE === "1")) await rm(dir, { recursive: true, force: true });
  };
  try {
    const pki = await makePki(join(dir, "pki"), { nodeName });
    const [etcdClient, etcdPeer, apiPort, cmPort, schedPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const url = `https://127.0.0.1:${apiPort}`;
    const logs = join(dir, "logs");
    await mkdir(logs);
    const kubeconfig = (name: string, client: Pki["admin"], user: string) =>
      writeKubeconfig(join(dir, `${name}.kubeconfig`), { server: url, ca: pki.ca, client, user });
    const kubeconfigPath = await kubeconfig("admin", pki.admin, "admin");
    const cmKubeconfig = await kubeconfig("controller-manager", pki.controllerManager, "kube-controller-manager");
    const schedKubeconfig = await kubeconfig("scheduler", pki.scheduler, "kube-scheduler");
    const nodeKubeconfigPath = await kubeconfig("node", pki.node, `system:node:${nodeName}`);

    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const etcd = new Managed({
      name: "etcd",
      bin: bins.etcd,
      args: [
        "--name=world",
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=world=http://127.0.0.1:${etcdPeer}`,
        "--initial-cluster-state=new",
        // A test world: losing the last writes on a machine crash is fine, waiting on fsync is not.
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
      logFile: join(logs, "etcd.log"),
      ready: async () => {
        const res = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2000) });
        return res.ok && ((await res.json()) as { health?: string }).health === "true";
      },
    });
    procs.set("etcd", etcd);
    await etcd.start();

    const admin = { ca: pki.ca, cert: pki.admin.cert, key: pki.admin.key };
    const apiserver = new Managed({
      name: "kube-apiserver",
      bin: bins["kube-apiserver"],
      args: [
        `--etcd-servers=${etcdUrl}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${apiPort}`,
        `--cert-dir=${join(dir, "apiserver-certs")}`,
        `--tls-cert-file=${pki.apiserver.cert}`,
        `--tls-private-key-file=${pki.apiserver.key}`,
        `--client-ca-file=${pki.ca}`,
        "--authorization-mode=Node,RBAC",
        // The default plugins (NamespaceLifecycle, LimitRanger, ServiceAccount, PodSecurity, Priority,
        // DefaultTolerationSeconds, RuntimeClass, ResourceQuota, the admission webhooks and policies, …) stay on.
        "--enable-admission-plugins=NodeRestriction",
        `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
        `--service-account-key-file=${pki.serviceAccountPub}`,
        `--service-account-signing-key-file=${pki.serviceAccountKey}`,
        "--service-cluster-ip-range=10.96.0.0/16",
        `--kubelet-client-certificate=${pki.apiserverKubeletClient.cert}`,
        `--kubelet-client-key=${pki.apiserverKubeletClient.key}`,
        `--kubelet-certificate-authority=${pki.ca}`,
        "--kubelet-preferred-address-types=InternalIP",
        // No Service VIP for `kubernetes` is reachable here; the world points clients at 127.0.0.1 directly.
        "--endpoint-reconciler-type=none",
        "--allow-privileged=false",
        "--profiling=false",
        ...(opts.maxRequestsInflight
          ? [
              `--max-requests-inflight=${opts.maxRequestsInflight}`,
              `--max-mutating-requests-inflight=${Math.max(1, Math.floor(opts.maxRequestsInflight / 2))}`,
            ]
          : []),
        ...(opts.apiserverArgs ?? []),
      ],
      logFile: join(logs, "kube-apiserver.log"),
      ready: async () => (await httpsGet(`${url}/readyz`, admin)).status === 200,
      readyTimeoutMs: 120_000,
    });
    procs.set("kube-apiserver", apiserver);
    await apiserver.start();

    const delegated = (kc: string) => [
      `--kubeconfig=${kc}`,
      `--authentication-kubeconfig=${kc}`,
      `--authorization-kubeconfig=${kc}`,
      "--bind-address=127.0.0.1",
      "--leader-elect=false",
    ];
    const cm = new Managed({
      name: "kube-controller-manager",
      bin: bins["kube-controller-manager"],
      args: [
        ...delegated(cmKubeconfig),
        `--secure-port=${cmPort}`,
        `--cert-dir=${join(dir, "controller-manager-certs")}`,
        `--controllers=${CONTROLLERS.join(",")}`,
        // Each controller acts as its own ServiceAccount in kube-system, authorized by the bootstrap RBAC roles.
        "--use-service-account-credentials=true",
        `--service-account-private-key-file=${pki.serviceAccountKey}`,
        `--root-ca-file=${pki.ca}`,
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--concurrent-job-syncs=20",
        "--concurrent-gc-syncs=20",
      ],
      logFile: join(logs, "kube-controller-manager.log"),
      ready: async () => (await httpsGet(`https://127.0.0.1:${cmPort}/healthz`, {})).status === 200,
    });
    procs.set("kube-controller-manager", cm);
    await cm.start();

    const scheduler = new Managed({
      name: "kube-scheduler",
      bin: bins["kube-scheduler"],
      args: [
        ...delegated(schedKubeconfig),
        `--secure-port=${schedPort}`,
        `--cert-dir=${join(dir, "scheduler-certs")}`,
        "--kube-api-qps=200",
        "--kube-api-burst=400",
      ],
      logFile: join(logs, "kube-scheduler.log"),
      ready: async () => (await httpsGet(`https://127.0.0.1:${schedPort}/healthz`, {})).status === 200,
    });
    procs.set("kube-scheduler", scheduler);
    await scheduler.start();

    const version = JSON.parse((await httpsGet(`${url}/version`, admin)).body) as { gitVersion: string };
    const get = (c: Component) => procs.get(c)!;
    return {
      url,
      host: "127.0.0.1",
      port: apiPort,
      version: version.gitVersion,
      dir,
      pki,
      nodeName,
      kubeconfigPath,
      nodeKubeconfigPath,
      caPem: pki.caPem,
      restart: (c) => get(c).restart(),
      kill: (c) => get(c).kill(),
      start: (c) => get(c).start(),
      logTail: (c, lines = 40) => get(c).logTail(lines),
      pids: () =>
        Object.fromEntries([...procs].filter(([, p]) => p.running).map(([c, p]) => [c, p.pid])) as Partial<
          Record<Component, number>
        >,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
