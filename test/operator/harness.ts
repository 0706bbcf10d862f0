/**
 * Test harness for the operator: the Kubernetes API simulator, a real nats-server, the operator as a
 * child process (`node --import tsx operator/main.ts`, so SIGKILL is real), and a scripted kubelet
 * that plays each stage Job from a script instead of running a container.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { AgentRun } from "../../core/agentrun.ts";
import { branchName, LABELS } from "../../core/names.ts";
import { encodeResult, type StageResultInput } from "../../core/result.ts";
import { ticketSubject } from "../../core/streams.ts";
import { Ticket, type TicketInput } from "../../core/ticket.ts";
import { ensureStreams } from "../../operator/consumer.ts";
import { type KubeSim, REPO_ROOT, startKubeSim } from "../world/kube/index.ts";
import { startKubelet } from "../world/kube/kubelet.ts";
import { type NatsServer, startNats } from "../world/nats.ts";

export const NS = "agentfactory";

// biome-ignore lint/suspicious/noExplicitAny: simulator objects are untyped JSON
type Obj = Record<string, any>;

/** What the scripted kubelet does with a stage Job. */
export type StagePlay =
  | { result: StageResultInput; exitCode?: number }
  | { infra: "OOMKilled" | "garbage" }
  | { hang: true };
/** May be async: a stage can act on the forge (as an honest runner would) before its result is played. */
export type Script = (job: {
  run: string;
  stage: string;
  attempt: number;
  env: Record<string, string>;
}) => StagePlay | Promise<StagePlay>;

export interface Operator {
  proc: ChildProcess;
  logs: string[];
  port: Promise<number>;
}

export interface Harness {
  sim: KubeSim;
  nats: NatsServer;
  nc: NatsConnection;
  operator?: Operator;
  startOperator(env?: Record<string, string>): Operator;
  killOperator(signal?: NodeJS.Signals): Promise<void>;
  publish(t: Partial<TicketInput>): Promise<Ticket>;
  run(name: string): AgentRun | undefined;
  runs(): AgentRun[];
  jobs(run?: string): Obj[];
  waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs?: number): Promise<T>;
  setScript(s: Script): void;
  /** How long a scripted stage runs, in ms (default 30). */
  setStageDelay(ms: () => number): void;
  stop(): Promise<void>;
}

/**
 * A ticket as the gateway publishes it. Dispatch by default (admitted by its bearer token at the
 * gateway): a GitHub ticket is admitted only after the operator checked its sender on the forge.
 */
export function ticketInput(over: Partial<TicketInput> = {}): TicketInput {
  const delivery = over.deliveryId ?? `d-${Math.random().toString(36).slice(2, 10)}`;
  return {
    id: `dispatch:${delivery}`,
    kind: "new",
    source: "dispatch",
    deliveryId: delivery,
    requestId: `req-${delivery}`,
    receivedAt: new Date().toISOString(),
    repo: "acme/web",
    number: 7,
    workItem: "gh-7",
    url: "http://forge.invalid/acme/web/issues/7",
    title: "Add a health endpoint",
    body: "Please add /healthz",
    author: "alice",
    labels: ["ai-agent"],
    ...over,
  };
}

export const ok = (stage: string, extra: object = {}): StagePlay => ({
  result: {
    stage: stage as "triage",
    outcome: "succeeded",
    summary: `${stage} done`,
    costUsd: 0.01,
    turns: 2,
    model: "claude-test",
    usage: { input: 100, output: 10, cacheRead: 0, cacheWrite: 0 },
    ...extra,
  },
});

