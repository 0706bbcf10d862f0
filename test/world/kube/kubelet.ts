/**
 * A kubelet (plus the Job controller, job-controller.ts) acting on the simulator's store. It runs every
 * container of a Pod, either as local processes (`mode: "process"`: emptyDir volumes become temp dirs
 * shared by the pod's containers, env paths are rewritten, every container runs `processCommand` with its
 * `args`) or as Podman containers (one per container, each in its own PID namespace, on the host network
 * like a pod's shared network namespace), and reports Pending → Running → Succeeded/Failed with each
 * container's termination message read from its termination log.
 *
 * Multi-container pods as the kubelet runs them: init containers in order, each to completion; native
 * sidecars (init containers with `restartPolicy: Always`) started in order without waiting, restarted if
 * they exit while the pod runs, and stopped once every regular container has ended; the pod's phase comes
 * from the regular containers only. Per container: `securityContext.runAsUser/runAsGroup` (falling back to
 * the pod's), the pod's `fsGroup` and `supplementalGroups` (podman `--group-add`; emptyDirs group-owned
 * by fsGroup with the setgid bit, as the kubelet's volume ownership management does), and the node's
 * `podPidsLimit` (podman `--pids-limit`).
 *
 * @example
 *   const kubelet = startKubelet({ sim, mode: "process", processCommand: [process.execPath, "job.mjs"] });
 *   ...
 *   await kubelet.stop();
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { PODMAN_GLOBAL_ARGS, RUNNER_IMAGE } from "../podman.ts";
import { recordEvent } from "./events.ts";
import { startJobController } from "./job-controller.ts";
import {
  ConfigError,
  type Container,
  type DataLookup,
  resolveEnv,
  rewritePaths,
  secretData,
  type Volume,
} from "./pod-env.ts";
import { type PodSecurityContext, podmanProcessEnv, podmanRunArgs } from "./podman-args.ts";
import { type KubeSim, REPO_ROOT } from "./server.ts";
import { meta, now, type Obj, type StoreEvent } from "./store.ts";

export type KubeletMode = "process" | "podman";

export interface KubeletOptions {
  sim: KubeSim;
  /** Default: env KUBELET_MODE, else "podman". */
  mode?: KubeletMode;
  /** Process mode: the command run for every container (container args are appended; `command` is ignored). */
  processCommand?: string[];
  /** Podman mode: the image to run instead of the containers' own. */
  image?: string;
  /** Extra environment for every container; overrides the pod's env. */
  extraEnv?: Record<string, string>;
  /** The node's podPidsLimit (a kubelet setting, not a pod field): podman mode gives each container `--pids-limit`. */
  podPidsLimit?: number;
}

export interface ContainerRun {
  name: string;
  kind: "init" | "sidecar" | "main";
  pid?: number;
  exitCode?: number;
  restarts: number;
  /** The host file standing in for the container's terminationMessagePath. */
  terminationLog: string;
}

export interface PodRun {
  namespace: string;
  name: string;
  /** The owning Job's name, if any. */
  job?: string;
  phase: "Pending" | "Running" | "Succeeded" | "Failed";
  /** The first regular container's exit code and pid (the runner, in a stage pod). */
  exitCode?: number;
  pid?: number;
  /** Container path → host directory of each volume the first regular container mounts. */
  mounts: Record<string, string>;
  /** The first regular container's termination log. */
  terminationLog: string;
  /** Every container, init containers and sidecars first. */
  containers: ContainerRun[];
}

export interface Kubelet {
  stop(): Promise<void>;
  pods(): PodRun[];
}

export const NODE_NAME = "kube-sim-node";
const TERMINATION_MESSAGE_LIMIT = 4096;

/** `node --import tsx runner-image/src/main.ts`, with tsx's loader by absolute URL so any cwd works. */
export function defaultProcessCommand(): string[] {
  const tsx = pathToFileURL(join(REPO_ROOT, "node_modules/tsx/dist/loader.mjs")).href;
  return [process.execPath, "--import", tsx, join(REPO_ROOT, "runner-image/src/main.ts")];
}

