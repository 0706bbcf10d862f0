/**
 * The test world's kubelet on the real API server. It registers a Node (with its heartbeat Lease in
 * kube-node-lease), watches the pods the scheduler binds to it (fieldSelector spec.nodeName), runs each pod's
 * first container as a Podman container of its image or as a local process, and writes `pods/status` as a real
 * kubelet does: Pending (ContainerCreating, or CreateContainerConfigError while a Secret is missing), Running,
 * then Succeeded/Failed with the container's exit code, reason (Completed, Error, OOMKilled) and termination
 * message. A pod deleted with a grace period gets SIGTERM, SIGKILL when the grace runs out, and is then removed
 * with gracePeriodSeconds=0, as the kubelet confirms a graceful deletion. It authenticates as
 * system:node:<name>, so the Node authorizer and NodeRestriction decide what it may read and write (only the
 * Secrets of the pods bound to it, only its own Node). It serves container logs on an HTTPS port, so
 * `kubectl logs` works through the API server.
 *
 * @example
 *   const kubelet = await startApiKubelet({ cp, mode: "process", processCommand: ["/bin/sh", "runner.sh"] });
 *   kubelet.logs("agentfactory", podName);
 *   await kubelet.stop();
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { CoordinationV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { PooledKubeConfig, statusCode } from "../../../operator/kube/client.ts";
import { ResilientInformer } from "../../../operator/kube/informer.ts";
import { microTime } from "../../../operator/kube/leader.ts";
import { PODMAN_GLOBAL_ARGS, RUNNER_IMAGE } from "../podman.ts";
import { defaultProcessCommand, podmanStopArgs } from "./kubelet.ts";
import { ConfigError, type Container, resolveEnv, rewritePaths, secretData, type Volume } from "./pod-env.ts";
import { PodLogs, serveLog } from "./pod-logs.ts";
import { podmanProcessEnv, podmanRunArgs } from "./podman-args.ts";

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
  /** Process mode: the command run for every container (container args are appended). */
  processCommand?: string[];
  /** Podman mode: the image to run instead of the container's own. */
  image?: string;
  /** Extra environment for every container; overrides the pod's env. */
  extraEnv?: Record<string, string>;
}

export interface ApiPodRun {
  namespace: string;
  name: string;
  uid: string;
  /** The owning Job's name, if any. */
  job?: string;
  phase: "Pending" | "Running" | "Succeeded" | "Failed";
  exitCode?: number;
  pid?: number;
  /** The grace period the pod was deleted with, if it was. */
  deletionGraceSeconds?: number;
  /** The signal the kubelet sent the container, if any (SIGTERM on graceful deletion, then SIGKILL). */
  signals: string[];
}

export interface ApiKubelet {
  nodeName: string;
  pods(): ApiPodRun[];
  /** The container log of a pod, as `kubectl logs` shows it. */
  logs(namespace: string, name: string): string | undefined;
  stop(): Promise<void>;
}

interface Running {
  run: ApiPodRun;
  pod: V1Pod;
  child?: ChildProcess;
  containerName?: string;
  dir: string;
  terminationLog: string;
  startedAt?: string;
  killed: boolean;
  retry?: NodeJS.Timeout;
  graceTimer?: NodeJS.Timeout;
  configErrorReported?: boolean;
  finished: boolean;
  done: Promise<void>;
  resolveDone: () => void;
}