/** A script for a clean run: clear triage, a PR, a review with `blocking` findings per review round. */
export function cleanScript(blockingPerRound: number[] = [0]): Script {
  return ({ stage, env }) => {
    const ctx = JSON.parse(env.AGENTFACTORY_CONTEXT ?? "{}") as { round?: number };
    switch (stage) {
      case "triage":
        return ok("triage", { triage: { verdict: "clear", riskTier: "low" } });
      case "write":
        return ok("write", {
          write: {
            prNumber: 4,
            prUrl: "http://forge.invalid/acme/web/pull/4",
            branch: branchName(JSON.parse(env.AGENTFACTORY_TICKET ?? "{}")), // the only branch the operator accepts
            headSha: "a1",
          },
        });
      case "remediate":
        return ok("remediate", { remediate: { headSha: `r${ctx.round ?? 0}` } });
      default: {
        const blocking = blockingPerRound[ctx.round ?? 0] ?? 0;
        return ok("review", {
          review: { riskTier: "low", checks: { tests: "success" }, findings: { total: blocking, blocking } },
        });
      }
    }
  };
}

export const FIXTURE_RUNNER = `${REPO_ROOT}/test/operator/fixtures/runner.sh`;

export interface HarnessOptions {
  /** "scripted" (default): Jobs are played from `setScript` in-process; "process": the kubelet simulator
   * runs test/operator/fixtures/runner.sh for every pod. */
  kubelet?: "scripted" | "process";
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const sim = await startKubeSim();
  const real =
    opts.kubelet === "process"
      ? startKubelet({ sim, mode: "process", processCommand: ["/bin/sh", FIXTURE_RUNNER] })
      : undefined;
  const nats = await startNats();
  // Tickets are published as the gateway publishes them; the streams are made as the operator makes them.
  const nc = await connect(nats.options("gateway"));
  const js = jetstream(nc);
  const setup = await connect(nats.options("operator"));
  await ensureStreams(await jetstreamManager(setup)); // streams exist before tickets
  await setup.close();
  let script: Script = cleanScript();
  let stageDelay = () => 30;
  const played = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();

  // Model and namespace fixtures the Jobs reference.
  sim.create("secrets", {
    metadata: { name: "agentfactory-model", namespace: NS },
    data: { ANTHROPIC_API_KEY: Buffer.from("sk-test").toString("base64") },
  });

  const kubelet = setInterval(() => {
    if (real) return;
    for (const job of sim.list("jobs", NS) as Obj[]) {
      const name = job.metadata.name as string;
      if (played.has(job.metadata.uid)) continue;
      played.add(job.metadata.uid);
      const labels = job.metadata.labels ?? {};
      const container = job.spec.template.spec.containers[0];
      const env = Object.fromEntries(
        (container.env ?? []).filter((e: Obj) => e.value !== undefined).map((e: Obj) => [e.name, e.value]),
      );
      void Promise.resolve()
        .then(() =>
          script({
            run: labels[LABELS.run],
            stage: labels[LABELS.stage],
            attempt: Number(labels[LABELS.attempt]),
            env,
          }),
        )
        .then(
          (play) => playJob(job, name, play),
          (err: unknown) => playJob(job, name, { infra: "garbage" }, err),
        );
    }
  }, 25);