interface Running {
  run: PodRun;
  pod: Obj;
  dir: string;
  ctrs: PodContainer[];
  killed: boolean;
  /** The regular containers have been started. */
  started: boolean;
  finished: boolean;
  retry?: NodeJS.Timeout;
  configErrorReported?: boolean;
  done: Promise<void>;
  resolveDone: () => void;
}

function o(v: unknown): Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {};
}

const isRoot = () => process.getuid?.() === 0;

/** One container of a running pod, as both kubelets (this one and api-kubelet.ts) track it. */
export interface PodContainer {
  spec: Container;
  info: ContainerRun;
  env?: Record<string, string>;
  mounts?: Map<string, string>;
  child?: ChildProcess;
  /** Podman mode: the container name to stop. */
  podmanName?: string;
  startedAt?: string;
  terminated?: Obj;
  /** The terminated state of the run before the current one (a restarted sidecar). */
  lastTerminated?: Obj;
  /** A sidecar that exited while the pod runs, waiting out its restart back-off. */
  backoff?: boolean;
  /** Being stopped by the kubelet (pod end, deletion): exits are not restarts nor OOM kills. */
  stopping: boolean;
  /** Resolves when the current run of the container exits, with its exit code. */
  exited?: Promise<number>;
  restartTimer?: NodeJS.Timeout;
}

/** The pod's containers, init containers and sidecars first, each with an empty termination log in `dir`. */
export function podContainers(spec: Obj, dir: string): PodContainer[] {
  return [
    ...((spec.initContainers as Container[]) ?? []).map((c) => ({
      spec: c,
      kind: (c.restartPolicy === "Always" ? "sidecar" : "init") as ContainerRun["kind"],
    })),
    ...((spec.containers as Container[]) ?? []).map((c) => ({ spec: c, kind: "main" as const })),
  ].map(({ spec: c, kind }) => {
    const terminationLog = join(dir, `termination-log-${c.name}`);
    writeFileSync(terminationLog, "");
    // The container may run as another uid (runAsUser): the termination log must be writable.
    chmodSync(terminationLog, 0o666);
    return { spec: c, info: { name: c.name, kind, restarts: 0, terminationLog }, stopping: false };
  });
}

/**
 * The pod's volumes, once per pod and shared by its containers (`<dir>/v/<name>`): emptyDirs, Secrets,
 * ConfigMaps. Throws ConfigError for a missing Secret or ConfigMap that is not optional.
 */
export function setUpPodVolumes(spec: Obj, dir: string, lookup: DataLookup): Map<string, string> {
  const volumes = (spec.volumes as Volume[]) ?? [];
  const fsGroup = (o(spec.securityContext) as PodSecurityContext).fsGroup;
  const dirs = new Map<string, string>();
  for (const vol of volumes) {
    const hostDir = join(dir, "v", vol.name);
    mkdirSync(hostDir, { recursive: true });
    // emptyDir is 0777; with fsGroup the kubelet makes it group-owned by fsGroup, setgid.
    if (fsGroup !== undefined && fsGroup !== null && isRoot()) {
      chownSync(hostDir, 0, fsGroup);
      chmodSync(hostDir, 0o2777);
    } else chmodSync(hostDir, 0o777);
    const ref = vol.secret ?? vol.configMap;
    const src = vol.secret
      ? lookup("Secret", vol.secret.secretName)
      : vol.configMap
        ? lookup("ConfigMap", vol.configMap.name)
        : undefined;
    if (ref && !src && !ref.optional) {
      throw new ConfigError(
        `${vol.secret ? "secret" : "configmap"} "${vol.secret?.secretName ?? vol.configMap?.name}" not found`,
      );
    }
    for (const [k, v] of Object.entries(src ?? {})) {
      const item = ref?.items?.find((i) => i.key === k);
      if (ref?.items && !item) continue;
      writeFileSync(join(hostDir, item?.path ?? k), v, { mode: 0o644 });
    }
    dirs.set(vol.name, hostDir);
  }
  return dirs;
}

