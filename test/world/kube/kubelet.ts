/**
 * A kubelet (plus the Job controller, job-controller.ts) acting on the simulator's store. It runs each Pod's
 * first container, either as a local process
 * (`mode: "process"`: emptyDir mounts become temp dirs, env paths are rewritten) or as a Podman container, and
 * reports Pending → Running → Succeeded/Failed with the termination message read from the termination log.
 *
 * @example
 *   const kubelet = startKubelet({ sim, mode: "process", processCommand: [process.execPath, "job.mjs"] });
 *   ...
 *   await kubelet.stop();
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
import { podmanProcessEnv, podmanRunArgs } from "./podman-args.ts";
import { type KubeSim, REPO_ROOT } from "./server.ts";
import { meta, now, type Obj, type StoreEvent } from "./store.ts";

export type KubeletMode = "process" | "podman";

export interface KubeletOptions {
  sim: KubeSim;
  /** Default: env KUBELET_MODE, else "podman". */
  mode?: KubeletMode;
  /** Process mode: the command run for every container (container args are appended). */
  processCommand?: string[];
  /** Podman mode: the image to run instead of the container's own. */
  image?: string;
  /** Extra environment for every container; overrides the pod's env. */
  extraEnv?: Record<string, string>;
}

export interface PodRun {
  namespace: string;
  name: string;
  /** The owning Job's name, if any. */
  job?: string;
  phase: "Pending" | "Running" | "Succeeded" | "Failed";
  exitCode?: number;
  pid?: number;
  /** Container path → host directory of each mounted volume (process mode). */
  mounts: Record<string, string>;
  /** The host file standing in for the container's terminationMessagePath. */
  terminationLog: string;
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
  child?: ChildProcess;
  /** Podman mode: the container name to stop. */
  containerName?: string;
  dir: string;
  killed: boolean;
  retry?: NodeJS.Timeout;
  configErrorReported?: boolean;
  done: Promise<void>;
  resolveDone: () => void;
}

function o(v: unknown): Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {};
}