  function playJob(job: Obj, name: string, play: StagePlay, scriptError?: unknown): void {
    if (scriptError) console.error(`harness: the script of ${name} failed:`, scriptError);
    const pod = sim.create("pods", {
      metadata: {
        name: `${name}-pod`,
        namespace: NS,
        labels: { ...job.spec.template.metadata.labels, "batch.kubernetes.io/job-name": name },
        ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name, uid: job.metadata.uid, controller: true }],
      },
      spec: job.spec.template.spec,
    });
    const start = new Date().toISOString();
    safe(() => sim.update("jobs", { ...job, status: { active: 1, startTime: start } }, { subresource: "status" }));
    if ("hang" in play) return;
    const t = setTimeout(() => {
      timers.delete(t);
      const at = new Date().toISOString();
      const failed = "infra" in play || (play.exitCode ?? (play.result.outcome === "failed" ? 1 : 0)) !== 0;
      const terminated =
        "infra" in play
          ? play.infra === "OOMKilled"
            ? { exitCode: 137, reason: "OOMKilled", message: "" }
            : { exitCode: 2, reason: "Error", message: "panic: not json" }
          : { exitCode: failed ? 1 : 0, reason: failed ? "Error" : "Completed", message: encodeResult(play.result) };
      safe(() =>
        sim.update(
          "pods",
          {
            ...pod,
            status: {
              phase: failed ? "Failed" : "Succeeded",
              containerStatuses: [
                {
                  name: "runner",
                  ready: false,
                  restartCount: 0,
                  image: "x",
                  imageID: "x",
                  state: { terminated: { ...terminated, finishedAt: at } },
                },
              ],
            },
          },
          { subresource: "status" },
        ),
      );
      const cur = sim.get("jobs", NS, name) as Obj | undefined;
      if (!cur) return;
      safe(() =>
        sim.update(
          "jobs",
          {
            ...cur,
            status: failed
              ? {
                  startTime: start,
                  failed: 1,
                  conditions: [
                    { type: "Failed", status: "True", reason: "BackoffLimitExceeded", lastTransitionTime: at },
                  ],
                }
              : {
                  startTime: start,
                  succeeded: 1,
                  completionTime: at,
                  conditions: [{ type: "Complete", status: "True", lastTransitionTime: at }],
                },
          },
          { subresource: "status" },
        ),
      );
    }, stageDelay());
    timers.add(t);
  }

  const h: Harness = {
    sim,
    nats,
    nc,
    startOperator(env = {}) {
      const logs: string[] = [];
      const proc = spawn(process.execPath, ["--import", "tsx", "operator/main.ts"], {
        cwd: REPO_ROOT,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          KUBECONFIG_PATH: sim.kubeconfigPath,
          NAMESPACE: NS,
          ...nats.env("operator"),
          METRICS_PORT: "0",
          METRICS_HOST: "127.0.0.1",
          LEADER_ELECTION: "true",
          LOG_LEVEL: "info",
          BACKOFF_BASE_SECONDS: "0",
          RESYNC_SECONDS: "30",
          ...env,
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let buf = "";
      const port = new Promise<number>((resolve) => {
        const onData = (chunk: Buffer) => {
          buf += chunk.toString();
          const lines = buf.split("\n");
          buf = lines.pop() ?? "";
          for (const line of lines) {
            logs.push(line);
            const m = /"port":(\d+).*"msg":"http listening"/.exec(line);
            if (m) resolve(Number(m[1]));
          }
        };
        proc.stdout!.on("data", onData);
        proc.stderr!.on("data", (c: Buffer) => logs.push(c.toString()));
      });
      h.operator = { proc, logs, port };
      return h.operator;
    },
    async killOperator(signal = "SIGKILL") {
      const p = h.operator?.proc;
      h.operator = undefined;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = once(p, "exit");
      p.kill(signal);
      await exited;
    },
    async publish(over) {
      const t = Ticket.parse(ticketInput(over));
      await js.publish(ticketSubject(t.source, t.kind), JSON.stringify(t), { msgID: t.id });
      return t;
    },
    run: (name) => sim.get("agentruns", NS, name) as unknown as AgentRun | undefined,
    runs: () => sim.list("agentruns", NS) as unknown as AgentRun[],
    jobs: (run) => (sim.list("jobs", NS) as Obj[]).filter((j) => !run || j.metadata.labels?.[LABELS.run] === run),
    async waitFor(what, fn, timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const v = fn();
        if (v) return v;
        if (Date.now() > end) {
          const tail = h.operator?.logs.slice(-15).join("\n") ?? "";
          throw new Error(`timed out waiting for ${what}\noperator log tail:\n${tail}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    setScript(s) {
      script = s;
    },
    setStageDelay(ms) {
      stageDelay = ms;
    },
    async stop() {
      clearInterval(kubelet);
      await real?.stop();
      for (const t of timers) clearTimeout(t);
      await h.killOperator("SIGKILL");
      await nc.close();
      await nats.stop();
      await sim.stop();
    },
  };
  return h;
}

function safe(fn: () => unknown): void {
  try {
    fn();
  } catch {
    // the object went away meanwhile (cancel, GC)
  }
}