const TERMINATION_MESSAGE_LIMIT = 4096;
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const now = () => new Date().toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
      const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/[^/]+$/.exec(url.pathname);
      if (req.method !== "GET" || !m) return res.writeHead(404).end();
      const [ns, name] = [decodeURIComponent(m[1]!), decodeURIComponent(m[2]!)];
      const r = [...byUid.values()].find((x) => x.run.namespace === ns && x.run.name === name);
      if (!r) return res.writeHead(404).end(`pod ${ns}/${name} not on this node`);
      serveLog(res, podLogs, ns, name, r.finished, url.searchParams);
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

  // --- pods/status writes: the latest desired status per pod, retried until written or the pod is gone ------------
  const desired = new Map<string, { ns: string; name: string; status: object; writing: boolean }>();
  const writeStatus = (r: Running, status: object) => {
    const entry = desired.get(r.run.uid);
    if (entry) {
      entry.status = status;
      if (entry.writing) return;
    } else desired.set(r.run.uid, { ns: r.run.namespace, name: r.run.name, status, writing: false });
    void flush(r.run.uid);
  };
  const flush = async (uid: string) => {
    const entry = desired.get(uid);
    if (!entry || entry.writing) return;
    entry.writing = true;
    let backoff = 200;
    while (!stopped) {
      const status = entry.status;
      try {
        await core.patchNamespacedPodStatus({ name: entry.name, namespace: entry.ns, body: { status } }, mergePatch);
        if (entry.status === status) break; // nothing newer arrived while writing
      } catch (err) {
        const code = statusCode(err);
        if (code === 404) break;
        if (code === 400 || code === 422) {
          // A status the API server will never take: a bug in this kubelet, said loudly, not retried.
          console.error(`kubelet: pods/status of ${entry.ns}/${entry.name} refused (${code}):`, String(err));
          break;
        }
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 3000);
      }
    }
    entry.writing = false;
    desired.delete(uid);
  };
  const statusWritten = async (uid: string) => {
    while (desired.has(uid) && !stopped) await sleep(50);
  };

  const event = (r: Running, type: "Normal" | "Warning", reason: string, message: string) => {
    const pod = r.pod;
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
            fieldPath: "spec.containers{main}",
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

  // --- Running containers -------------------------------------------------------------------------------------
  const firstContainer = (pod: V1Pod) => (pod.spec?.containers?.[0] ?? undefined) as unknown as Container | undefined;

  function containerStatuses(r: Running, state: object, extra: object = {}): object[] {
    const c = firstContainer(r.pod);
    return [
      {
        name: c?.name ?? "main",
        image: c?.image ?? "",
        imageID: "",
        ready: false,
        started: false,
        restartCount: 0,
        state,
        ...extra,
      },
    ];
  }

  /** The Secrets and ConfigMaps the container needs, read as the node (the Node authorizer allows just these). */
  async function fetchData(pod: V1Pod, container: Container) {
    const ns = pod.metadata!.namespace!;
    const names = { Secret: new Set<string>(), ConfigMap: new Set<string>() };
    for (const e of container.env ?? []) {
      if (e.valueFrom?.secretKeyRef) names.Secret.add(e.valueFrom.secretKeyRef.name);
      if (e.valueFrom?.configMapKeyRef) names.ConfigMap.add(e.valueFrom.configMapKeyRef.name);
    }
    for (const f of container.envFrom ?? []) {
      if (f.secretRef) names.Secret.add(f.secretRef.name);
      if (f.configMapRef) names.ConfigMap.add(f.configMapRef.name);
    }
    for (const v of (pod.spec?.volumes ?? []) as unknown as Volume[]) {
      if (v.secret) names.Secret.add(v.secret.secretName);
      if (v.configMap) names.ConfigMap.add(v.configMap.name);
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
    return (kind: "Secret" | "ConfigMap", name: string) => data.get(`${kind}/${name}`);
  }

  function startPod(pod: V1Pod): void {
    const m = pod.metadata!;
    const dir = mkdtempSync(join(tmpdir(), `kubelet-${m.name}-`));
    const terminationLog = join(dir, "termination-log");
    writeFileSync(terminationLog, "");
    // The container may run as another uid (runAsUser): volumes and the termination log must be writable.
    chmodSync(terminationLog, 0o666);
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
        signals: [],
      },
      pod,
      dir,
      terminationLog,
      killed: false,
      finished: false,
      done,
      resolveDone,
    };
    byUid.set(m.uid!, r);
    writeStatus(r, {
      phase: "Pending",
      hostIP: "127.0.0.1",
      hostIPs: [{ ip: "127.0.0.1" }],
      conditions: podConditions(pod, { ready: false }),
      containerStatuses: containerStatuses(r, { waiting: { reason: "ContainerCreating" } }),
    });
    void tryStart(r);
  }

  function podConditions(pod: V1Pod, s: { ready: boolean; completed?: boolean }) {
    const t = now();
    const scheduled = (pod.status?.conditions ?? []).find((c) => c.type === "PodScheduled");
    const readyStatus = s.ready ? "True" : "False";
    const reason = s.completed ? { reason: "PodCompleted" } : {};
    return [
      { type: "PodReadyToStartContainers", status: "True", lastProbeTime: null, lastTransitionTime: t },
      { type: "Initialized", status: "True", lastProbeTime: null, lastTransitionTime: t },
      { type: "Ready", status: readyStatus, lastProbeTime: null, lastTransitionTime: t, ...reason },
      { type: "ContainersReady", status: readyStatus, lastProbeTime: null, lastTransitionTime: t, ...reason },
      scheduled ?? { type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: t },
    ];
  }

  /** Sets up volumes and env; waits (CreateContainerConfigError) while a referenced Secret is missing. */
  async function tryStart(r: Running): Promise<void> {
    if (r.killed || stopped) return;
    const pod = r.pod;
    const container = firstContainer(pod);
    if (!container) return;
    let env: Record<string, string>;
    const mounts = new Map<string, string>();
    try {
      const lookup = await fetchData(pod, container);
      if (r.killed || stopped) return;
      env = resolveEnv(pod as never, container, lookup);
      const volumes = (pod.spec?.volumes ?? []) as unknown as Volume[];
      for (const vm of container.volumeMounts ?? []) {
        const vol = volumes.find((v) => v.name === vm.name);
        if (!vol) throw new ConfigError(`volume "${vm.name}" not found`);
        const hostDir = join(r.dir, "volumes", vm.name, vm.subPath ?? "");
        mkdirSync(hostDir, { recursive: true });
        chmodSync(hostDir, 0o777);
        const src = vol.secret
          ? lookup("Secret", vol.secret.secretName)
          : vol.configMap
            ? lookup("ConfigMap", vol.configMap.name)
            : undefined;
        const ref = vol.secret ?? vol.configMap;
        if (ref && !src && !ref.optional)
          throw new ConfigError(
            `${vol.secret ? "secret" : "configmap"} "${vol.secret?.secretName ?? vol.configMap?.name}" not found`,
          );
        for (const [k, v] of Object.entries(src ?? {})) {
          const item = ref?.items?.find((i) => i.key === k);
          if (ref?.items && !item) continue;
          writeFileSync(join(hostDir, item?.path ?? k), v, { mode: 0o644 });
        }
        mounts.set(vm.mountPath, hostDir);
      }
    } catch (e) {
      if (r.killed || stopped) return;
      const message = e instanceof ConfigError ? e.message : `kubelet: ${(e as Error).message}`;
      if (!r.configErrorReported) event(r, "Warning", "Failed", `Error: ${message}`);
      r.configErrorReported = true;
      writeStatus(r, {
        phase: "Pending",
        conditions: podConditions(pod, { ready: false }),
        containerStatuses: containerStatuses(r, { waiting: { reason: "CreateContainerConfigError", message } }),
      });
      r.retry = setTimeout(() => void tryStart(r), 1000);
      return;
    }
    const fullEnv = { ...env, HOSTNAME: r.run.name, ...opts.extraEnv };
    if (mode === "podman") runPodman(r, container, fullEnv, mounts);
    else runProcess(r, container, fullEnv, mounts);
  }

  function runProcess(r: Running, container: Container, env: Record<string, string>, mounts: Map<string, string>) {
    const tpath = container.terminationMessagePath ?? "/dev/termination-log";
    const mapped = rewritePaths(env, new Map(mounts).set(tpath, r.terminationLog));
    mapped.AGENTFACTORY_TERMINATION_LOG = r.terminationLog;
    if (mounts.has("/tmp")) mapped.TMPDIR = mounts.get("/tmp")!;
    const cwdMount = container.workingDir ? rewritePaths({ d: container.workingDir }, mounts).d : undefined;
    const cwd = cwdMount && cwdMount !== container.workingDir ? cwdMount : join(r.dir, "cwd");
    mkdirSync(cwd, { recursive: true });
    const [cmd, ...args] = [...(opts.processCommand ?? defaultProcessCommand()), ...(container.args ?? [])];
    const child = spawn(cmd!, args, {
      cwd,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...mapped },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    attach(r, child);
  }

  function runPodman(r: Running, container: Container, env: Record<string, string>, mounts: Map<string, string>) {
    const name = `${r.run.name}-${r.run.uid.slice(0, 8)}`;
    const argv = podmanRunArgs({
      podName: name,
      container,
      podSecurityContext: (r.pod.spec?.securityContext ?? {}) as never,
      image: opts.image ?? container.image ?? RUNNER_IMAGE,
      mounts: [...mounts].map(([mountPath, hostPath]) => ({ mountPath, hostPath })),
      terminationLogHostPath: r.terminationLog,
      env,
    });
    r.containerName = name;
    // cwd: the pod's directory (conmon leaves an `oom` marker file in podman's working directory on an OOM kill).
    const child = spawn("podman", argv, {
      cwd: r.dir,
      env: podmanProcessEnv(env),
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    attach(r, child);
  }

  function attach(r: Running, child: ChildProcess): void {
    const { namespace: ns, name } = r.run;
    r.child = child;
    r.run.pid = child.pid;
    r.run.phase = "Running";
    r.startedAt = now();
    const onData = (c: Buffer) => podLogs.append(ns, name, c.toString("utf8"));
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    let spawnError: Error | undefined;
    child.on("error", (e) => {
      spawnError = e;
      podLogs.append(ns, name, `kubelet: ${e.message}\n`);
    });
    event(r, "Normal", "Started", `Started container ${firstContainer(r.pod)?.name}`);
    writeStatus(r, {
      phase: "Running",
      startTime: r.startedAt,
      hostIP: "127.0.0.1",
      hostIPs: [{ ip: "127.0.0.1" }],
      podIP: "127.0.0.1",
      podIPs: [{ ip: "127.0.0.1" }],
      conditions: podConditions(r.pod, { ready: true }),
      containerStatuses: containerStatuses(
        r,
        { running: { startedAt: r.startedAt } },
        { ready: true, started: true, containerID: `${mode}://${child.pid}` },
      ),
    });
    // A deletion that arrived while the container was being set up.
    if (r.killed) terminate(r);
    child.on("close", (code, signal) => {
      const exitCode = code ?? (signal ? 128 + (constants.signals[signal] ?? 9) : spawnError ? 128 : 1);
      void finish(r, exitCode);
    });
  }

  function terminationMessage(r: Running, exitCode: number): string {
    let msg = "";
    try {
      msg = readFileSync(r.terminationLog, "utf8");
    } catch {}
    const c = firstContainer(r.pod);
    if (!msg && exitCode !== 0 && c?.terminationMessagePolicy === "FallbackToLogsOnError") {
      const log = podLogs.get(r.run.namespace, r.run.name) ?? "";
      msg = log.split("\n").slice(-80).join("\n").slice(-2048);
    }
    return Buffer.from(msg).subarray(0, TERMINATION_MESSAGE_LIMIT).toString("utf8");
  }

  /** Podman mode: SIGKILL (137) of a memory-limited container the kubelet did not kill is the OOM killer's. */
  function oomKilled(r: Running, exitCode: number): boolean {
    const c = firstContainer(r.pod);
    return mode === "podman" && exitCode === 137 && !r.killed && c?.resources?.limits?.memory !== undefined;
  }

  async function finish(r: Running, exitCode: number): Promise<void> {
    clearTimeout(r.graceTimer);
    r.run.exitCode = exitCode;
    r.run.phase = exitCode === 0 ? "Succeeded" : "Failed";
    r.finished = true;
    const finishedAt = now();
    const message = terminationMessage(r, exitCode);
    podLogs.end(r.run.namespace, r.run.name);
    const containerID = `${mode}://${r.run.pid}`;
    writeStatus(r, {
      phase: r.run.phase,
      conditions: podConditions(r.pod, { ready: false, completed: true }),
      containerStatuses: containerStatuses(
        r,
        {
          terminated: {
            exitCode,
            reason: exitCode === 0 ? "Completed" : oomKilled(r, exitCode) ? "OOMKilled" : "Error",
            startedAt: r.startedAt,
            finishedAt,
            containerID,
            ...(message ? { message } : {}),
          },
        },
        { containerID },
      ),
    });
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

  /** Graceful deletion: SIGTERM now, SIGKILL when the grace period runs out. */
  function terminate(r: Running): void {
    const child = r.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const grace = r.run.deletionGraceSeconds ?? 30;
    r.run.signals.push("SIGTERM");
    if (r.containerName) {
      spawn("podman", podmanStopArgs(r.containerName, grace), { stdio: "ignore" }).on("error", () => {});
    } else {
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {}
    }
    r.graceTimer = setTimeout(() => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      r.run.signals.push("SIGKILL");
      if (r.containerName)
        spawn("podman", [...PODMAN_GLOBAL_ARGS, "kill", r.containerName], { stdio: "ignore" }).on("error", () => {});
      else
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {}
    }, grace * 1000);
    r.graceTimer.unref();
  }

  function onDeletionRequested(r: Running, pod: V1Pod): void {
    if (r.killed) return;
    r.killed = true;
    r.pod = pod;
    r.run.deletionGraceSeconds = pod.metadata?.deletionGracePeriodSeconds ?? 0;
    clearTimeout(r.retry);
    if (r.finished) {
      void confirmDeletion(r);
      return;
    }
    if (!r.child) {
      // Never started (still setting up): nothing to stop.
      r.finished = true;
      rmSync(r.dir, { recursive: true, force: true });
      void confirmDeletion(r).then(r.resolveDone);
      return;
    }
    terminate(r);
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
        clearTimeout(r.retry);
        if (r.child) {
          r.run.signals.push("SIGKILL");
          if (r.containerName)
            spawn("podman", podmanStopArgs(r.containerName, 0), { stdio: "ignore" }).on("error", () => {});
          try {
            process.kill(-r.child.pid!, "SIGKILL");
          } catch {}
        }
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
    pods: () => [...byUid.values()].map((r) => ({ ...r.run, signals: [...r.run.signals] })),
    logs: (ns, name) => podLogs.get(ns, name),
    async stop() {
      stopped = true;
      clearInterval(heartbeat);
      await informer.stop();
      for (const r of byUid.values()) {
        clearTimeout(r.retry);
        if (r.finished) continue;
        r.killed = true;
        if (!r.child) {
          r.finished = true;
          rmSync(r.dir, { recursive: true, force: true });
          r.resolveDone();
          continue;
        }
        if (r.containerName)
          spawn("podman", podmanStopArgs(r.containerName, 2), { stdio: "ignore" }).on("error", () => {});
        try {
          process.kill(-r.child.pid!, "SIGTERM");
        } catch {}
        setTimeout(() => {
          try {
            process.kill(-r.child!.pid!, "SIGKILL");
          } catch {}
        }, 3000).unref();
      }
      await Promise.all([...byUid.values()].map((r) => r.done));
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}