/** Resolves a container's environment and its mounts (container path → host directory). Throws ConfigError. */
export function configureContainer(
  c: PodContainer,
  pod: Obj,
  lookup: DataLookup,
  dirs: Map<string, string>,
  extraEnv: Record<string, string> = {},
): void {
  c.env = { ...resolveEnv(pod, c.spec, lookup), HOSTNAME: String(o(pod.metadata).name), ...extraEnv };
  c.mounts = new Map();
  for (const vm of c.spec.volumeMounts ?? []) {
    const hostDir = dirs.get(vm.name);
    if (!hostDir) throw new ConfigError(`volume "${vm.name}" not found`);
    const target = join(hostDir, vm.subPath ?? "");
    mkdirSync(target, { recursive: true });
    c.mounts.set(vm.mountPath, target);
  }
}

export interface SpawnOptions {
  mode: KubeletMode;
  /** The pod's directory: podman's working directory, and process mode's default cwd. */
  dir: string;
  /** Process mode: the command run for every container (its args appended). */
  processCommand?: string[];
  /** Podman mode: the image to run instead of the container's own. */
  image?: string;
  podSecurityContext?: PodSecurityContext;
  /** Podman mode: `--pids-limit`. */
  pidsLimit?: number;
  /** Podman mode: the container's name for this run (set as c.podmanName). */
  podmanName: string;
}

