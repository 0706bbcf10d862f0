/**
 * The test world's kubelet on the real API server. It registers a Node (with its heartbeat Lease in
 * kube-node-lease), watches the pods the scheduler binds to it (fieldSelector spec.nodeName), runs every
 * container of each pod as a Podman container of its image or as a local process, and writes `pods/status` as a
 * real kubelet does. It authenticates as system:node:<name>, so the Node authorizer and NodeRestriction decide
 * what it may read and write (only the Secrets of the pods bound to it, only its own Node). It serves container
 * logs on an HTTPS port, so `kubectl logs [-c container]` works through the API server.
 *
 * Containers run as the simulator's kubelet runs them (the shared engine of kubelet.ts): init containers in
 * order, each to completion (a failure fails the pod); native sidecars (init containers with `restartPolicy:
 * Always`) started without waiting and restarted with a back-off if they exit while the pod runs; then every
 * regular container; once these have all ended the sidecars are stopped (SIGTERM, last-started first, SIGKILL
 * after the pod's terminationGracePeriodSeconds) and only then does the phase turn Succeeded/Failed, from the
 * regular containers alone. Volumes are per pod and shared by its containers (emptyDirs group-owned by fsGroup,
 * setgid, under a root kubelet); podman mode honours each container's runAsUser/runAsGroup, the pod's fsGroup
 * and supplementalGroups (--group-add) and the node's podPidsLimit (--pids-limit).
 *
 * pods/status: Pending (waiting PodInitializing or ContainerCreating, CreateContainerConfigError while a
 * Secret is missing), Running once a regular container runs, Succeeded/Failed; initContainerStatuses (init
 * containers: `started` while running, `ready` once completed; sidecars: `started` and `ready` while running,
 * CrashLoopBackOff with `lastState` between restarts) and containerStatuses (exit code, reason Completed, Error
 * or OOMKilled, termination message); conditions PodReadyToStartContainers, Initialized, Ready, ContainersReady
 * and PodScheduled with the reasons and messages of the kubelet's status generator (ContainersNotInitialized,
 * ContainersNotReady, PodCompleted, PodFailed) and lastTransitionTime kept while a condition holds. A pod
 * deleted with a grace period gets SIGTERM to its regular containers, then to its sidecars, SIGKILL when the
 * grace runs out, and is then removed with gracePeriodSeconds=0, as the kubelet confirms a graceful deletion.
 *
 * @example
 *   const kubelet = await startApiKubelet({ cp, mode: "process", processCommand: ["/bin/sh", "runner.sh"] });
 *   kubelet.logs("agentfactory", podName); // the regular containers' output; kubelet.logs(ns, pod, "sandbox")
 *   await kubelet.stop();
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoordinationV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { PooledKubeConfig, statusCode } from "../../../operator/kube/client.ts";
import { ResilientInformer } from "../../../operator/kube/informer.ts";
import { microTime } from "../../../operator/kube/leader.ts";
import { PODMAN_GLOBAL_ARGS } from "../podman.ts";
import {
  type ContainerRun,
  configureContainer,
  launchContainer,
  type PodContainer,
  podContainers,
  podmanStopArgs,
  readTerminationMessage,
  runContainers,
  setUpPodVolumes,
  spawnContainer,
} from "./kubelet.ts";
import { ConfigError, type Container, type DataLookup, secretData } from "./pod-env.ts";
import { PodLogs, serveLog } from "./pod-logs.ts";
import type { PodSecurityContext } from "./podman-args.ts";
import type { Obj } from "./store.ts";

export type KubeletMode = "process" | "podman";

export interface ApiKubeletOptions {
  /** What the control plane gives the kubelet: its node name, kubeconfig and PKI. */
  cp: {
    nodeName: string;
    nodeKubeconfigPath: string;
    version?: string;
    pki: { ca: string; kubeletServing: { cert: string; key: string } };
  };
  /** Default: env KUBELET_MODE, else "podman". */
  mode?: KubeletMode;
  /** Process mode: the command run for every container (container args are appended; `command` is ignored). */
  processCommand?: string[];
  /** Podman mode: the image to run instead of the containers' own. */
  image?: string;
  /** Extra environment for every container; overrides the pod's env. */
  extraEnv?: Record<string, string>;
  /** The node's podPidsLimit (a kubelet setting): podman mode gives each container `--pids-limit`. */
  podPidsLimit?: number;
}