export function startKubelet(opts: KubeletOptions): Kubelet {
  const { sim } = opts;
  const store = sim.store;
  const mode: KubeletMode = opts.mode ?? (process.env.KUBELET_MODE === "process" ? "process" : "podman");
  const pods = sim.resource("pods");
  const secrets = sim.resource("secrets");
  const configmaps = sim.resource("configmaps");
  /** Pods whose container has not been killed or deleted, by ns/name. */
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

  function containerStatus(pod: Obj, state: Obj, extra: Obj = {}): Obj[] {
    const c = ((o(pod.spec).containers as Container[]) ?? [])[0];
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

  function podKey(p: Obj): string {
    return `${meta(p).namespace}/${meta(p).name}`;
  }

  function startPod(pod: Obj): void {
    const m = meta(pod);
    const ns = m.namespace!;
    const key = podKey(pod);
    const container = ((o(pod.spec).containers as Container[]) ?? [])[0];
    if (!container) return;
    const dir = mkdtempSync(join(tmpdir(), `kubelet-${m.name}-`));
    const termFile = join(dir, "termination-log");
    writeFileSync(termFile, "");
    // The container may run as another uid (runAsUser): volumes and the termination log must be writable.
    chmodSync(termFile, 0o666);
    const owner = (m.ownerReferences ?? []).find((r) => r.kind === "Job" && r.controller);
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => {
      resolveDone = r;
    });
    const r: Running = {
      run: {
        namespace: ns,
        name: m.name!,
        ...(owner ? { job: owner.name } : {}),
        phase: "Pending",
        mounts: {},
        terminationLog: termFile,
      },
      dir,
      killed: false,
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
    writeStatus(ns, m.name!, (st) => {
      Object.assign(st, {
        phase: "Pending",
        conditions: [{ type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: now() }],
        hostIP: "127.0.0.1",
        containerStatuses: containerStatus(pod, { waiting: { reason: "ContainerCreating" } }),
      });
    });
    tryStart(pod, container, r);
  }

  /** Sets up volumes and env; waits (CreateContainerConfigError) while a referenced Secret is missing. */
  function tryStart(pod: Obj, container: Container, r: Running): void {
    const m = meta(pod);
    const ns = m.namespace!;
    if (r.killed || stopped) return;
    const current = store.tryGet(pods, ns, m.name!) ?? pod;
    let env: Record<string, string>;
    const mounts = new Map<string, string>();
    try {
      env = resolveEnv(current, container, lookup(ns));
      const volumes = (o(pod.spec).volumes as Volume[]) ?? [];
      for (const vm of container.volumeMounts ?? []) {
        const vol = volumes.find((v) => v.name === vm.name);
        if (!vol) throw new ConfigError(`volume "${vm.name}" not found`);
        const hostDir = join(r.dir, "volumes", vm.name, vm.subPath ?? "");
        mkdirSync(hostDir, { recursive: true });
        chmodSync(hostDir, 0o777);
        const src = vol.secret
          ? lookup(ns)("Secret", vol.secret.secretName)
          : vol.configMap
            ? lookup(ns)("ConfigMap", vol.configMap.name)
            : undefined;
        const ref = vol.secret ?? vol.configMap;
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
        mounts.set(vm.mountPath, hostDir);
      }
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      if (!r.configErrorReported) event(pod, "Warning", "Failed", `Error: ${e.message}`);
      r.configErrorReported = true;
      writeStatus(ns, m.name!, (st) => {
        st.containerStatuses = containerStatus(pod, {
          waiting: { reason: "CreateContainerConfigError", message: e.message },
        });
      });
      r.retry = setTimeout(() => tryStart(pod, container, r), 500);
      return;
    }
    r.run.mounts = Object.fromEntries(mounts);
    const fullEnv = { ...env, HOSTNAME: m.name!, ...opts.extraEnv };
    if (mode === "podman") runPodman(pod, container, r, fullEnv, mounts);
    else runProcess(pod, container, r, fullEnv, mounts);
  }

  function runProcess(
    pod: Obj,
    container: Container,
    r: Running,
    env: Record<string, string>,
    mounts: Map<string, string>,
  ): void {
    const tpath = container.terminationMessagePath ?? "/dev/termination-log";
    const allMounts = new Map(mounts).set(tpath, r.run.terminationLog);
    const mapped = rewritePaths(env, allMounts);
    mapped.AGENTFACTORY_TERMINATION_LOG = r.run.terminationLog;
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
    attach(pod, r, child);
  }

  function runPodman(
    pod: Obj,
    container: Container,
    r: Running,
    env: Record<string, string>,
    mounts: Map<string, string>,
  ): void {
    const name = meta(pod).name!;
    const argv = podmanRunArgs({
      podName: name,
      container,
      podSecurityContext: o(o(pod.spec).securityContext) as never,
      image: opts.image ?? container.image ?? RUNNER_IMAGE,
      mounts: [...mounts].map(([mountPath, hostPath]) => ({ mountPath, hostPath })),
      terminationLogHostPath: r.run.terminationLog,
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
    attach(pod, r, child);
  }

  function attach(pod: Obj, r: Running, child: ChildProcess): void {
    const m = meta(pod);
    const ns = m.namespace!;
    r.child = child;
    r.run.pid = child.pid;
    r.run.phase = "Running";
    const startedAt = now();
    const onData = (c: Buffer) => sim.podLogs.append(ns, m.name!, c.toString("utf8"));
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    let spawnError: Error | undefined;
    child.on("error", (e) => {
      spawnError = e;
      sim.podLogs.append(ns, m.name!, `kubelet: ${e.message}\n`);
    });
    event(pod, "Normal", "Started", `Started container ${((o(pod.spec).containers as Container[]) ?? [])[0]?.name}`);
    writeStatus(ns, m.name!, (st) => {
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
        containerStatuses: containerStatus(
          pod,
          { running: { startedAt } },
          { ready: true, started: true, containerID: `sim://${child.pid}` },
        ),
      });
    });
    child.on("close", (code, signal) => {
      const exitCode = code ?? (signal ? 128 + (constants.signals[signal] ?? 9) : spawnError ? 128 : 1);
      finishPod(pod, r, exitCode, startedAt);
    });
  }

  function terminationMessage(pod: Obj, r: Running, exitCode: number): string {
    let msg = "";
    try {
      msg = readFileSync(r.run.terminationLog, "utf8");
    } catch {}
    const c = ((o(pod.spec).containers as Container[]) ?? [])[0];
    if (!msg && exitCode !== 0 && c?.terminationMessagePolicy === "FallbackToLogsOnError") {
      const log = sim.podLogs.get(meta(pod).namespace!, meta(pod).name!) ?? "";
      msg = log.split("\n").slice(-80).join("\n").slice(-2048);
    }
    return Buffer.from(msg).subarray(0, TERMINATION_MESSAGE_LIMIT).toString("utf8");
  }

  function finishPod(pod: Obj, r: Running, exitCode: number, startedAt: string): void {
    const m = meta(pod);
    const ns = m.namespace!;
    r.run.exitCode = exitCode;
    r.run.phase = exitCode === 0 ? "Succeeded" : "Failed";
    const finishedAt = now();
    const message = terminationMessage(pod, r, exitCode);
    sim.podLogs.end(ns, m.name!);
    if (!stopped) {
      writeStatus(ns, m.name!, (st) => {
        const terminated: Obj = {
          exitCode,
          reason: exitCode === 0 ? "Completed" : oomKilled(pod, r, exitCode) ? "OOMKilled" : "Error",
          startedAt,
          finishedAt,
          containerID: `sim://${r.run.pid}`,
          ...(message ? { message } : {}),
        };
        Object.assign(st, {
          phase: r.run.phase,
          conditions: ((st.conditions as Obj[]) ?? []).map((c) =>
            c.type === "Ready" || c.type === "ContainersReady"
              ? { ...c, status: "False", reason: "PodCompleted", lastTransitionTime: finishedAt }
              : c,
          ),
          containerStatuses: containerStatus(
            pod,
            { terminated },
            { started: false, containerID: `sim://${r.run.pid}` },
          ),
        });
      });
    }
    rmSync(r.dir, { recursive: true, force: true });
    r.resolveDone();
  }

  /** Podman mode: SIGKILL (137) of a memory-limited container we did not kill is the kernel's OOM killer. */
  function oomKilled(pod: Obj, r: Running, exitCode: number): boolean {
    const c = ((o(pod.spec).containers as Container[]) ?? [])[0];
    return mode === "podman" && exitCode === 137 && !r.killed && c?.resources?.limits?.memory !== undefined;
  }

  function kill(r: Running): void {
    r.killed = true;
    clearTimeout(r.retry);
    const child = r.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      if (!child) {
        rmSync(r.dir, { recursive: true, force: true });
        r.resolveDone();
      }
      return;
    }
    if (r.containerName)
      spawn("podman", [...podmanStopArgs(r.containerName)], { stdio: "ignore" }).on("error", () => {});
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
    pods: () => started.map((r) => ({ ...r.run })),
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