/** Starts one run of a container: a local process (process mode) or `podman run` (podman mode). */
export function spawnContainer(c: PodContainer, opts: SpawnOptions): ChildProcess {
  if (opts.mode === "podman") {
    const argv = podmanRunArgs({
      podName: opts.podmanName,
      container: c.spec,
      podSecurityContext: opts.podSecurityContext ?? {},
      image: opts.image ?? c.spec.image ?? RUNNER_IMAGE,
      mounts: [...c.mounts!].map(([mountPath, hostPath]) => ({ mountPath, hostPath })),
      terminationLogHostPath: c.info.terminationLog,
      env: c.env!,
      ...(opts.pidsLimit ? { pidsLimit: opts.pidsLimit } : {}),
    });
    c.podmanName = opts.podmanName;
    // cwd: the pod's directory (conmon leaves an `oom` marker file in podman's working directory on an OOM kill).
    return spawn("podman", argv, {
      cwd: opts.dir,
      env: podmanProcessEnv(c.env!),
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
  }
  const tpath = c.spec.terminationMessagePath ?? "/dev/termination-log";
  const mounts = c.mounts!;
  const allMounts = new Map(mounts).set(tpath, c.info.terminationLog);
  const mapped = rewritePaths(c.env!, allMounts);
  mapped.AGENTFACTORY_TERMINATION_LOG = c.info.terminationLog;
  if (mounts.has("/tmp")) mapped.TMPDIR = mounts.get("/tmp")!;
  const cwdMount = c.spec.workingDir ? rewritePaths({ d: c.spec.workingDir }, mounts).d : undefined;
  const cwd = cwdMount && cwdMount !== c.spec.workingDir ? cwdMount : join(opts.dir, `cwd-${c.spec.name}`);
  mkdirSync(cwd, { recursive: true });
  const [cmd, ...args] = [...(opts.processCommand ?? defaultProcessCommand()), ...(c.spec.args ?? [])];
  return spawn(cmd!, args, {
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...mapped },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** The container's termination message: its termination log, or with FallbackToLogsOnError its log's tail. */
export function readTerminationMessage(c: PodContainer, exitCode: number, log: () => string): string {
  let msg = "";
  try {
    msg = readFileSync(c.info.terminationLog, "utf8");
  } catch {}
  if (!msg && exitCode !== 0 && c.spec.terminationMessagePolicy === "FallbackToLogsOnError") {
    msg = log().split("\n").slice(-80).join("\n").slice(-2048);
  }
  return Buffer.from(msg).subarray(0, TERMINATION_MESSAGE_LIMIT).toString("utf8");
}

/** What launchContainer asks of its kubelet. */
export interface LaunchHooks {
  spawn(c: PodContainer): ChildProcess;
  /** A chunk of the container's stdout or stderr. */
  output(c: PodContainer, text: string): void;
  /** A run of the container started (c.child, c.info.pid and c.startedAt set). */
  started(c: PodContainer): void;
  /** A run ended (c.terminated set); `restarting`: a sidecar, restarted after a back-off (c.backoff). */
  exited(c: PodContainer, restarting: boolean): void;
  terminationMessage(c: PodContainer, exitCode: number): string;
  oomKilled(c: PodContainer, exitCode: number): boolean;
  /** The pod still runs (not killed, finished, nor its kubelet stopped): a sidecar that exits is restarted. */
  live(): boolean;
  /** containerID scheme: `<scheme>://<pid>`. */
  idScheme: string;
}

/** Starts one run of a container; its exit is recorded, and a sidecar restarts while the pod runs. */
export function launchContainer(c: PodContainer, h: LaunchHooks): void {
  c.lastTerminated = c.terminated ?? c.lastTerminated;
  c.terminated = undefined;
  c.backoff = false;
  writeFileSync(c.info.terminationLog, "");
  const child = h.spawn(c);
  c.child = child;
  c.info.pid = child.pid;
  c.startedAt = now();
  const onData = (chunk: Buffer) => h.output(c, chunk.toString("utf8"));
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  let spawnError: Error | undefined;
  child.on("error", (e) => {
    spawnError = e;
    h.output(c, `kubelet: ${e.message}\n`);
  });
  h.started(c);
  c.exited = new Promise<number>((resolve) => {
    child.on("close", (code, signal) => {
      const exitCode = code ?? (signal ? 128 + (constants.signals[signal] ?? 9) : spawnError ? 128 : 1);
      c.info.exitCode = exitCode;
      const message = h.terminationMessage(c, exitCode);
      c.terminated = {
        exitCode,
        reason: exitCode === 0 ? "Completed" : h.oomKilled(c, exitCode) ? "OOMKilled" : "Error",
        startedAt: c.startedAt,
        finishedAt: now(),
        containerID: `${h.idScheme}://${child.pid}`,
        ...(message ? { message } : {}),
      };
      c.child = undefined;
      // A `podman run` killed while it was still creating the container leaves it behind (never started,
      // so --rm never applied): remove it by name.
      if (c.podmanName)
        spawn("podman", [...PODMAN_GLOBAL_ARGS, "rm", "-f", "--ignore", c.podmanName], { stdio: "ignore" }).on(
          "error",
          () => {},
        );
      const restart = c.info.kind === "sidecar" && !c.stopping && h.live();
      if (restart) {
        c.backoff = true;
        h.exited(c, true);
        // Back off like the kubelet's CrashLoopBackOff, in miniature.
        const delay = restartDelayMs(c.info.restarts);
        c.info.restarts++;
        c.restartTimer = setTimeout(() => {
          if (!c.stopping && h.live()) launchContainer(c, h);
        }, delay);
      } else h.exited(c, false);
      resolve(exitCode);
    });
  });
}

/** The back-off before a sidecar's next restart. */
export const restartDelayMs = (restarts: number) => Math.min(100 * 2 ** restarts, 5000);

/** What runContainers asks of its kubelet. */
export interface RunHooks {
  launch(c: PodContainer): void;
  /** The pod is being killed (deleted, the kubelet stopping): start nothing more. */
  killed(): boolean;
  /** Every regular container has been launched. */
  mainsStarted(mains: PodContainer[]): void;
  /** Stops every container still running (the sidecars, once the regular ones ended) and waits for them. */
  stopAll(): Promise<void>;
}

/**
 * A pod's containers as the kubelet runs them: init containers in order, each to completion (a failure ends
 * the pod), sidecars started without waiting, then every regular container; once they have all ended, the
 * rest is stopped. Resolves when every container has stopped.
 */
export async function runContainers(ctrs: PodContainer[], h: RunHooks): Promise<void> {
  for (const c of ctrs.filter((x) => x.info.kind !== "main")) {
    if (h.killed()) break;
    h.launch(c);
    if (c.info.kind === "sidecar") continue;
    const code = await c.exited!;
    if (code !== 0) return h.stopAll();
  }
  if (h.killed()) return h.stopAll();
  const mains = ctrs.filter((c) => c.info.kind === "main");
  for (const c of mains) h.launch(c);
  h.mainsStarted(mains);
  await Promise.all(mains.map((c) => c.exited));
  // Every regular container ended: the sidecars are stopped.
  await h.stopAll();
}

export function startKubelet(opts: KubeletOptions): Kubelet {
  const { sim } = opts;
  const store = sim.store;
  const mode: KubeletMode = opts.mode ?? (process.env.KUBELET_MODE === "process" ? "process" : "podman");
  const pods = sim.resource("pods");
  const secrets = sim.resource("secrets");
  const configmaps = sim.resource("configmaps");
  /** Pods whose containers have not been killed or deleted, by ns/name. */
  const running = new Map<string, Running>();
  /** Every pod this kubelet started, for pods() and stop(). */
  const started: Running[] = [];
  let stopped = false;

  const jobController = startJobController(sim, NODE_NAME);
  const event = (pod: Obj, type: "Normal" | "Warning", reason: string, message: string) => {
    if (store.tryGet(pods, meta(pod).namespace, meta(pod).name!))
      recordEvent(sim, pod, type, reason, message, "kubelet");
  };
  const writeStatus = (ns: string, name: string, mutate: (st: Obj) => void) =>
    store.mutateStatus(pods, ns, name, mutate);

  const lookup =
    (ns: string): DataLookup =>
    (kind, name) => {
      const obj = store.tryGet(kind === "Secret" ? secrets : configmaps, ns, name);
      if (!obj) return undefined;
      return kind === "Secret" ? secretData(obj) : ((obj.data as Record<string, string>) ?? {});
    };

  const podSecurity = (pod: Obj) => o(o(pod.spec).securityContext) as PodSecurityContext;

  function podKey(p: Obj): string {
    return `${meta(p).namespace}/${meta(p).name}`;
  }

  function containerState(c: PodContainer, waitingReason: string): Obj {
    if (c.terminated) return { terminated: c.terminated };
    if (c.startedAt && c.child) return { running: { startedAt: c.startedAt } };
    return { waiting: { reason: waitingReason } };
  }

  function statusOf(c: PodContainer, waitingReason: string): Obj {
    const state = containerState(c, waitingReason);
    const live = "running" in state;
    return {
      name: c.spec.name,
      image: c.spec.image ?? "",
      imageID: "",
      ready: live,
      started: live,
      restartCount: c.info.restarts,
      state,
      ...(c.info.pid ? { containerID: `sim://${c.info.pid}` } : {}),
    };
  }

  /** containerStatuses and initContainerStatuses from the containers' states. */
  function writeContainerStatuses(r: Running, extra: (st: Obj) => void = () => {}): void {
    const m = meta(r.pod);
    const inits = r.ctrs.filter((c) => c.info.kind !== "main");
    const mains = r.ctrs.filter((c) => c.info.kind === "main");
    writeStatus(m.namespace!, m.name!, (st) => {
      if (inits.length) st.initContainerStatuses = inits.map((c) => statusOf(c, "PodInitializing"));
      st.containerStatuses = mains.map((c) => statusOf(c, inits.length ? "PodInitializing" : "ContainerCreating"));
      extra(st);
    });
  }

  function startPod(pod: Obj): void {
    const m = meta(pod);
    const ns = m.namespace!;
    const key = podKey(pod);
    const spec = o(pod.spec);
    const mains = (spec.containers as Container[]) ?? [];
    if (!mains.length) return;
    // Short: unix socket paths in a volume must stay under 108 bytes.
    const dir = mkdtempSync(join(tmpdir(), `kubelet-${m.name!.slice(0, 24)}-`));
    const ctrs = podContainers(spec, dir);
    const first = ctrs.find((c) => c.info.kind === "main")!;
    const owner = (m.ownerReferences ?? []).find((ref) => ref.kind === "Job" && ref.controller);
    let resolveDone!: () => void;
    const done = new Promise<void>((res) => {
      resolveDone = res;
    });
    const r: Running = {
      run: {
        namespace: ns,
        name: m.name!,
        ...(owner ? { job: owner.name } : {}),
        phase: "Pending",
        mounts: {},
        terminationLog: first.info.terminationLog,
        containers: ctrs.map((c) => c.info),
      },
      pod,
      dir,
      ctrs,
      killed: false,
      started: false,
      finished: false,
      done,
      resolveDone,
    };
    running.set(key, r);
    started.push(r);
    recordEvent(
      sim,
      pod,
      "Normal",
      "Scheduled",
      `Successfully assigned ${ns}/${m.name} to ${NODE_NAME}`,
      "default-scheduler",
    );
    writeContainerStatuses(r, (st) => {
      Object.assign(st, {
        phase: "Pending",
        conditions: [{ type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: now() }],
        hostIP: "127.0.0.1",
      });
    });
    tryStart(r);
  }

  /** Sets up volumes and env; waits (CreateContainerConfigError) while a referenced Secret is missing. */
  function tryStart(r: Running): void {
    const m = meta(r.pod);
    const ns = m.namespace!;
    if (r.killed || stopped) return;
    const current = store.tryGet(pods, ns, m.name!) ?? r.pod;
    let failing: PodContainer | undefined;
    try {
      const dirs = setUpPodVolumes(o(r.pod.spec), r.dir, lookup(ns));
      for (const c of r.ctrs) {
        failing = c;
        configureContainer(c, current, lookup(ns), dirs, opts.extraEnv);
      }
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      if (!r.configErrorReported) event(r.pod, "Warning", "Failed", `Error: ${e.message}`);
      r.configErrorReported = true;
      const name = failing?.spec.name;
      const inits = r.ctrs.filter((c) => c.info.kind !== "main");
      const mark = (c: PodContainer) => {
        const st = statusOf(c, inits.length ? "PodInitializing" : "ContainerCreating");
        return c.spec.name === name
          ? { ...st, state: { waiting: { reason: "CreateContainerConfigError", message: e.message } } }
          : st;
      };
      writeStatus(ns, m.name!, (st) => {
        if (inits.length) st.initContainerStatuses = inits.map(mark);
        st.containerStatuses = r.ctrs.filter((c) => c.info.kind === "main").map(mark);
      });
      r.retry = setTimeout(() => tryStart(r), 500);
      return;
    }
    const first = r.ctrs.find((c) => c.info.kind === "main")!;
    r.run.mounts = Object.fromEntries(first.mounts!);
    void runContainers(r.ctrs, {
      launch: (c) => launch(r, c),
      killed: () => r.killed,
      mainsStarted: (mains) => {
        r.started = true;
        r.run.phase = "Running";
        const startedAt = now();
        event(r.pod, "Normal", "Started", `Started container ${mains[0]!.spec.name}`);
        writeContainerStatuses(r, (st) => {
          Object.assign(st, {
            phase: "Running",
            startTime: startedAt,
            podIP: "127.0.0.1",
            podIPs: [{ ip: "127.0.0.1" }],
            conditions: [
              { type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: startedAt },
              { type: "Initialized", status: "True", lastProbeTime: null, lastTransitionTime: startedAt },
              { type: "ContainersReady", status: "True", lastProbeTime: null, lastTransitionTime: startedAt },
              { type: "Ready", status: "True", lastProbeTime: null, lastTransitionTime: startedAt },
            ],
          });
        });
      },
      stopAll: () => stopAll(r),
    }).then(() => finishPod(r));
  }

  /** Starts one run of a container (shared launchContainer, with this kubelet's logs, events and statuses). */
  function launch(r: Running, c: PodContainer): void {
    const m = meta(r.pod);
    const ns = m.namespace!;
    const first = r.ctrs.find((x) => x.info.kind === "main");
    launchContainer(c, {
      idScheme: "sim",
      spawn: (c) =>
        spawnContainer(c, {
          mode,
          dir: r.dir,
          ...(opts.processCommand ? { processCommand: opts.processCommand } : {}),
          ...(opts.image ? { image: opts.image } : {}),
          podSecurityContext: podSecurity(r.pod),
          ...(opts.podPidsLimit ? { pidsLimit: opts.podPidsLimit } : {}),
          // One name per run: a restarted sidecar must not meet the cleanup of its previous run.
          podmanName: `${m.name}-${c.spec.name}${c.info.restarts ? `-${c.info.restarts}` : ""}`,
        }),
      output: (c, text) => {
        sim.podLogs.append(ns, `${m.name}/${c.spec.name}`, text);
        if (c.info.kind === "main") sim.podLogs.append(ns, m.name!, text);
      },
      started: (c) => {
        if (c === first) r.run.pid = c.info.pid;
        if (c.info.kind !== "main") {
          event(r.pod, "Normal", "Started", `Started container ${c.spec.name}`);
          writeContainerStatuses(r);
        }
      },
      exited: (c, restarting) => {
        if (c === first) r.run.exitCode = c.info.exitCode;
        if (restarting) writeContainerStatuses(r);
      },
      terminationMessage: (c, exitCode) =>
        readTerminationMessage(c, exitCode, () => sim.podLogs.get(ns, `${m.name}/${c.spec.name}`) ?? ""),
      oomKilled: (c, exitCode) => oomKilled(c, exitCode),
      live: () => !r.killed && !stopped && !r.finished,
    });
  }

  /** Podman mode: SIGKILL (137) of a memory-limited container we did not kill is the kernel's OOM killer. */
  function oomKilled(c: PodContainer, exitCode: number): boolean {
    return mode === "podman" && exitCode === 137 && !c.stopping && c.spec.resources?.limits?.memory !== undefined;
  }

  function finishPod(r: Running): void {
    if (r.finished) return;
    r.finished = true;
    const m = meta(r.pod);
    const ns = m.namespace!;
    const mains = r.ctrs.filter((c) => c.info.kind === "main");
    const initFailed = r.ctrs.some(
      (c) => c.info.kind === "init" && c.info.exitCode !== undefined && c.info.exitCode !== 0,
    );
    const ok = !initFailed && mains.every((c) => c.info.exitCode === 0);
    r.run.phase = ok ? "Succeeded" : "Failed";
    const finishedAt = now();
    sim.podLogs.end(ns, m.name!);
    for (const c of r.ctrs) sim.podLogs.end(ns, `${m.name}/${c.spec.name}`);
    if (!stopped) {
      writeContainerStatuses(r, (st) => {
        st.phase = r.run.phase;
        st.conditions = ((st.conditions as Obj[]) ?? []).map((c) =>
          c.type === "Ready" || c.type === "ContainersReady"
            ? { ...c, status: "False", reason: "PodCompleted", lastTransitionTime: finishedAt }
            : c,
        );
      });
    }
    rmSync(r.dir, { recursive: true, force: true });
    r.resolveDone();
  }

  /** Stops every running container of the pod (sidecars last-started first) and waits for them. */
  async function stopAll(r: Running): Promise<void> {
    const live = [...r.ctrs].reverse();
    for (const c of live) {
      c.stopping = true;
      clearTimeout(c.restartTimer);
      stopContainer(c);
    }
    await Promise.all(live.map((c) => (c.child ? c.exited : undefined)));
  }

  function stopContainer(c: PodContainer): void {
    const child = c.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    if (c.podmanName) spawn("podman", [...podmanStopArgs(c.podmanName)], { stdio: "ignore" }).on("error", () => {});
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {}
    const hard = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {}
    }, 2000);
    hard.unref();
    child.on("close", () => clearTimeout(hard));
  }

  /** The pod was deleted (or the kubelet stops): kill its containers; the pod ends once they have. */
  function kill(r: Running): void {
    if (r.killed) return;
    r.killed = true;
    clearTimeout(r.retry);
    if (!r.ctrs.some((c) => c.child)) {
      if (!r.finished && !r.ctrs.some((c) => c.exited)) {
        r.finished = true;
        rmSync(r.dir, { recursive: true, force: true });
        r.resolveDone();
      }
      return;
    }
    for (const c of [...r.ctrs].reverse()) {
      c.stopping = true;
      clearTimeout(c.restartTimer);
      stopContainer(c);
    }
  }

  /** The kubelet's pod watch: start new Pending pods, kill the containers of deleted ones. */
  function onEvent(e: StoreEvent): void {
    if (stopped || e.storageKey !== pods.storageKey) return;
    const m = meta(e.object);
    const key = podKey(e.object);
    if (e.type === "DELETED") {
      const r = running.get(key);
      if (r) {
        running.delete(key);
        kill(r);
      }
    } else if (e.type === "ADDED" && !running.has(key) && o(e.object.status).phase === "Pending") {
      const pod = e.object;
      schedule(() => {
        if (stopped || !store.tryGet(pods, m.namespace, m.name!) || running.has(key)) return;
        try {
          startPod(pod);
        } catch (err) {
          console.error(`kubelet: starting pod ${key} failed:`, err);
        }
      });
    }
  }

  /**
   * Pod starts (temp dirs, files, a spawn: a few ms of synchronous work each) run one per event-loop
   * turn, so a burst of new pods does not stall the API server sharing this process.
   */
  const starts: (() => void)[] = [];
  let draining = false;
  function schedule(start: () => void): void {
    starts.push(start);
    if (!draining) {
      draining = true;
      setImmediate(drain);
    }
  }
  function drain(): void {
    starts.shift()?.();
    if (starts.length > 0) setImmediate(drain);
    else draining = false;
  }

  const unsubscribe = store.subscribe(onEvent);
  for (const p of store.list(pods)) {
    if (o(p.status).phase === "Pending") schedule(() => startPod(p));
  }

  return {
    pods: () => started.map((r) => ({ ...r.run, containers: r.run.containers.map((c) => ({ ...c })) })),
    async stop() {
      stopped = true;
      unsubscribe();
      jobController.stop();
      for (const r of started) kill(r);
      await Promise.all(started.map((r) => r.done));
    },
  };
}

export function podmanStopArgs(name: string, graceSeconds = 2): string[] {
  return [...PODMAN_GLOBAL_ARGS, "stop", "-t", String(graceSeconds), name];
}

/**
 * Throws a message saying what to do when podman mode cannot run here: podman missing (make deps) or the
 * image not built (make image). For end-to-end suites that run the real runner image.
 */
export async function assertPodmanReady(image = RUNNER_IMAGE): Promise<void> {
  const run = (args: string[]) =>
    new Promise<number>((resolve) => {
      const p = spawn("podman", [...PODMAN_GLOBAL_ARGS, ...args], { stdio: "ignore" });
      p.on("error", () => resolve(-1));
      p.on("close", (code) => resolve(code ?? 1));
    });
  if ((await run(["--version"])) !== 0) throw new Error("podman not found: run make deps");
  if ((await run(["image", "exists", image])) !== 0) throw new Error(`image ${image} not found: run make image`);
}