export interface ApiContainerRun extends ContainerRun {
  /** The signals the kubelet sent this container, in order (SIGTERM to stop it, SIGKILL when its grace ran out). */
  signals: string[];
}

export interface ApiPodRun {
  namespace: string;
  name: string;
  uid: string;
  /** The owning Job's name, if any. */
  job?: string;
  phase: "Pending" | "Running" | "Succeeded" | "Failed";
  /** The first regular container's exit code and pid (the runner, in a stage pod). */
  exitCode?: number;
  pid?: number;
  /** The grace period the pod was deleted with, if it was. */
  deletionGraceSeconds?: number;
  /** The signals the kubelet sent the first regular container (SIGTERM on graceful deletion, then SIGKILL). */
  signals: string[];
  /** Container path → host directory of each volume the first regular container mounts (once set up). */
  mounts: Record<string, string>;
  /** Every container, init containers and sidecars first. */
  containers: ApiContainerRun[];
}

export interface ApiKubelet {
  nodeName: string;
  pods(): ApiPodRun[];
  /** A container's log as `kubectl logs -c` shows it; without `container`, the regular containers' output. */
  logs(namespace: string, name: string, container?: string): string | undefined;
  stop(): Promise<void>;
}

interface Ctr extends PodContainer {
  info: ApiContainerRun;
  /** SIGKILL when the grace period of a stop runs out (at killAt, ms since the epoch). */
  killTimer?: NodeJS.Timeout;
  killAt?: number;
}

interface Running {
  run: ApiPodRun;
  pod: V1Pod;
  dir: string;
  ctrs: Ctr[];
  /** When the kubelet acknowledged the pod (status.startTime). */
  startTime: string;
  /** Deleted (or the kubelet stopping): nothing more is started. */
  killed: boolean;
  /** Deletion: when the grace period ends (ms since the epoch). */
  deadline?: number;
  /** The container that cannot be configured yet (CreateContainerConfigError). */
  configError?: { container: string; message: string };
  configErrorReported?: boolean;
  /** Each condition's status and when it last changed. */
  conditions: Map<string, { status: string; lastTransitionTime: string }>;
  retry?: NodeJS.Timeout;
  finished: boolean;
  done: Promise<void>;
  resolveDone: () => void;
}

interface Condition {
  status: "True" | "False";
  reason?: string;
  message?: string;
}

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const now = () => new Date().toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isMain = (c: PodContainer) => c.info.kind === "main";
const alive = (child: ChildProcess | undefined): child is ChildProcess =>
  child !== undefined && child.exitCode === null && child.signalCode === null;
/** A Go `%s` of a []string, as the kubelet's condition messages print container names. */
const goList = (names: string[]) => `[${names.join(" ")}]`;

