/**
 * The local test world, assembled: real nats-server, a Kubernetes API with the world's kubelet (Podman
 * containers of the runner image, or local processes), the GitHub, model and Slack simulators, and the two
 * deployables started as they are in production — `gateway/main.ts` and `operator/main.ts` as child processes
 * configured by environment. Used by the e2e tests and `make demo`.
 *
 * The Kubernetes API is either the simulator (`controlPlane: "sim"`) or the real control plane
 * (`controlPlane: "real"`: etcd, kube-apiserver, kube-controller-manager, kube-scheduler from .cache/bin, the
 * chart `helm install`ed, the operator on its own ServiceAccount's token through the in-cluster path). Default:
 * the real one; env CONTROL_PLANE=sim selects the simulator.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AgentRun } from "../../core/agentrun.ts";
import { ADMIN_TOKEN, ATTEMPT_KEY, type EgressProc, startEgress } from "../egress/harness.ts";
import { type ModelSim, type Scenario, startModelSim } from "../world/anthropic/index.ts";
import { type Cluster, RUNNER_SERVICE_ACCOUNT, startCluster } from "../world/controlplane/cluster.ts";
import { type GitHubSim, githubDelivery, startGitHubSim, type WebhookScope } from "../world/github/index.ts";
import {
  assertPodmanReady,
  type Kubelet,
  type KubeSim,
  REPO_ROOT,
  startKubelet,
  startKubeSim,
} from "../world/kube/index.ts";
import { type NatsServer, startNats } from "../world/nats.ts";
import { type SlackSim, startSlackSim } from "../world/slack/index.ts";

export const NAMESPACE = "agentfactory";
export const WEBHOOK_SECRET = "e2e-webhook-secret";
export const MODEL_KEY = "sk-ant-e2e-0123456789abcdef0123456789";
const TSX = join(REPO_ROOT, "node_modules/tsx/dist/loader.mjs");
export const KUBECTL = join(REPO_ROOT, ".cache/bin/kubectl");

export interface Proc {
  proc: ChildProcess;
  logs: string[];
  port: number;
  url: string;
}

// biome-ignore lint/suspicious/noExplicitAny: API objects read loosely by tests
type Obj = Record<string, any>;
export type ControlPlaneKind = "sim" | "real";

/** The world's Kubernetes API as tests see it, simulated or real. */
export interface WorldKube {
  kind: ControlPlaneKind;
  url: string;
  /** The API server's gitVersion. */
  version: string;
  /** Admin kubeconfig (kubectl). */
  kubeconfigPath: string;
  /** Objects in a namespace: the simulator's store, or the real API server's watch cache. */
  list(resource: "agentruns" | "jobs" | "pods", namespace?: string): Obj[];
  /** A container's log. */
  podLog(namespace: string, name: string): string | undefined;
  /** The simulator (controlPlane "sim"). */
  sim?: KubeSim;
  /** The real cluster (controlPlane "real"). */
  cluster?: Cluster;
}

export interface World {
  kube: WorldKube;
  kubelet: Pick<Kubelet, "stop"> & { pods(): Array<{ namespace: string; name: string; job?: string; phase: string }> };
  nats: NatsServer;
  github: GitHubSim;
  model: ModelSim;
  slack: SlackSim;
  gateway: Proc;
  /** The egress gateway (egress/main.ts as a process), with `egress: true`. */
  egress?: EgressProc;
  readonly operator: Proc;
  /** SIGKILLs the operator and starts a new one with the same configuration. */
  crashOperator(): Promise<void>;
  runs(): AgentRun[];
  run(name: string): AgentRun | undefined;
  /** Where a webhook happens: the repository, the App installation and the sender. */
  scope(repo: string, sender?: string): WebhookScope;
  /** Delivers a signed GitHub webhook to the gateway, as GitHub does (same delivery id = a redelivery). */
  deliver(event: string, payload: unknown, deliveryId?: string): Promise<Response>;
  waitFor<T>(
    what: string,
    fn: () => T | undefined | false | Promise<T | undefined | false>,
    timeoutMs?: number,
  ): Promise<T>;
  stop(): Promise<void>;
}