export async function startApiKubelet(opts: ApiKubeletOptions): Promise<ApiKubelet> {
  const { nodeName } = opts.cp;
  const mode: KubeletMode = opts.mode ?? (process.env.KUBELET_MODE === "process" ? "process" : "podman");
  const kc = new PooledKubeConfig();
  kc.loadFromFile(opts.cp.nodeKubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const coordination = kc.makeApiClient(CoordinationV1Api);
  const podLogs = new PodLogs();
  const byUid = new Map<string, Running>();
  let stopped = false;

  // Container logs over HTTPS for the API server (pods/log): client certificates signed by the cluster CA only.
  // The API server names the container (the pod's only regular one when the client gave none).
  const server: Server = createServer(
    {
      cert: readFileSync(opts.cp.pki.kubeletServing.cert),
      key: readFileSync(opts.cp.pki.kubeletServing.key),
      ca: readFileSync(opts.cp.pki.ca),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const url = new URL(req.url ?? "/", "https://kubelet");
      const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
      if (req.method !== "GET" || !m) return res.writeHead(404).end();
      const [ns, name, container] = [m[1]!, m[2]!, m[3]!].map(decodeURIComponent) as [string, string, string];
      const r = [...byUid.values()].find((x) => x.run.namespace === ns && x.run.name === name);
      if (!r) return res.writeHead(404).end(`pod ${ns}/${name} not on this node`);
      const c = r.ctrs.find((x) => x.spec.name === container);
      if (!c) return res.writeHead(404).end(`container ${container} is not valid for pod ${name}`);
      const ended = r.finished || (c.terminated !== undefined && !c.backoff && !c.child);
      serveLog(res, podLogs, ns, `${name}/${container}`, ended, url.searchParams);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const kubeletPort = (server.address() as AddressInfo).port;

  // --- Node registration and heartbeats -------------------------------------------------------------------------
  const nodeStatus = () => {
    const t = now();
    const cond = (type: string, status: string, reason: string, message: string) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: t,
      lastTransitionTime: t,
    });
    // Generous capacity: the world's node stands for a cluster (the operator bench runs 1,000 pods at once).
    const resources = { cpu: "1000", memory: "4Ti", pods: "5000", "ephemeral-storage": "1Ti" };
    return {
      capacity: resources,
      allocatable: resources,
      conditions: [
        cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
      ],
      addresses: [
        { type: "InternalIP", address: "127.0.0.1" },
        { type: "Hostname", address: nodeName },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } },
      nodeInfo: {
        machineID: "",
        systemUUID: "",
        bootID: "",
        kernelVersion: "",
        osImage: "agentfactory test world",
        containerRuntimeVersion: mode === "podman" ? "podman://" : "process://",
        kubeletVersion: opts.cp.version ?? "v1.34.4",
        kubeProxyVersion: "",
        operatingSystem: "linux",
        architecture: "amd64",
      },
    };
  };
  try {
    await core.createNode({
      body: {
        metadata: {
          name: nodeName,
          labels: {
            "kubernetes.io/hostname": nodeName,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
          },
        },
      },
    });
  } catch (err) {
    if (statusCode(err) !== 409) throw err;
  }
  const postStatus = () => core.patchNodeStatus({ name: nodeName, body: { status: nodeStatus() } }, mergePatch);
  await postStatus();

  const leaseNs = "kube-node-lease";
  const renewLease = async () => {
    const spec = { holderIdentity: nodeName, leaseDurationSeconds: 40, renewTime: microTime(Date.now()) as never };
    try {
      const lease = await coordination.readNamespacedLease({ name: nodeName, namespace: leaseNs });
      await coordination.replaceNamespacedLease({
        name: nodeName,
        namespace: leaseNs,
        body: {
          metadata: { name: nodeName, namespace: leaseNs, resourceVersion: lease.metadata?.resourceVersion },
          spec,
        },
      });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
      await coordination.createNamespacedLease({
        namespace: leaseNs,
        body: { metadata: { name: nodeName, namespace: leaseNs }, spec },
      });
    }
  };
  await renewLease();
  let beats = 0;
  const heartbeat = setInterval(() => {
    beats++;
    void renewLease().catch(() => {});
    if (beats % 6 === 0) void postStatus().catch(() => {});
  }, 10_000);

  // --- pods/status writes: the pod's current status, written until it is taken or the pod is gone ----------------
  /** Pods whose status changed since it was last written, by uid. */
  const dirty = new Map<string, { r: Running; pending: boolean }>();
  const writeStatus = (r: Running) => {
    const entry = dirty.get(r.run.uid);
    if (entry) {
      entry.pending = true;
      return;
    }
    const e = { r, pending: true };
    dirty.set(r.run.uid, e);
    void flush(e);
  };
  const flush = async (e: { r: Running; pending: boolean }) => {
    // The changes of this turn of the event loop go out as one write.
    await null;
    let backoff = 200;
    while (!stopped && e.pending) {
      e.pending = false;
      const { namespace, name } = e.r.run;
      try {
        await core.patchNamespacedPodStatus({ name, namespace, body: { status: podStatus(e.r) } }, mergePatch);
      } catch (err) {
        const code = statusCode(err);
        if (code === 404) break;
        if (code === 400 || code === 422) {
          // A status the API server will never take: a bug in this kubelet, said loudly, not retried.
          console.error(`kubelet: pods/status of ${namespace}/${name} refused (${code}):`, String(err));
          break;
        }
        e.pending = true;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 3000);
      }
    }
    dirty.delete(e.r.run.uid);
  };
  const statusWritten = async (uid: string) => {
    while (dirty.has(uid) && !stopped) await sleep(50);
  };

  const event = (
    r: Running,
    c: PodContainer | undefined,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ) => {
    const pod = r.pod;
    const field = c ? `spec.${isMain(c) ? "containers" : "initContainers"}{${c.spec.name}}` : undefined;
    void core
      .createNamespacedEvent({
        namespace: r.run.namespace,
        body: {
          metadata: { name: `${r.run.name}.${randomBytes(8).toString("hex")}`, namespace: r.run.namespace },
          involvedObject: {
            kind: "Pod",
            apiVersion: "v1",
            namespace: r.run.namespace,
            name: r.run.name,
            uid: r.run.uid,
            resourceVersion: pod.metadata?.resourceVersion,
            ...(field ? { fieldPath: field } : {}),
          },
          reason,
          message,
          type,
          source: { component: "kubelet", host: nodeName },
          reportingComponent: "kubelet",
          reportingInstance: nodeName,
          firstTimestamp: new Date() as never,
          lastTimestamp: new Date() as never,
          count: 1,
        },
      })
      .catch(() => {});
  };

  // --- The pod's status, from its containers' states (the kubelet's status generator) ---------------------------
  function containerStatus(r: Running, c: Ctr, hasInits: boolean): Obj {
    const running = c.child !== undefined && c.startedAt !== undefined;
    const configError = r.configError?.container === c.spec.name ? r.configError : undefined;
    const { namespace: ns, name, uid } = r.run;
    const state = running
      ? { running: { startedAt: c.startedAt } }
      : c.backoff
        ? {
            waiting: {
              reason: "CrashLoopBackOff",
              message: `back-off restarting failed container=${c.spec.name} pod=${name}_${ns}(${uid})`,
            },
          }
        : c.terminated
          ? { terminated: c.terminated }
          : configError
            ? { waiting: { reason: "CreateContainerConfigError", message: configError.message } }
            : { waiting: { reason: hasInits ? "PodInitializing" : "ContainerCreating" } };
    // No probes: a running container has started and is ready; an init container is ready once it completed.
    const ready = c.info.kind === "init" ? !running && c.terminated?.exitCode === 0 : running;
    const last = c.backoff ? c.terminated : c.lastTerminated;
    return {
      name: c.spec.name,
      image: c.spec.image ?? "",
      imageID: "",
      ready,
      started: running,
      // While backing off, the restart is counted (c.info.restarts) but not yet made.
      restartCount: c.backoff ? c.info.restarts - 1 : c.info.restarts,
      state,
      lastState: last ? { terminated: last } : {},
      ...(c.info.pid !== undefined ? { containerID: `${mode}://${c.info.pid}` } : {}),
    };
  }

  function podStatus(r: Running): Obj {
    const inits = r.ctrs.filter((c) => !isMain(c));
    const mains = r.ctrs.filter(isMain);
    const hasInits = inits.length > 0;
    const initStatuses = inits.map((c) => containerStatus(r, c, hasInits));
    const mainStatuses = mains.map((c) => containerStatus(r, c, hasInits));
    // Running once a regular container runs; terminal only when every container, sidecars too, has stopped.
    if (!r.finished) r.run.phase = mains.some((c) => c.startedAt) ? "Running" : "Pending";
    const phase = r.run.phase;

    let initialized: Condition = { status: "True" };
    if (phase === "Succeeded") initialized = { status: "True", reason: "PodCompleted" };
    else if (!mains.some((c) => c.startedAt)) {
      const incomplete = inits
        .filter((c, i) => (c.info.kind === "sidecar" ? !initStatuses[i]!.started : !initStatuses[i]!.ready))
        .map((c) => c.spec.name);
      if (incomplete.length)
        initialized = {
          status: "False",
          reason: "ContainersNotInitialized",
          message: `containers with incomplete status: ${goList(incomplete)}`,
        };
    }
    let ready: Condition = { status: "True" };
    if (phase === "Succeeded") ready = { status: "False", reason: "PodCompleted" };
    else if (phase === "Failed") ready = { status: "False", reason: "PodFailed" };
    else {
      const unready = [
        ...inits.filter((c, i) => c.info.kind === "sidecar" && !initStatuses[i]!.ready),
        ...mains.filter((_, i) => !mainStatuses[i]!.ready),
      ].map((c) => c.spec.name);
      if (unready.length)
        ready = {
          status: "False",
          reason: "ContainersNotReady",
          message: `containers with unready status: ${goList(unready)}`,
        };
    }
    const t = now();
    const condition = (type: string, c: Condition) => {
      const prev = r.conditions.get(type);
      const lastTransitionTime = prev?.status === c.status ? prev.lastTransitionTime : t;
      r.conditions.set(type, { status: c.status, lastTransitionTime });
      return { type, lastProbeTime: null, lastTransitionTime, ...c };
    };
    const scheduled = (r.pod.status?.conditions ?? []).find((c) => c.type === "PodScheduled");
    return {
      phase,
      startTime: r.startTime,
      hostIP: "127.0.0.1",
      hostIPs: [{ ip: "127.0.0.1" }],
      podIP: "127.0.0.1",
      podIPs: [{ ip: "127.0.0.1" }],
      conditions: [
        condition("PodReadyToStartContainers", { status: "True" }),
        condition("Initialized", initialized),
        condition("Ready", ready),
        condition("ContainersReady", ready),
        scheduled ?? { type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: t },
      ],
      ...(hasInits ? { initContainerStatuses: initStatuses } : {}),
      containerStatuses: mainStatuses,
    };
  }

  // --- Running containers -------------------------------------------------------------------------------------
  /** The Secrets and ConfigMaps the pod's containers need, read as the node (the Node authorizer allows just these). */
  async function fetchData(pod: V1Pod): Promise<DataLookup> {
    const ns = pod.metadata!.namespace!;
    const names = { Secret: new Set<string>(), ConfigMap: new Set<string>() };
    const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])] as unknown as Container[];
    for (const container of containers) {
      for (const e of container.env ?? []) {
        if (e.valueFrom?.secretKeyRef) names.Secret.add(e.valueFrom.secretKeyRef.name);
        if (e.valueFrom?.configMapKeyRef) names.ConfigMap.add(e.valueFrom.configMapKeyRef.name);
      }
      for (const f of container.envFrom ?? []) {
        if (f.secretRef) names.Secret.add(f.secretRef.name);
        if (f.configMapRef) names.ConfigMap.add(f.configMapRef.name);
      }
    }
    for (const v of pod.spec?.volumes ?? []) {
      if (v.secret?.secretName) names.Secret.add(v.secret.secretName);
      if (v.configMap?.name) names.ConfigMap.add(v.configMap.name);
    }
    const data = new Map<string, Record<string, string>>();
    // 404: missing (CreateContainerConfigError until it appears). 403: the Node authorizer's graph has not seen
    // this pod's reference yet (it is fed by the API server's own informers, a moment behind the binding), so
    // ask again, as the kubelet's secret manager does, before calling it missing.
    const read = async <T>(get: () => Promise<T>): Promise<T | undefined> => {
      for (let i = 0; ; i++) {
        try {
          return await get();
        } catch (err) {
          const code = statusCode(err);
          if (code === 404 || (code === 403 && i >= 50)) return undefined;
          if (code !== 403) throw err;
          await sleep(200);
        }
      }
    };
    for (const name of names.Secret) {
      const secret = await read(() => core.readNamespacedSecret({ name, namespace: ns }));
      if (secret) data.set(`Secret/${name}`, secretData(secret as never));
    }
    for (const name of names.ConfigMap) {
      const cm = await read(() => core.readNamespacedConfigMap({ name, namespace: ns }));
      if (cm) data.set(`ConfigMap/${name}`, cm.data ?? {});
    }
    return (kind, name) => data.get(`${kind}/${name}`);
  }

  function startPod(pod: V1Pod): void {
    const m = pod.metadata!;
    if (!pod.spec?.containers?.length) return;
    // Short: unix socket paths in a volume (process mode: host paths) must stay under 108 bytes.
    const dir = mkdtempSync(join(tmpdir(), `kubelet-${m.name!.slice(0, 24)}-`));
    const ctrs: Ctr[] = podContainers(pod.spec as unknown as Obj, dir).map((c) => ({
      ...c,
      info: { ...c.info, signals: [] },
    }));
    const first = ctrs.find(isMain)!;
    const job = (m.ownerReferences ?? []).find((o) => o.kind === "Job" && o.controller)?.name;
    let resolveDone!: () => void;
    const done = new Promise<void>((res) => {
      resolveDone = res;
    });
    const r: Running = {
      run: {
        namespace: m.namespace!,
        name: m.name!,
        uid: m.uid!,
        ...(job ? { job } : {}),
        phase: "Pending",
        signals: first.info.signals,
        mounts: {},
        containers: ctrs.map((c) => c.info),
      },
      pod,
      dir,
      ctrs,
      startTime: now(),
      killed: false,
      conditions: new Map(),
      finished: false,
      done,
      resolveDone,
    };
    byUid.set(m.uid!, r);
    writeStatus(r);
    void tryStart(r);
  }

  /** Sets up volumes and env; waits (CreateContainerConfigError) while a referenced Secret is missing. */
  async function tryStart(r: Running): Promise<void> {
    if (r.killed || stopped) return;
    let failing: Ctr | undefined;
    try {
      const lookup = await fetchData(r.pod);
      if (r.killed || stopped) return;
      const dirs = setUpPodVolumes(r.pod.spec as unknown as Obj, r.dir, lookup);
      for (const c of r.ctrs) {
        failing = c;
        configureContainer(c, r.pod as unknown as Obj, lookup, dirs, opts.extraEnv);
      }
    } catch (e) {
      if (r.killed || stopped) return;
      const message = e instanceof ConfigError ? e.message : `kubelet: ${(e as Error).message}`;
      const c = failing ?? r.ctrs.find(isMain)!;
      if (!r.configErrorReported) event(r, c, "Warning", "Failed", `Error: ${message}`);
      r.configErrorReported = true;
      r.configError = { container: c.spec.name, message };
      writeStatus(r);
      r.retry = setTimeout(() => void tryStart(r), 1000);
      return;
    }
    r.configError = undefined;
    r.run.mounts = Object.fromEntries(r.ctrs.find(isMain)!.mounts!);
    void runContainers(r.ctrs, {
      launch: (c) => launch(r, c as Ctr),
      killed: () => r.killed,
      mainsStarted: () => writeStatus(r),
      stopAll: () => stopAll(r),
    }).then(() => finish(r));
  }

  /** Starts one run of a container (the shared engine, with this kubelet's logs, events and pods/status). */
  function launch(r: Running, c: Ctr): void {
    const { namespace: ns, name, uid } = r.run;
    const first = r.ctrs.find(isMain);
    launchContainer(c, {
      idScheme: mode,
      spawn: (x) =>
        spawnContainer(x, {
          mode,
          dir: r.dir,
          ...(opts.processCommand ? { processCommand: opts.processCommand } : {}),
          ...(opts.image ? { image: opts.image } : {}),
          podSecurityContext: (r.pod.spec?.securityContext ?? {}) as PodSecurityContext,
          ...(opts.podPidsLimit ? { pidsLimit: opts.podPidsLimit } : {}),
          // One name per run: a restarted sidecar must not meet the cleanup of its previous run.
          podmanName: `${name}-${uid.slice(0, 8)}-${x.spec.name}${x.info.restarts ? `-${x.info.restarts}` : ""}`,
        }),
      output: (x, text) => {
        podLogs.append(ns, `${name}/${x.spec.name}`, text);
        if (isMain(x)) podLogs.append(ns, name, text);
      },
      started: (x) => {
        if (x === first) r.run.pid = x.info.pid;
        event(r, x, "Normal", "Started", `Started container ${x.spec.name}`);
        writeStatus(r);
      },
      exited: (x, restarting) => {
        if (x === first) r.run.exitCode = x.info.exitCode;
        clearTimeout((x as Ctr).killTimer);
        (x as Ctr).killAt = undefined;
        if (restarting) event(r, x, "Warning", "BackOff", `Back-off restarting failed container ${x.spec.name}`);
        else podLogs.end(ns, `${name}/${x.spec.name}`);
        writeStatus(r);
      },
      terminationMessage: (x, exitCode) =>
        readTerminationMessage(x, exitCode, () => podLogs.get(ns, `${name}/${x.spec.name}`) ?? ""),
      // Podman mode: SIGKILL (137) of a memory-limited container the kubelet did not stop is the OOM killer's.
      oomKilled: (x, exitCode) =>
        mode === "podman" && exitCode === 137 && !x.stopping && x.spec.resources?.limits?.memory !== undefined,
      live: () => !r.killed && !stopped && !r.finished,
    });
  }

  /**
   * SIGTERM now (podman stop with the grace period), SIGKILL when the grace runs out. A container already being
   * stopped gets no second SIGTERM; a shorter grace (a deletion after a normal stop) moves its SIGKILL earlier.
   */
  function stopContainer(c: Ctr, graceSeconds: number): void {
    c.stopping = true;
    clearTimeout(c.restartTimer);
    c.backoff = false;
    const child = c.child;
    if (!alive(child)) return;
    const killAt = Date.now() + graceSeconds * 1000;
    if (c.killAt === undefined) {
      c.info.signals.push("SIGTERM");
      if (c.podmanName) {
        spawn("podman", podmanStopArgs(c.podmanName, Math.ceil(graceSeconds)), { stdio: "ignore" }).on(
          "error",
          () => {},
        );
      } else {
        try {
          process.kill(-child.pid!, "SIGTERM");
        } catch {}
      }
    } else if (killAt >= c.killAt) return;
    c.killAt = killAt;
    clearTimeout(c.killTimer);
    c.killTimer = setTimeout(() => killContainer(c), graceSeconds * 1000);
    c.killTimer.unref();
  }

  function killContainer(c: Ctr): void {
    c.stopping = true;
    clearTimeout(c.restartTimer);
    c.backoff = false;
    const child = c.child;
    if (!alive(child)) return;
    c.info.signals.push("SIGKILL");
    if (c.podmanName)
      spawn("podman", [...PODMAN_GLOBAL_ARGS, "kill", c.podmanName], { stdio: "ignore" }).on("error", () => {});
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {}
  }

  /**
   * The regular containers have ended (or an init container failed, or the pod is deleted): stop the rest,
   * last-started first, within what is left of a deletion's grace period, else the pod's
   * terminationGracePeriodSeconds; wait for them.
   */
  async function stopAll(r: Running): Promise<void> {
    const grace =
      r.deadline !== undefined
        ? Math.max(0, (r.deadline - Date.now()) / 1000)
        : (r.pod.spec?.terminationGracePeriodSeconds ?? 30);
    const live = [...r.ctrs].reverse();
    for (const c of live) stopContainer(c, grace);
    await Promise.all(live.map((c) => (c.child ? c.exited : undefined)));
  }

  async function finish(r: Running): Promise<void> {
    if (r.finished) return;
    r.finished = true;
    const { namespace: ns, name } = r.run;
    const initFailed = r.ctrs.some(
      (c) => c.info.kind === "init" && c.info.exitCode !== undefined && c.info.exitCode !== 0,
    );
    const mains = r.ctrs.filter(isMain);
    r.run.phase = !initFailed && mains.every((c) => c.info.exitCode === 0) ? "Succeeded" : "Failed";
    podLogs.end(ns, name);
    for (const c of r.ctrs) podLogs.end(ns, `${name}/${c.spec.name}`);
    writeStatus(r);
    rmSync(r.dir, { recursive: true, force: true });
    if (r.killed) await confirmDeletion(r);
    r.resolveDone();
  }

  /** The pod's containers are gone: remove the object (gracePeriodSeconds=0, bound to this pod's uid). */
  async function confirmDeletion(r: Running): Promise<void> {
    await statusWritten(r.run.uid);
    for (let i = 0; i < 50 && !stopped; i++) {
      try {
        await core.deleteNamespacedPod({
          name: r.run.name,
          namespace: r.run.namespace,
          gracePeriodSeconds: 0,
          body: { gracePeriodSeconds: 0, preconditions: { uid: r.run.uid } },
        });
        return;
      } catch (err) {
        const code = statusCode(err);
        if (code === 404 || code === 409) return;
        await sleep(500);
      }
    }
  }

  /** No container of the pod has been started (still setting up): it ends at once. */
  const neverStarted = (r: Running) => !r.ctrs.some((c) => c.child || c.exited);
  function endUnstarted(r: Running): void {
    r.finished = true;
    rmSync(r.dir, { recursive: true, force: true });
  }

  /**
   * Graceful deletion: SIGTERM to the regular containers (and a running init container) now; the sidecars get
   * theirs once those have ended (stopAll), all within the grace period; SIGKILL when it runs out.
   */
  function onDeletionRequested(r: Running, pod: V1Pod): void {
    if (r.killed) return;
    r.killed = true;
    r.pod = pod;
    const grace = pod.metadata?.deletionGracePeriodSeconds ?? 0;
    r.run.deletionGraceSeconds = grace;
    r.deadline = Date.now() + grace * 1000;
    clearTimeout(r.retry);
    if (r.finished) {
      void confirmDeletion(r);
      return;
    }
    if (neverStarted(r)) {
      endUnstarted(r);
      void confirmDeletion(r).then(r.resolveDone);
      return;
    }
    const regularRunning = r.ctrs.some((c) => c.info.kind !== "sidecar" && c.child);
    for (const c of r.ctrs) {
      if (c.info.kind !== "sidecar" || !regularRunning) stopContainer(c, grace);
      else {
        // Not restarted any more; stopped by stopAll after the regular containers.
        c.stopping = true;
        clearTimeout(c.restartTimer);
      }
    }
  }

  // --- The pod watch ----------------------------------------------------------------------------------------
  const fieldSelector = `spec.nodeName=${nodeName}`;
  const informer = new ResilientInformer<V1Pod>({
    name: "kubelet-pods",
    kc,
    path: "/api/v1/pods",
    fieldSelector,
    list: () => core.listPodForAllNamespaces({ fieldSelector }),
    resyncMs: 0,
    watchdogMs: 0,
    baseBackoffMs: 200,
    maxBackoffMs: 2000,
  });
  informer.on((pod, kind) => {
    if (stopped) return;
    const uid = pod.metadata?.uid;
    if (!uid) return;
    const r = byUid.get(uid);
    if (kind === "delete") {
      // Gone from the API (force-deleted, or our own confirmation): stop whatever still runs, at once.
      if (r && !r.finished) {
        r.run.deletionGraceSeconds ??= 0;
        r.killed = true;
        r.deadline = Date.now();
        clearTimeout(r.retry);
        if (neverStarted(r)) {
          endUnstarted(r);
          r.resolveDone();
        } else for (const c of r.ctrs) killContainer(c);
      }
      return;
    }
    if (r) {
      r.pod = { ...pod, status: pod.status };
      if (pod.metadata?.deletionTimestamp) onDeletionRequested(r, pod);
      return;
    }
    const phase = pod.status?.phase;
    if (pod.metadata?.deletionTimestamp) {
      // Deleted before this kubelet ran it: confirm so the object does not linger for its grace period.
      if (phase !== "Succeeded" && phase !== "Failed") {
        void core
          .deleteNamespacedPod({
            name: pod.metadata.name!,
            namespace: pod.metadata.namespace!,
            gracePeriodSeconds: 0,
            body: { gracePeriodSeconds: 0, preconditions: { uid } },
          })
          .catch(() => {});
      }
      return;
    }
    if (phase === "Pending" || phase === undefined) {
      try {
        startPod(pod);
      } catch (err) {
        console.error(`kubelet: starting pod ${pod.metadata?.namespace}/${pod.metadata?.name} failed:`, err);
      }
    }
  });
  await informer.start();

  return {
    nodeName,
    pods: () =>
      [...byUid.values()].map((r) => ({
        ...r.run,
        signals: [...r.run.signals],
        mounts: { ...r.run.mounts },
        containers: r.run.containers.map((c) => ({ ...c, signals: [...c.signals] })),
      })),
    logs: (ns, name, container) => podLogs.get(ns, container ? `${name}/${container}` : name),
    async stop() {
      stopped = true;
      clearInterval(heartbeat);
      await informer.stop();
      for (const r of byUid.values()) {
        clearTimeout(r.retry);
        if (r.finished) continue;
        r.killed = true;
        r.deadline = Date.now() + 2000;
        if (neverStarted(r)) {
          endUnstarted(r);
          r.resolveDone();
          continue;
        }
        for (const c of [...r.ctrs].reverse()) stopContainer(c, 2);
      }
      await Promise.all([...byUid.values()].map((r) => r.done));
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}