export interface WorldOptions {
  kubeletMode: "podman" | "process";
  /** Default: env CONTROL_PLANE ("real" or "sim"), else "real". */
  controlPlane?: ControlPlaneKind;
  scenario: Scenario;
  /** Users and their permission on every repository (the operator checks senders). */
  users?: Record<string, "admin" | "write" | "read" | "none">;
  /** Called with every log line of the gateway and the operator (the demo shows progress). */
  onLog?: (source: "gateway" | "operator", line: string) => void;
  operatorEnv?: Record<string, string>;
  /**
   * Start the egress gateway (egress/main.ts) with the model key and the simulated forge behind it, and
   * the operator with EGRESS_ENABLED: stage pods then get only an attempt token (runner pods on loopback:
   * kubelet mode "process").
   */
  egress?: boolean;
}

/** Starts every piece; on failure, stops what was started and rethrows. */
export async function startWorld(opts: WorldOptions): Promise<World> {
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    if (opts.kubeletMode === "podman") await assertPodmanReady();
    const nats = await startNats();
    stops.push(() => nats.stop());
    const controlPlane = opts.controlPlane ?? (process.env.CONTROL_PLANE === "sim" ? "sim" : "real");
    const github = await startGitHubSim({ users: opts.users ?? { alice: "write" } });
    stops.push(() => github.stop());
    const model = await startModelSim({ scenario: opts.scenario });
    stops.push(() => model.stop());
    const slack = await startSlackSim();
    stops.push(() => slack.stop());

    let kube: WorldKube;
    let kubelet: World["kubelet"];
    let kubeEnv: Record<string, string>;
    if (controlPlane === "real") {
      const cluster = await startCluster({ kubeletMode: opts.kubeletMode });
      stops.push(() => cluster.stop());
      // The chart's runner account and the model Secret under the chart's key name (secrets.model.apiKeyKey).
      await cluster.createSecret("agentfactory-model", { "anthropic-api-key": MODEL_KEY });
      kubelet = cluster.kubelet;
      kubeEnv = {
        ...cluster.operatorEnv,
        RUNNER_SERVICE_ACCOUNT,
        MODEL_SECRET_NAME: "agentfactory-model",
        MODEL_SECRET_KEY: "anthropic-api-key",
      };
      kube = {
        kind: "real",
        url: cluster.url,
        version: cluster.version,
        kubeconfigPath: cluster.kubeconfigPath,
        list: (resource, ns) => cluster.list(resource, ns),
        podLog: (ns, name) => cluster.podLog(ns, name),
        cluster,
      };
    } else {
      const sim = await startKubeSim();
      stops.push(() => sim.stop());
      sim.create("secrets", {
        metadata: { name: "agentfactory-model", namespace: NAMESPACE },
        data: { ANTHROPIC_API_KEY: Buffer.from(MODEL_KEY).toString("base64") },
      });
      const simKubelet = startKubelet({ sim, mode: opts.kubeletMode });
      stops.push(() => simKubelet.stop());
      kubelet = simKubelet;
      kubeEnv = { KUBECONFIG_PATH: sim.kubeconfigPath };
      kube = {
        kind: "sim",
        url: sim.url,
        version: "v1.33.0-agentfactory-sim",
        kubeconfigPath: sim.kubeconfigPath,
        list: (resource, ns) => sim.list(resource, ns) as Obj[],
        podLog: (ns, name) => sim.podLogs.get(ns, name),
        sim,
      };
    }

    const dir = await mkdtemp(join(tmpdir(), "af-world-"));
    const keyFile = join(dir, "github-app.pem");
    await writeFile(keyFile, github.privateKeyPem, { mode: 0o600 });

    const gateway = await startProcess("gateway", "gateway/main.ts", /"port":(\d+)/, opts.onLog, {
      PORT: "0",
      HOST: "127.0.0.1",
      ...nats.env("gateway"),
      GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET,
      LOG_LEVEL: "info",
    });
    stops.push(() => stopProcess(gateway.proc));

    let egress: EgressProc | undefined;
    if (opts.egress) {
      egress = await startEgress({
        ...nats.env("egress"),
        MODEL_BASE_URL: model.url,
        MODEL_API_KEY: MODEL_KEY,
        FORGE_API_URL: github.apiUrl,
        FORGE_GIT_URL: github.serverUrl,
      });
      const e = egress;
      stops.push(() => e.stop());
    }
    const egressEnv: Record<string, string> = egress
      ? {
          EGRESS_ENABLED: "true",
          EGRESS_URL: egress.url,
          EGRESS_ADMIN_URL: egress.adminUrl,
          EGRESS_ADMIN_TOKEN: ADMIN_TOKEN,
          EGRESS_ATTEMPT_TOKEN_KEY: ATTEMPT_KEY,
        }
      : {};
    const operatorEnv = {
      ...kubeEnv,
      NAMESPACE,
      ...nats.env("operator"),
      GITHUB_APP_ID: String(github.appId),
      GITHUB_APP_PRIVATE_KEY_FILE: keyFile,
      GITHUB_API_URL: github.apiUrl,
      GITHUB_SERVER_URL: github.serverUrl,
      ANTHROPIC_BASE_URL: model.url,
      DEFAULT_MODEL: "claude-sonnet-4-6",
      SLACK_WEBHOOK_URL: slack.url,
      METRICS_PORT: "0",
      METRICS_HOST: "127.0.0.1",
      LEADER_ELECTION: "true",
      STAGE_TIMEOUT_SECONDS: "300",
      LOG_LEVEL: "info",
      // The image the Jobs name (the kubelet runs a container's own image): RUNNER_IMAGE=… picks a build.
      ...(process.env.RUNNER_IMAGE ? { RUNNER_IMAGE: process.env.RUNNER_IMAGE } : {}),
      ...egressEnv,
      ...opts.operatorEnv,
    };
    const launchOperator = () =>
      startProcess("operator", "operator/main.ts", /"port":(\d+).*"msg":"http listening"/, opts.onLog, operatorEnv);
    let operator = await launchOperator();
    stops.push(() => stopProcess(operator.proc));

    const runs = () => kube.list("agentruns", NAMESPACE) as AgentRun[];
    return {
      kube,
      kubelet,
      nats,
      github,
      model,
      slack,
      gateway,
      ...(egress ? { egress } : {}),
      get operator() {
        return operator;
      },
      async crashOperator() {
        const exited = new Promise<void>((resolve) => operator.proc.once("exit", () => resolve()));
        operator.proc.kill("SIGKILL");
        await exited;
        operator = await launchOperator();
      },
      runs,
      run: (name) => runs().find((r) => r.metadata.name === name),
      scope: (repo, sender = "alice") => ({
        repo,
        installationId: github.installationId,
        sender,
        serverUrl: github.serverUrl,
      }),
      deliver: (event, payload, deliveryId) => {
        const d = githubDelivery(WEBHOOK_SECRET, event, payload, deliveryId);
        return fetch(`${gateway.url}/webhooks/github`, { method: "POST", headers: d.headers, body: d.body });
      },
      waitFor: (what, fn, timeoutMs = 120_000) => waitFor(what, fn, timeoutMs),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

export async function startProcess(
  name: "gateway" | "operator",
  entry: string,
  portPattern: RegExp,
  onLog: WorldOptions["onLog"],
  env: Record<string, string>,
): Promise<Proc> {
  const proc = spawn(process.execPath, ["--import", TSX, join(REPO_ROOT, entry)], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  const port = new Promise<number>((resolve, reject) => {
    let buffer = "";
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        logs.push(line);
        onLog?.(name, line);
        const m = portPattern.exec(line);
        if (m) resolve(Number(m[1]));
      }
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
    proc.on("exit", (code) =>
      reject(new Error(`${name} exited with ${code} before listening:\n${logs.slice(-20).join("\n")}`)),
    );
  });
  const p = await Promise.race([
    port,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${name} did not start in 60 s:\n${logs.join("\n")}`)), 60_000),
    ),
  ]);
  return { proc, logs, port: p, url: `http://127.0.0.1:${p}` };
}

export async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
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
